"""Rich progress bars for long work (ingest, windows, baseline, grids, trials), on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


class _Bar:
    """One task of a rich Progress, or a no-op when disabled."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._p, self._t = progress, task

    def advance(self, n: float = 1) -> None:
        if self._p is not None and self._t is not None:
            self._p.advance(self._t, n)

    def update(self, **kw) -> None:
        if self._p is not None and self._t is not None:
            self._p.update(self._t, **kw)


@contextlib.contextmanager
def bar(description: str, total: float | None, enabled: bool = True) -> Iterator[_Bar]:
    """Context manager yielding a bar with ``advance(n)`` / ``update(description=...)``."""
    if not enabled:
        yield _Bar(None, None)
        return
    with Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console,
        transient=False,
    ) as p:
        yield _Bar(p, p.add_task(description, total=total))
