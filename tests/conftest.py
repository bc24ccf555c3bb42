"""Tests run with float64 enabled so exactness checks can use tight tolerances;
tests of the float32 default pass dtypes explicitly."""

import jax

jax.config.update("jax_enable_x64", True)
