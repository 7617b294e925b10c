"""Persistence: the workspace (home), its DuckDB catalog and atomic file writes."""

from alertlab.store.atomic import atomic_dir, atomic_file
from alertlab.store.home import Home, resolve_home

__all__ = ["Home", "resolve_home", "atomic_file", "atomic_dir"]
