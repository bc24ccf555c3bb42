"""streamgrad: online training of recurrent networks on long streams with exact gradients."""

import os

__version__ = "0.1.0"


def _cpu_runtime_settings() -> None:
    """Run jitted programs inline on the calling thread (`jax_cpu_enable_async_dispatch`
    False) and XLA:CPU's Eigen operations single-threaded (`--xla_cpu_multi_thread_eigen=false`),
    unless the user says otherwise (JAX_CPU_ENABLE_ASYNC_DISPATCH=true in the environment,
    or the flag in XLA_FLAGS).

    Why: with the defaults, jitted programs of this package (vmapped learners, long scans)
    wedged now and then on a 2-core machine, at zero CPU: the program ran on a worker of
    XLA's asynchronous work runner, which waited forever for the program's own tasks while
    every other worker was parked (gdb stacks; seen in the real-series study, FrozenLake runs
    and a vmapped GRU). A similar hang is reported for other JAX projects
    (PyAutoLabs/PyAutoFit#1530). Running inline keeps the program off that pool. The cost is
    small here: chunks are long jitted scans, so there is little Python work to overlap, and
    the engine's per-step products are too small for Eigen's threads to pay off (a dense-RTRL
    Elman step at N = 32 takes the same 13 us either way). Both settings are read when JAX
    creates its CPU backend, i.e. at the first computation; importing streamgrad first
    applies them.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    import jax  # jax itself reads no environment variable for this option

    dispatch = os.environ.get("JAX_CPU_ENABLE_ASYNC_DISPATCH", "false").lower() in ("1", "true")
    jax.config.update("jax_cpu_enable_async_dispatch", dispatch)


_cpu_runtime_settings()
