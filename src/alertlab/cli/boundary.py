"""The CLI's error boundary: user mistakes become one line and exit code 2, never a traceback.

Every command runs inside :class:`ErrorBoundary` (the root group's ``invoke``), so commands
need no ``try/except``: the API raises :class:`alertlab.errors.UserError` (bad input, bad
options, missing or busy workspace) and it is printed as ``error: <message>`` on one line,
exit code 2. ``alertlab --debug …`` re-raises it with the traceback. Other exceptions are bugs
and keep their traceback.

The root callback also holds the global flags: ``--debug`` and ``--no-wait`` (fail at once
when another process is writing to the workspace instead of queueing behind it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer >= 0.24 vendors click; its TyperGroup.invoke takes the vendored Context
    from typer._click.core import Context

from alertlab.errors import UserError

DEBUG = False


class ErrorBoundary(TyperGroup):
    """Root command group mapping :class:`UserError` to one line + exit 2 (unless ``--debug``)."""

    def invoke(self, ctx: Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if DEBUG:
                raise
            from alertlab.cli.options import fail

            fail(" ".join(str(exc).split()) or type(exc).__name__)


NoWaitOpt = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Fail at once if another process is writing to the workspace (default: queue behind it).",
    ),
]


def apply_no_wait(no_wait: bool) -> None:
    """A command's own ``--no-wait`` (same as the global one)."""
    if no_wait:
        from alertlab.store.lock import set_default_wait

        set_default_wait(False)


def root_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show the Python traceback of an error.")] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait", help="Fail at once if another process is writing to the workspace (default: queue)."
        ),
    ] = False,
    memory_gb: Annotated[
        float | None,
        typer.Option(
            "--memory-gb",
            min=0.25,
            envvar="ALERTLAB_MEMORY_GB",
            help="Memory budget in GB for ingest, window cutting and runs (default 2).",
        ),
    ] = None,
) -> None:
    """Truth layer and exit-strategy lab for crypto caller alerts."""
    import os

    from alertlab.store.lock import set_default_wait

    global DEBUG
    DEBUG = debug
    # set on every invocation (in-process runners reuse the module): queue unless told not to
    set_default_wait(not (no_wait or os.environ.get("ALERTLAB_NO_WAIT", "") in ("1", "true", "yes")))
    from alertlab.util.memory import set_memory_budget_gb

    set_memory_budget_gb(memory_gb)
