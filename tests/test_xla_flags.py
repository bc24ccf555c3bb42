"""Importing streamgrad turns off XLA:CPU's multi-threaded Eigen pool (the hang workaround in
streamgrad/__init__.py), and leaves a user's own setting of that flag alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "import streamgrad, os; print(os.environ['XLA_FLAGS'])"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "--xla_cpu_multi_thread_eigen=false"),
        (
            "--xla_force_host_platform_device_count=2",
            "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false",
        ),
        ("--xla_cpu_multi_thread_eigen=true", "--xla_cpu_multi_thread_eigen=true"),
    ],
)
def test_import_sets_single_threaded_eigen(given: str | None, expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    if given is not None:
        env["XLA_FLAGS"] = given
    shown = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == expected
