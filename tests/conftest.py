"""Shared helpers for the tests: small scenario builders."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


# TEMPORARY: test_cli_e2e.py and test_sweep.py are being rewritten on another branch, so their
# slow tests are marked here by name instead of with @pytest.mark.slow in the files; the lead
# moves these marks into the files after merging and removes this hook. Each took > 3 s.
_SLOW_ELSEWHERE = {
    "tests/test_cli_e2e.py": ("test_schemes_and_describe", "test_help_on_every_subcommand",
                              "test_killed_run_leaves_no_result_and_keeps_the_earlier_one",
                              "test_run_refuses_a_sweep_file_and_validate_checks_every_point",
                              "test_good_run_writes_every_file_with_documented_columns",
                              "test_existing_result_needs_force"),
    "tests/test_sweep.py": ("test_real_dask_scheduler_and_worker_subprocesses",
                            "test_sweep_killed_with_sigkill_resumes_with_every_point_exactly_once",
                            "test_local_pool_and_inprocess_dask_give_the_same_results"),
}


def pytest_collection_modifyitems(config, items):
    import pytest
    for item in items:
        path, _, name = item.nodeid.partition("::")
        if name.split("[")[0] in _SLOW_ELSEWHERE.get(path, ()):
            item.add_marker(pytest.mark.slow)
