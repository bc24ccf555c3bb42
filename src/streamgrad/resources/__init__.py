"""Data shipped inside the package, found through `importlib.resources` so that it works from
any install (a wheel, an editable checkout), never through the checkout's layout.

`lobster/`: the LOBSTER sample day (AMZN, 2012-06-21, level 1), gzip-compressed; see its
README for the source and the checksums of the uncompressed files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib.resources import as_file, files
from pathlib import Path

BUNDLED_DAY = "AMZN_2012-06-21_34200000_57600000_{}_1.csv.gz"


@contextmanager
def bundled_lobster_day() -> Iterator[tuple[Path, Path]]:
    """(orderbook, message) paths of the bundled AMZN day, valid inside the `with` block."""
    folder = files(__name__).joinpath("lobster")
    with ExitStack() as stack:
        orderbook, message = (
            stack.enter_context(as_file(folder.joinpath(BUNDLED_DAY.format(kind))))
            for kind in ("orderbook", "message")
        )
        yield orderbook, message
