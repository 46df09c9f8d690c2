"""Memory model and socket-table occupancy as namespaces grow into the thousands; socket
tables sized by the kernel's rules, one size for lookups and memory."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml

from sim.calibrate.memory import model_totals
from sim.cli import main
from sim.core.costs import load_profile
from sim.core.memory import PER_CPU, SOCKET_TABLES, UNITS, memory_table, socket_table_bytes, structures
from sim.core.simulate import simulate
from sim.core.sockets import SocketTables, TableConfig, tcp_ehash_entries, udp_table_entries
from tests.scenarios_for_tests import SCHEMES, delivered, one_host
from sim.core.schemes import builtin_registry

REG = builtin_registry()
PROFILE = load_profile()
COUNTS = [1, 10, 100, 1000, 10000]


@pytest.fixture(scope="module")
def table():
    return memory_table([REG.get(s) for s in SCHEMES], PROFILE, COUNTS, cores=2)


def bytes_of(table, scheme, structure=None):
    t = table[table.scheme == scheme]
    if structure is not None:
        t = t[t.structure == structure]
    return t.groupby("namespaces").bytes.sum().reindex(COUNTS).to_numpy()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_per_namespace_structures_grow_linearly(table, scheme):
    for structure in set(table[table.scheme == scheme].structure) - {SOCKET_TABLES}:
        b = bytes_of(table, scheme, structure)
        np.testing.assert_allclose(b, b[0] * np.array(COUNTS))


def test_shared_socket_tables_do_not_grow_per_namespace_tables_do(table):
    shared = [s for s in SCHEMES if REG.get(s).spec.socket_tables != "per_namespace"]
    per_ns = [s for s in SCHEMES if REG.get(s).spec.socket_tables == "per_namespace"]
    assert shared and per_ns
    for s in shared:
        b = bytes_of(table, s, SOCKET_TABLES)
        assert (b == b[0]).all(), s
    for s in per_ns:                    # the root's own table plus one per container
        b = bytes_of(table, s, SOCKET_TABLES)
        np.testing.assert_allclose(b, b[0] / 2 * (np.array(COUNTS) + 1))


def test_bind_filtering_costs_almost_nothing_per_namespace(table):
    l3 = bytes_of(table, "l3-bind")
    l2 = bytes_of(table, "l2-routed")
    per_ns_l3 = (l3[-1] - l3[0]) / (COUNTS[-1] - COUNTS[0])
    per_ns_l2 = (l2[-1] - l2[0]) / (COUNTS[-1] - COUNTS[0])
    assert per_ns_l3 < 0.01 * per_ns_l2
    assert per_ns_l3 < 1024


def test_shared_table_chains_lengthen_with_namespaces_per_namespace_tables_do_not():
    rng = np.random.default_rng(0)
    shared = [SocketTables("shared_permuted", n, 4, 128, rng).mean_examined() for n in (1, 100, 1000, 10000)]
    per_ns = [SocketTables("per_namespace", n, 4, 128, rng).mean_examined() for n in (1, 100, 1000, 10000)]
    assert shared == sorted(shared) and shared[-1] > 50 * shared[0]
    assert per_ns == [1.0] * 4
    # a uniform spread of N sockets over B buckets examines (N/B + 1)/2 entries on average
    assert shared[-1] == pytest.approx((40000 / 128 + 1) / 2, rel=0.1)


def test_the_permutation_spreads_namespaces_that_bind_the_same_port():
    rng = np.random.default_rng(0)
    t = SocketTables("shared_permuted", 1000, 1, 128, rng)
    assert len(t.chain_lengths) == 128 and t.chain_lengths.max() < 30      # not one chain of 1000


def test_lookup_cost_shows_the_longer_chains():
    def lookup_ns(n):                   # a 128-slot shared table (the kernel's minimum is 256)
        sc = one_host("shortcut-socket", namespaces=n, sockets_per_namespace=4, socket_hash_buckets=128,
                      flows=[{"kind": "constant", "src": "h1:wire", "dst": f"h1:ns{k}", "rate_pps": 1000}
                             for k in range(0, n, max(n // 20, 1))], duration_ns=2e7)
        return delivered(simulate(sc).packets).socket_lookup_ns.mean()
    few, many = lookup_ns(10), lookup_ns(2000)
    per_entry = PROFILE.stages["socket_lookup"].per_entry_ns
    assert many - few > per_entry * 10


# -- table sizes by the kernel's rules ------------------------------------------------------------

def test_boot_time_tables_are_sized_from_ram_as_the_kernel_does():
    # the calibration machine: MemTotal 24,683,584 kB; its dmesg says
    # "UDP hash table entries: 16384" and "TCP established hash table entries: 262144"
    ram = 24_683_584 * 1024
    assert (udp_table_entries(ram), tcp_ehash_entries(ram)) == (16384, 262144)
    # one UDP slot per 2 MB, one TCP bucket per 128 KB, powers of two, within the kernel's limits
    for gib in (1, 4, 64):
        assert udp_table_entries(gib * 2**30) == 512 * gib and tcp_ehash_entries(gib * 2**30) == 8192 * gib
    assert udp_table_entries(2**20) == 256 and udp_table_entries(2**42) == 65536     # UDP_HTABLE_SIZE_MIN/MAX
    assert tcp_ehash_entries(2**42) == 512 * 1024
    assert tcp_ehash_entries(2**20) * 8 >= 4096                                       # at least a page


def _host_tables(scheme, **host):
    return simulate(one_host(scheme, namespaces=4, flows=(), duration_ns=1e3, **host)).model.hosts[0].table_config


def test_a_shared_table_is_sized_from_ram_a_per_namespace_one_by_the_profile_unless_set():
    shared, per_ns = _host_tables("shortcut-socket"), _host_tables("l2-routed")
    assert (shared.mode, shared.udp_buckets, shared.tcp_buckets) == ("shared_permuted", 16384, 262144)
    assert (per_ns.mode, per_ns.udp_buckets, per_ns.tcp_buckets) == ("per_namespace", 128, 128)
    assert _host_tables("shortcut-socket", ram_bytes=2**30).udp_buckets == 512
    assert _host_tables("l2-routed", socket_hash_buckets=1024, tcp_ehash_buckets=64).udp_buckets == 1024
    era = _host_tables("l2-routed", socket_tables="shared_permuted")              # mainline's tables
    assert (era.mode, era.udp_buckets) == ("shared_permuted", 16384)


def test_a_host_may_run_a_scheme_with_the_other_eras_tables():
    def run(tables):
        sc = one_host("l2-routed", namespaces=1000, sockets_per_namespace=4, socket_tables=tables,
                      socket_hash_buckets=128, duration_ns=1e6,
                      flows=[{"kind": "constant", "src": "h1:wire", "dst": "h1:ns*", "rate_pps": 1e5}])
        sc["memory_namespace_counts"] = [10, 1000]
        res = simulate(sc)
        mem = res.memory[res.memory.structure == SOCKET_TABLES].set_index("namespaces").bytes
        return res.model.hosts[0].tables.mean_examined(), mem
    (per_lookup, per_mem), (shared_lookup, shared_mem) = run("per_namespace"), run("shared_permuted")
    assert per_lookup == 1.0 and shared_lookup == pytest.approx((4000 / 128 + 1) / 2, rel=0.1)  # one 128-slot table
    assert per_mem[1000] == pytest.approx(per_mem[10] * 1001 / 11) and shared_mem[1000] == shared_mem[10]
    assert per_mem[1000] > 5 * shared_mem[1000]      # (the shared TCP ehash stays sized from RAM: 2 MiB)


SCENARIO = {"name": "tables", "hosts": [{"name": "h0", "scheme": "shortcut-socket", "namespaces": 2000,
                                         "sockets_per_namespace": 4, "cores": 2}],
            "flows": [{"kind": "constant", "src": "h0:wire", "dst": "h0:ns*", "rate_pps": 4e5}],
            "run": {"duration_ns": 2e6}, "memory_namespace_counts": [2000]}


def _run(tmp_path, name, *sets):
    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / name
    assert main(["run", str(path), "--out", str(out), "--quiet", *sets]) == 0
    mem = pd.read_csv(out / "memory.csv")
    packets = ds.dataset(out / "packets", partitioning="hive").to_table().to_pandas()
    lookup = packets[packets.status == "delivered"].socket_lookup_ns.mean()
    return float(mem[mem.structure == SOCKET_TABLES].bytes.iloc[0]), lookup


def test_socket_hash_buckets_changes_the_lookup_and_memory_consistently(tmp_path):
    """`--set hosts.*.socket_hash_buckets=B` moves both; the table size memory.csv implies and the
    one the lookup cost implies (chains of a uniform spread) agree."""
    profile, cores, sockets = load_profile(), 2, 2000 * 4
    c = profile.stages["socket_lookup"]
    tcp = tcp_ehash_entries(profile.host.ram_bytes)
    seen = {}
    for buckets in (None, 128, 65536):
        sets = ["--set", f"hosts.*.socket_hash_buckets={buckets}"] if buckets else []
        mem, lookup = _run(tmp_path, f"b{buckets}", *sets)
        size = buckets or udp_table_entries(profile.host.ram_bytes)
        assert mem == socket_table_bytes(TableConfig("shared_permuted", size, tcp), profile, 2000, cores)
        from_memory = round((mem - socket_table_bytes(TableConfig("shared_permuted", 0, tcp), profile, 0, cores))
                            / profile.memory_bytes.udp_hash_slot)
        assert from_memory == size
        examined = (lookup - c.base_ns) / c.per_entry_ns
        # a uniform spread: each lookup walks its own entry and, on average, half of the other
        # namespaces' sockets in its slot (its own 4 sockets never share a slot: port ^ ns_hash)
        assert examined == pytest.approx(1 + (sockets - 4) / (2 * from_memory), rel=0.1)
        seen[buckets] = (mem, lookup)
    assert seen[65536][0] > seen[None][0] > seen[128][0]
    assert seen[65536][1] < seen[None][1] < seen[128][1]


def test_per_namespace_tables_too_move_lookup_and_memory_together(tmp_path):
    """l2-routed (one table per namespace), 512 sockets per namespace on consecutive ports: in a
    table of B slots socket 0 shares its slot with 512 / B sockets bound after it (insertion at
    the head), so a lookup examines max(1, 512 / B) entries; memory.csv has every namespace's
    table, and the root's, of B slots."""
    doc = {**SCENARIO, "hosts": [{"name": "h0", "scheme": "l2-routed", "namespaces": 10, "sockets_per_namespace": 512,
                                  "cores": 2}], "memory_namespace_counts": [10]}
    profile, c = load_profile(), load_profile().stages["socket_lookup"]
    for buckets in (128, 65536):
        path = tmp_path / "per-ns.yaml"
        path.write_text(yaml.safe_dump(doc))
        out = tmp_path / f"per-ns-{buckets}"
        assert main(["run", str(path), "--out", str(out), "--quiet",
                     "--set", f"hosts.*.socket_hash_buckets={buckets}"]) == 0
        mem = pd.read_csv(out / "memory.csv").set_index("structure").bytes[SOCKET_TABLES]
        assert mem == socket_table_bytes(TableConfig("per_namespace", buckets, 128), profile, 10, 2)
        packets = ds.dataset(out / "packets", partitioning="hive").to_table().to_pandas()
        lookup = packets[packets.status == "delivered"].socket_lookup_ns
        assert lookup.min() == lookup.max() == c.base_ns + c.per_entry_ns * max(1, 512 // buckets)


# -- what a namespace, a device and a veth pair are made of ------------------------------------------

def test_a_veth_pair_is_two_devices_and_their_veth_queues():
    sizes = PROFILE.memory_bytes
    device = sum(getattr(sizes, f) * k for f, k in UNITS["net_device"])
    pair = sum(getattr(sizes, f) * k for f, k in UNITS["veth_pair"])
    assert pair == 2 * device + 2 * sizes.veth_rq
    l2 = structures(REG.get("l2-routed"))           # its loopback, its veth pair
    assert l2["net_device"] == 3 and l2["veth_rq"] == 2 and l2["netns_struct"] == 1


def test_per_cpu_terms_grow_with_the_cores_and_nothing_else_does():
    s = REG.get("l2-routed")
    two, four = (memory_table([s], PROFILE, [100], cores=n).set_index("structure").bytes for n in (2, 4))
    grew = {k for k in two.index if four[k] != two[k]}
    # netns_per_cpu, netdev_per_cpu, nf_table, and the ehash spinlocks (2 cache lines per CPU)
    assert grew == set(PER_CPU) & set(two.index) | {SOCKET_TABLES}
    for k in PER_CPU:
        assert four[k] == 2 * two[k]


def test_the_default_profile_is_within_15_percent_of_the_measured_kernel():
    """The measurement committed with the calibrated profile (netns-sim calibrate on the
    development machine, docs/calibration.md) against the default profile's model of the same
    things on the same CPU count: a namespace with its loopback up, and a veth pair."""
    side = Path(__file__).resolve().parent.parent / "sim" / "profiles" / "amd-epyc-6.18.44.calibration.json"
    record = json.loads(side.read_text())["memory"]
    model = model_totals(PROFILE.memory_bytes.model_dump(), record["possible_cpus"])
    for what in ("namespace", "veth_pair"):
        assert model[what] == pytest.approx(record[what]["bytes"], rel=0.15), what
    # and a container of l2-routed (namespace + veth pair) costs clearly more than its namespace alone
    assert model["namespace"] + model["veth_pair"] > 1.3 * model["namespace"]
