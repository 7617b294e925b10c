"""Finding the input files a user names: files or directories, walked recursively, deduplicated."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alertlab.errors import UserError


def _suffix_ok(p: Path, suffixes: tuple[str, ...]) -> bool:
    name = p.name.lower()
    return any(name.endswith(s) for s in suffixes)


def collect_files(paths: Sequence[str | Path], suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files named by ``paths`` (directories searched recursively, hidden entries skipped), deduplicated.

    An explicitly named file with another suffix, or a missing path, raises a :class:`UserError`.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise UserError(f"no such file or directory: {p}")
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and _suffix_ok(f, suffixes)
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        elif _suffix_ok(p, suffixes):
            found = [p]
        else:
            raise UserError(f"{p}: unsupported {what} file type (expected one of {', '.join(suffixes)})")
        for f in found:
            r = f.resolve()
            if r not in seen:
                seen.add(r)
                out.append(r)
    return out
