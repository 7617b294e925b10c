"""Outputs: Parquet exports with provenance metadata (and the HTML report)."""
