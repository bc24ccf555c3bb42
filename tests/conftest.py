"""Tests run with float64 enabled so exactness checks can use tight tolerances;
tests of the float32 default pass dtypes explicitly."""

from collections.abc import Iterator

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches() -> Iterator[None]:
    """Drop JAX's compiled programs after each test module. A single process that compiled
    the programs of ~350 tests segfaulted inside XLA's compiler (a serial `pytest` run; the
    `-n 2` run of `make test` splits the tests over two processes); one module's programs are
    rarely reused by the next."""
    yield
    jax.clear_caches()
