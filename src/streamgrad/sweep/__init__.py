"""Sweeps: one command (`train`, `lob` or `experiment NAME`) run over a grid or list of option
overrides, in this process or on a Dask cluster, resumable, with the results gathered.

    spec.py      the TOML spec (pydantic), expanded into runs with stable ids
    executor.py  one interface, two backends: in this process, or Dask distributed
                 (a LocalCluster on 127.0.0.1, or a running scheduler); map_tasks, the
                 form the experiments' inner loops use
    workers.py   the local workers' set-up: each pinned to its own core
    task.py      what a worker does with one run: lock its folder, start or resume it
    results.py   results.parquet / results.csv, summary.json and the metric plot
    progress.py  the live view: runs done / running / failed
    driver.py    run_sweep: ties them together
    scaling.py   the speed-up of 8 runs on K workers (python -m streamgrad.sweep.scaling)

Layout of a sweep folder DIR:

    DIR/sweep.json          the spec the sweep was started with (a rerun must repeat it)
    DIR/runs/<id>/          the outputs of one run, as the single command writes them
    DIR/runs/<id>.json      the sweep's record of that run: overrides, status, summary or error
    DIR/results.parquet, DIR/results.csv, DIR/summary.json, DIR/plot.png

Dask is imported only by the Dask backend, so `streamgrad train` starts without it.
"""
