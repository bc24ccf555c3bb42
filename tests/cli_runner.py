"""Running the command line inside a test (imported by the test modules that need it)."""

from __future__ import annotations

import pytest

from streamgrad.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `streamgrad ARGS` in this process; return the exit code and what went to stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return int(exit_info.value.code or 0), capsys.readouterr().err
