"""Reading option files: JSON, YAML or TOML by suffix, into a plain mapping."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".toml")


def read_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """The mapping stored in ``path``; a clear ``ValueError`` for unknown suffixes or non-mappings."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported {what} file type (unknown config format {suffix!r}; use {', '.join(CONFIG_SUFFIXES)})"
        )
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        data = json.loads(text)
    elif suffix == ".toml":
        data = tomllib.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options, got {type(data).__name__}")
    return data
