"""Command-line interface: `streamgrad train | lob | gradcheck | bench | sweep | experiment NAME
| rl train`.

Every command is thin: it parses typed options and calls one library function (mostly in
`streamgrad.jobs`). User errors (bad file, column, option, value; a diverging run) print one
line `error: ...` on stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import sys

import typer

from streamgrad.cli import commands, experiments, rl, train  # noqa: F401  (registers the commands)
from streamgrad.cli.app import app, console
from streamgrad.errors import UserError


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns user errors into one line and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
        if code:  # typer returns the code of a typer.Exit(n) when not in standalone mode
            sys.exit(code)
    except _EXITS as done:
        sys.exit(done.exit_code)
    except _ABORTS:
        sys.exit(130)
    except _USAGE_ERRORS as error:
        console.print(
            f"error: {error.format_message()}", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except UserError as error:
        console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


# typer raises click's exceptions (recent releases vendor click inside typer, so click may not
# be installed at all): find the base class of usage errors through typer's own BadParameter.
_EXITS = (typer.Exit,)
_ABORTS = (typer.Abort,)
_USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
