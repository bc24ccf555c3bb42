"""streamgrad: online training of recurrent networks on long streams with exact gradients."""

import os

__version__ = "0.1.0"


def _single_threaded_eigen() -> None:
    """Run XLA:CPU's Eigen operations on the calling thread (`--xla_cpu_multi_thread_eigen=false`)
    unless XLA_FLAGS already sets that flag.

    Why: with the multi-threaded Eigen pool, jitted programs of this package (vmapped learners,
    long scans) wedged now and then on a 2-core machine: every XLA worker thread parked in the
    pool and `block_until_ready` waiting forever, at zero CPU (seen in the real-series study,
    FrozenLake runs and a vmapped GRU). The same hang is reported for other JAX projects
    (PyAutoLabs/PyAutoFit#1530) and goes away with this flag. The cost is small here: the
    engine's per-step products are too small for Eigen's threads to pay off (a dense-RTRL
    Elman step at N = 32 takes the same 13 us either way). It must be set before JAX creates
    its CPU backend, i.e. before the first computation; importing streamgrad does that.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()


_single_threaded_eigen()
