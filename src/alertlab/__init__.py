"""alertlab: truth layer and exit-strategy lab for crypto caller alerts."""

__version__ = "0.1.0"
