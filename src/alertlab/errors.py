"""The one exception type for user mistakes (bad input, bad options, a busy or missing workspace).

The API raises :class:`UserError` with a message that names the file or option and says what
to do; the CLI's error boundary (``alertlab.cli.main``) prints it as one line and exits with
code 2, without a traceback (``alertlab --debug`` shows it). Anything else is a bug and keeps
its traceback.

``UserError`` subclasses ``ValueError`` so callers that caught ``ValueError`` for bad input keep
working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix; the message is one line naming the culprit and the remedy."""

    exit_code = 2


class WorkspaceBusy(UserError):
    """Another process holds the workspace writer lock and the caller asked not to wait."""


__all__ = ["UserError", "WorkspaceBusy"]
