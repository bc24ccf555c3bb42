"""Sweeps: the same spec in this process, on a local Dask cluster and on a cluster started with
the `dask scheduler` / `dask worker` commands gives bitwise the same results; a worker killed
mid-run is replaced and its run resumed; failures are isolated; reruns skip finished runs and
refuse a changed spec."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from streamgrad.cli import main
from streamgrad.data.synthetic import add_task
from streamgrad.data.tabular import write_table
from streamgrad.errors import UserError
from streamgrad.sweep.driver import SweepResult, run_sweep
from streamgrad.sweep.results import aggregate, flatten
from streamgrad.sweep.spec import expand, load_spec, run_id

SPEC = """
command = "train"
[base]
data = "stream.csv"
target = "y"
hidden = 8
chunk = 200
checkpoint_every = 400
[grid]
seed = [0, 1]
algo = ["rtrl", "tbptt:5"]
"""
TIMING = ["steps_per_second", "wall_seconds"]  # differ from run to run by nature


def quiet() -> Console:
    return Console(file=io.StringIO())


def numbers(result: SweepResult | Path) -> pd.DataFrame:
    """The results table without its timing columns."""
    table = pd.read_parquet(result / "results.parquet") if isinstance(result, Path) else None
    table = result.table if table is None else table
    return table.drop(columns=TIMING)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spec")
    write_table(add_task(4000, lags=(3, 6), seed=1), folder / "stream.csv")
    (folder / "sweep.toml").write_text(SPEC)
    return folder / "sweep.toml"


@pytest.fixture(scope="module")
def reference(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spec run in this process: what every other way of running it must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    run_sweep(spec, out, workers=0, console=quiet())
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two single-threaded workers started with the dask command-line tools,
    on 127.0.0.1; yields the scheduler's address."""
    folder = tmp_path_factory.mktemp("cluster")
    dask = [str(Path(sys.executable).parent / "dask")]
    scheduler_file = folder / "scheduler.json"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--port", "0", "--scheduler-file", str(scheduler_file), *common],
            stderr=subprocess.DEVNULL,
        )
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.is_file():
        assert time.monotonic() < deadline, "dask scheduler did not start"
        time.sleep(0.1)
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nthreads",
                    "1",
                    *common,
                ],
                stderr=subprocess.DEVNULL,
            )
        )
    from distributed import Client

    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for process in reversed(processes):
        process.terminate()
        process.wait(timeout=30)


def test_spec_expands_into_runs_with_stable_ids(spec: Path, tmp_path: Path) -> None:
    runs = expand(load_spec(spec), spec.parent)
    assert [run.overrides for run in runs] == [
        {"seed": 0, "algo": "rtrl"},
        {"seed": 0, "algo": "tbptt:5"},
        {"seed": 1, "algo": "rtrl"},
        {"seed": 1, "algo": "tbptt:5"},
    ]
    assert runs[1].id == "seed=0_algo=tbptt-5-" + run_id({"algo": "tbptt:5", "seed": 0})[-8:]
    assert runs[0].options["data"] == str(spec.parent / "stream.csv")  # absolute, for workers
    assert runs[0].options["hidden"] == 8
    listed = tmp_path / "listed.toml"
    listed.write_text(SPEC + "[[runs]]\nhidden = 4\n[[runs]]\nhidden = 6\nlr = 0.1\n")
    runs = expand(load_spec(listed), tmp_path)
    assert len(runs) == 8 and len({run.id for run in runs}) == 8
    assert runs[-1].overrides == {"seed": 1, "algo": "tbptt:5", "hidden": 6, "lr": 0.1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('command = "fit"', "command: unknown command 'fit'"),
        ('command = "experiment nope"', "unknown experiment 'nope'"),
        ('command = "train"\n[grid]\nseed = []', "grid.seed is an empty list"),
        ('command = "train"\n[grid]\nseed = [1, 1]', "grid.seed repeats a value"),
        ('command = "train"\ngird = 1', "gird: Extra inputs are not permitted"),
        ('command = "train"\n[grid]\nseed = [1]\n[[runs]]\nseed = 2', "seed is set both"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match="bad.toml: .*" + message):
        load_spec(path)


def test_summaries_flatten_into_columns_and_aggregate_over_seeds() -> None:
    summary = {
        "config": {"hidden": 8},  # settings, not results
        "label": "rtrl",
        "resumed": True,
        "overall": {"loss": 0.5, "steps": 100},
        "results": [{"method": "rtrl", "accuracy": 0.6}, {"method": "tbptt:1", "accuracy": 0.5}],
    }
    assert flatten(summary) == {
        "overall.loss": 0.5,
        "overall.steps": 100,
        "results.rtrl.accuracy": 0.6,
        "results.tbptt:1.accuracy": 0.5,
    }
    table = pd.DataFrame(
        {
            "status": ["done", "done", "done", "failed"],
            "seed": [0, 1, 0, 1],
            "algo": ["a", "a", "b", "b"],
            "loss": [1.0, 3.0, 2.0, None],
        }
    )
    assert aggregate(table, ["seed", "algo"], "loss") == [
        {"algo": "a", "runs": 2, "mean": 2.0, "std": 2**0.5, "min": 1.0, "max": 3.0},
        {"algo": "b", "runs": 1, "mean": 2.0, "std": None, "min": 2.0, "max": 2.0},
    ]


def test_in_process_local_cluster_and_command_line_cluster_agree_bitwise(
    spec: Path, reference: Path, cluster: str, tmp_path: Path
) -> None:
    expected = numbers(reference)
    assert (expected.status == "done").all() and expected["overall.loss"].notna().all()
    local = run_sweep(spec, tmp_path / "local", workers=2, console=quiet())
    pd.testing.assert_frame_equal(numbers(local), expected, check_exact=True)
    remote = run_sweep(spec, tmp_path / "remote", scheduler=cluster, console=quiet())
    pd.testing.assert_frame_equal(numbers(remote), expected, check_exact=True)
    # what each run wrote itself agrees too, chunk by chunk
    for folder in (path for path in (reference / "runs").iterdir() if path.is_dir()):
        theirs = pd.read_csv(folder / "metrics.csv").drop(columns="steps_per_second")
        for name in ("local", "remote"):
            mine = pd.read_csv(tmp_path / name / "runs" / folder.name / "metrics.csv")
            pd.testing.assert_frame_equal(mine[theirs.columns], theirs, check_exact=True)


def test_a_killed_worker_is_replaced_and_its_run_resumed(
    spec: Path, reference: Path, cluster: str, tmp_path: Path
) -> None:
    from distributed import Client

    out = tmp_path / "killed"
    results: list[SweepResult] = []
    driver = threading.Thread(
        target=lambda: results.append(run_sweep(spec, out, scheduler=cluster, console=quiet()))
    )
    driver.start()
    killed = None
    with Client(cluster, timeout="30s") as client:
        deadline = time.monotonic() + 120
        while killed is None:
            assert time.monotonic() < deadline and driver.is_alive(), "no run got checkpointed"
            for worker, keys in client.processing().items():
                for key in keys:
                    folder = out / "runs" / str(key).split("@")[0]
                    if list((folder / "checkpoints").glob("checkpoint-*.npz")):
                        pid = client.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)
                        killed = folder
                        break
                if killed:
                    break
            time.sleep(0.02)
    driver.join(timeout=300)
    assert results, "the sweep did not finish"
    pd.testing.assert_frame_equal(numbers(results[0]), numbers(reference), check_exact=True)
    record = json.loads(killed.with_name(f"{killed.name}.json").read_text())
    assert record["status"] == "done" and record["resumed"] is True  # from its checkpoint


def test_a_failing_run_is_isolated(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = spec.parent / "failing.toml"
    failing.write_text(
        SPEC.replace("seed = [0, 1]", "seed = [0]") + "[[runs]]\n[[runs]]\nhidden = 0\n"
    )
    result = run_sweep(failing, tmp_path / "out", workers=0, console=quiet())
    assert list(result.table.status) == ["done", "done", "failed", "failed"]
    assert result.failed == 2
    assert set(result.table.error.dropna()) == {
        "--hidden: Input should be greater than or equal to 1 (got 0)"
    }
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["done"], summary["failed"]) == (2, 2)
    assert (tmp_path / "out" / "plot.png").is_file()

    # the command line: the same again (finished runs skipped, failed ones retried), a table
    # of the failures, exit code 2
    with pytest.raises(SystemExit) as exit_code:
        main(["sweep", str(failing), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert exit_code.value.code == 2
    printed = capsys.readouterr()
    assert "2 of 4 runs failed" in printed.out and "(got 0)" in printed.out
    assert printed.err.endswith("error: 2 of 4 runs failed (table above)\n")


def test_rerun_skips_finished_runs_resumes_the_rest_and_refuses_a_changed_spec(
    spec: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    shutil.copytree(reference, out)
    runs = sorted((out / "runs").glob("*.json"))
    interrupted = runs[0].with_suffix("")
    runs[0].unlink()  # as if the sweep died while this run was going: no record, no summary,
    (interrupted / "summary.json").unlink()  # only its first checkpoint
    checkpoints = sorted((interrupted / "checkpoints").glob("checkpoint-*.npz"))
    assert len(checkpoints) >= 2
    for checkpoint in checkpoints[1:]:
        checkpoint.unlink()
    runs[1].unlink()  # as if the sweep died between this run's end and its record
    before = {path: path.stat().st_mtime_ns for path in runs[2:]}
    result = run_sweep(spec, out, workers=0, console=quiet())
    pd.testing.assert_frame_equal(numbers(result), numbers(reference), check_exact=True)
    assert {path: path.stat().st_mtime_ns for path in runs[2:]} == before  # skipped
    assert [json.loads(path.read_text())["resumed"] for path in runs[:2]] == [True, True]

    changed = spec.parent / "changed.toml"
    changed.write_text(SPEC.replace("hidden = 8", "hidden = 16"))
    with pytest.raises(UserError, match=r"changed.toml: .*: base.hidden 16 \(was 8\)"):
        run_sweep(changed, out, workers=0, console=quiet())


def test_cluster_workers_must_run_one_task_at_a_time() -> None:
    from distributed import LocalCluster

    from streamgrad.sweep.executor import make_executor

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as threaded,
        pytest.raises(UserError, match=r"runs 2 threads; start workers with .*--nthreads 1"),
    ):
        make_executor(scheduler=threaded.scheduler_address)
    with pytest.raises(UserError, match="--workers and --scheduler: give one"):
        make_executor(workers=2, scheduler="tcp://127.0.0.1:1")


def test_the_running_set_holds_the_executing_tasks_only(cluster: str) -> None:
    from streamgrad.sweep.executor import DaskExecutor, Task

    seen: list[set[str]] = []
    with DaskExecutor(scheduler=cluster) as executor:
        tasks = [Task(f"nap{i}", time.sleep, (1.0,)) for i in range(6)]
        outcomes = executor.run(tasks, running=seen.append, finished=lambda outcome: None)
    assert sorted(o.key for o in outcomes) == sorted(t.key for t in tasks)
    assert all(o.error is None for o in outcomes)
    assert max(map(len, seen)) == 2  # two single-threaded workers, six tasks queued


def _fail(kind: str) -> None:
    if kind == "user":
        raise UserError("--sizes: every N must be >= 1, got '0'")
    raise ZeroDivisionError("division by zero")


def test_map_tasks_keeps_task_order_and_raises_the_first_failure() -> None:
    from streamgrad.sweep.executor import Task, map_tasks

    seen: list[str] = []
    tasks = [Task(f"t{i}", pow, (i, 2)) for i in (3, 1, 2)]
    assert map_tasks(tasks, finished=lambda outcome: seen.append(outcome.key)) == [9, 1, 4]
    assert seen == ["t3", "t1", "t2"]
    with pytest.raises(UserError, match=r"^--sizes: every N must be >= 1, got '0'$"):
        map_tasks([Task("ok", abs, (-1,)), Task("bad", _fail, ("user",))])
    with pytest.raises(RuntimeError, match=r"task bug failed: ZeroDivisionError: division by zero"):
        map_tasks([Task("bug", _fail, ("bug",))])


# Each experiment on small settings: (options, {file: timing columns to leave out}).
EXPERIMENT_CASES = {
    "kernel-limit-hidden": (
        {"sizes": (50, 3000), "steps": 600, "paths": 5, "budget": 1e7},
        {"paths.csv": ["seconds"], "histograms.csv": [], "time_averages.parquet": []},
    ),
    "kernel-limit-training": (
        {"sizes": (30, 100), "seeds": 2, "samples": 50},
        {"runs.csv": ["seconds"], "outputs.parquet": []},
    ),
    "actor-critic": (
        {"sizes": (20, 60), "seeds": (0, 1), "t_max": 2.0, "records": 4},
        {"metrics.parquet": []},
    ),
}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize("name", list(EXPERIMENT_CASES))
def test_experiments_give_bitwise_the_same_numbers_in_process_and_on_local_workers(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamgrad import jobs
    from streamgrad.experiments import kernel_limit_hidden

    # batches of at most 4096 / N paths: N = 3000 gives five tasks of one path each
    monkeypatch.setattr(kernel_limit_hidden, "UNITS_PER_BATCH", 2**12)
    options, files = EXPERIMENT_CASES[name]
    jobs.experiment(name, tmp_path / "here", options)
    jobs.experiment(name, tmp_path / "there", {**options, "workers": 2})
    for file, timing in files.items():
        here = _read(tmp_path / "here" / file).drop(columns=timing)
        assert len(here) > 0
        there = _read(tmp_path / "there" / file).drop(columns=timing)
        pd.testing.assert_frame_equal(there, here, check_exact=True)
    # where the tasks ran is not part of the run's identity
    assert "workers" not in json.loads((tmp_path / "there" / "run.json").read_text())


def test_experiment_workers_and_scheduler_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["experiment", "kernel-limit-hidden", "--sizes", "20", "--steps", "50"]
    with pytest.raises(SystemExit) as exit_code:
        main(
            [*command, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)]
        )
    assert exit_code.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --workers and --scheduler: give one (the cluster has its own workers)"
    )


def test_scaling_measurement_runs_end_to_end() -> None:
    from streamgrad.sweep.scaling import measure

    result = measure(runs=2, rows=300, workers=2, hidden=4)
    assert result["runs"] == 2 and result["in_process_seconds"] > 0 < result["workers_seconds"]
    assert result["ratio"] == result["workers_seconds"] / result["in_process_seconds"]
    assert 0 < result["seconds_per_task_overhead"] < 1
