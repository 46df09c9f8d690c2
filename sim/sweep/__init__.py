"""Parameter sweeps with replications, on a local process pool or a Dask cluster.

spec.py (``sweep:`` block -> points), keys.py (content key of a point), worker.py (the task
run per point), executors.py (local pool, Dask), store.py (partitioned Parquet dataset +
completion markers), aggregate.py (mean and 95 % CI; dataset scans), progress.py,
runner.py (`run_sweep`), cli.py (``netns-sim sweep``).
"""
