"""Studies: the points of a scenario (``compare:`` grid or ``sweep:`` block) x replications,
run in-process (``netns-sim run``), on a local process pool or a Dask cluster (``sweep``),
into one result layout.

spec.py (``sweep:`` block -> points), keys.py (content key of a point), worker.py (the task
run per point; calls `sim.core.simulate`), executors.py (in-process, local pool, Dask), store.py
(partitioned Parquet dataset + completion markers), aggregate.py (the result tables: per run,
mean and 95 % CI; dataset scans), progress.py, runner.py (`run_study`, the one runner),
cli.py (``netns-sim sweep``).
"""
