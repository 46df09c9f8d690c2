"""Builders of small scenarios used across the core tests (plain dicts, validated by simulate())."""

from sim.core.simulate import simulate
from sim.core.schemes import builtin_registry

SCHEMES = builtin_registry().names()
# Issue 15's schemes (sim/data/schemes.yaml, docs/modern-schemes.md): each container has its own devices and lo.
MODERN = ("veth-bpf-peer", "netkit", "ipvlan-l2", "ipvlan-l3", "ipvlan-l3s", "macvlan-bridge", "macvlan-vepa",
          "sriov-vf")


def schemes_with(trip: str) -> list[str]:
    """The built-in schemes that define `trip` (ipvlan-l3/l3s have no local multicast: the kernel drops it)."""
    return [s for s in SCHEMES if trip in builtin_registry().get(s).trips]
# Every stage cost zero except a 1000 ns NIC RX stage: a one-pass host with a known service time
# (nothing per NAPI poll either: each packet's service is its own).
UNIT_STAGE_COSTS = {name: {"base_ns": 0.0, "per_byte_ns": 0.0, "per_entry_ns": 0.0}
                    for name in (*builtin_registry().get("host").spec.trips["wire_to_ns"][0].stages, "napi_poll")}


def one_host(scheme="host", namespaces=1, cores=1, flows=(), duration_ns=1e8, seed=1, **host):
    return {"hosts": [dict(name="h1", scheme=scheme, namespaces=namespaces, cores=cores, **host)],
            "flows": list(flows), "run": {"duration_ns": duration_ns, "seed": seed}}


def unloaded_wire_to_ns(scheme, namespaces=1, packets=200):
    """Mean latency of a slow constant flow wire -> ns0 (no queueing)."""
    sc = one_host(scheme, namespaces, flows=[{"kind": "constant", "src": "h1:wire", "dst": "h1:ns0",
                                              "rate_pps": 10_000}], duration_ns=packets * 1e5)
    return simulate(sc)


def delivered(df):
    return df[df.status == "delivered"]
