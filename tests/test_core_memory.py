"""Memory model and socket-table occupancy as namespaces grow into the thousands."""

import numpy as np
import pytest

from sim.core.costs import load_profile
from sim.core.memory import SOCKET_TABLES, memory_table
from sim.core.simulate import simulate
from sim.core.sockets import SocketTables
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
    for s in per_ns:
        b = bytes_of(table, s, SOCKET_TABLES)
        np.testing.assert_allclose(b, b[0] * np.array(COUNTS))


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
    def lookup_ns(n):
        sc = one_host("shortcut-socket", namespaces=n, sockets_per_namespace=4,
                      flows=[{"kind": "constant", "src": "h1:wire", "dst": f"h1:ns{k}", "rate_pps": 1000}
                             for k in range(0, n, max(n // 20, 1))], duration_ns=2e7)
        return delivered(simulate(sc).packets).socket_lookup_ns.mean()
    few, many = lookup_ns(10), lookup_ns(2000)
    per_entry = PROFILE.stages["socket_lookup"].per_entry_ns
    assert many - few > per_entry * 10
