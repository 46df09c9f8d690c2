"""The host model against queueing theory: M/M/1 and M/D/1 sojourn, Little's law, work conservation."""

import numpy as np
import pytest

from sim.core.simulate import simulate
from tests.scenarios_for_tests import UNIT_STAGE_COSTS, one_host

SERVICE_NS = 1000.0
SEEDS = (1, 2, 3, 4)
PACKETS = 150_000
WARMUP_NS = 5e6


def mm1_or_md1(rho, distribution, seed):
    rate_pps = rho / SERVICE_NS * 1e9
    stages = dict(UNIT_STAGE_COSTS, nic_rx={"base_ns": SERVICE_NS})
    sc = one_host("host", flows=[{"kind": "poisson", "src": "h1:wire", "dst": "h1:ns0", "rate_pps": rate_pps}],
                  duration_ns=WARMUP_NS + PACKETS / rate_pps * 1e9, seed=seed,
                  cost_distribution=distribution, app_recv_ns=0)
    sc["cost_overrides"] = {"stages": stages}
    sc["run"]["warmup_ns"] = WARMUP_NS
    return simulate(sc)


def theory_sojourn_ns(rho, distribution):
    if distribution == "exponential":          # M/M/1
        return SERVICE_NS / (1 - rho)
    return SERVICE_NS + rho * SERVICE_NS / (2 * (1 - rho))   # M/D/1 (Pollaczek-Khinchine)


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["exponential", "deterministic"])
@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mean_sojourn_matches_theory(rho, distribution):
    means = []
    for seed in SEEDS:
        p = mm1_or_md1(rho, distribution, seed).packets
        steady = p[(p.t_sent_ns >= WARMUP_NS) & (p.status == "delivered")]
        means.append(steady.latency_ns.mean())
    measured = float(np.mean(means))
    expected = theory_sojourn_ns(rho, distribution)
    assert measured == pytest.approx(expected, rel=0.03), (means, expected)


def test_littles_law_on_records():
    r = mm1_or_md1(0.8, "exponential", seed=7)
    p = r.packets
    done = p[p.status == "delivered"]
    t0, t1 = WARMUP_NS, r.scenario.run.duration_ns
    # L sampled directly from the records: packets in system at 20,000 instants.
    instants = np.linspace(t0, t1, 20_000, endpoint=False)
    sent = np.sort(p.t_sent_ns.to_numpy())
    finished = np.sort(np.where(p.status == "in_flight", np.inf, p.t_done_ns.to_numpy()))
    in_system = np.searchsorted(sent, instants, side="right") - np.searchsorted(finished, instants, side="right")
    L = in_system.mean()
    window = done[(done.t_sent_ns >= t0)]
    lam = len(window) / ((t1 - t0) / 1e9) / 1e9       # per ns
    W = window.latency_ns.mean()
    assert L == pytest.approx(lam * W, rel=0.05)


def test_work_conservation_utilisation_equals_offered_load():
    r = mm1_or_md1(0.5, "deterministic", seed=3)
    util = r.cores.utilisation.iloc[0]
    p = r.packets
    window_s = (r.scenario.run.duration_ns - WARMUP_NS) / 1e9
    offered = ((p.t_sent_ns >= WARMUP_NS).sum() / window_s) * SERVICE_NS / 1e9
    assert util == pytest.approx(offered, rel=0.02)
