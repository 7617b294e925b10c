"""Small shared helpers with no pipeline knowledge: option-file reading, progress bars."""
