"""User-facing errors.

A `UserError` is a problem with what the user gave us (a file, a column, an option), as
opposed to a bug. The CLI prints its message on one line and exits with code 2, with no
traceback. Messages name the file, row, column and value wherever they are known.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: reported on one line, exit code 2."""


class DataError(UserError):
    """A data file or array that cannot be used as given."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        parts = []
        if file is not None:
            parts.append(str(file))
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        if value is not None:
            parts.append(f"value {value!r}")
        where = ", ".join(parts)
        super().__init__(f"{where}: {problem}" if where else problem)
        self.file, self.row, self.column, self.value = file, row, column, value


class DivergenceError(UserError):
    """The run produced NaN/inf (loss, gradient or influence) at a known step."""

    def __init__(self, step: int, what: str, backoffs: int = 0) -> None:
        after = f" (after {backoffs} learning-rate back-offs)" if backoffs else ""
        super().__init__(f"run diverged at step {step}: {what} is not finite{after}")
        self.step, self.what, self.backoffs = step, what, backoffs

    def record(self) -> dict[str, object]:
        """What summary.json says of the divergence."""
        return {
            "step": self.step,
            "what": self.what,
            "lr_backoffs_taken": self.backoffs,
            "message": str(self),
        }
