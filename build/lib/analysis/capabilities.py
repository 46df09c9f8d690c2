"""The capability matrix: what each scheme of the results gives a container, and its cost.

Read from scheme *data* only: the built-in ``sim/data/schemes.yaml`` (through
`sim.core.schemes.builtin_registry`) and the ``schemes:`` block of each run's
``scenario.resolved.yaml`` (a scenario's own schemes win, as in the simulator).
`matrix(res)` -> one dict per scheme present in the results (style order) with the six
capabilities (bools), ``addresses_per_container``, ``devices_per_container``,
``socket_tables`` and ``passes_<trip>`` (passes through one host; None if the scheme does not
define the trip).
"""

from __future__ import annotations

from analysis import style

HEADERS = {"own_routes": "own routes", "own_netfilter": "own netfilter", "own_devices": "own devices",
           "dhcp_raw_nonip": "DHCP / raw / non-IP", "tunnels_vpn": "tunnels / VPN",
           "migration_with_ip": "migration with its IP"}
TRIPS_SHOWN = ("wire_to_ns", "ns_to_ns", "ns_to_wire", "multicast", "root_to_ns", "ns_to_self")


def specs(res) -> dict[str, dict]:
    """Scheme name -> its spec as plain data (built-ins, overridden by scenario schemes)."""
    from sim.core.schemes import builtin_registry
    reg = builtin_registry()
    out = {n: reg.get(n).spec.model_dump() for n in reg.names()}
    for r in res.runs:
        for name, spec in (r.resolved.get("schemes") or {}).items():
            out[name] = spec
    return out


def matrix(res) -> list[dict]:
    sp = specs(res)
    present = set(res.summary["scheme"].dropna()) | (set(res.memory["scheme"].dropna()) if len(res.memory) else set())
    rows = []
    for name in style.order(present):
        s = sp.get(name)
        if s is None:
            continue
        caps = s.get("capabilities", {})
        row = {"scheme": name, **{c: bool(caps.get(c, False)) for c in HEADERS},
               "addresses_per_container": s.get("addresses_per_container"),
               "devices_per_container": s.get("devices_per_container"),
               "socket_tables": s.get("socket_tables")}
        for trip in TRIPS_SHOWN:
            passes = (s.get("trips") or {}).get(trip)
            row[f"passes_{trip}"] = len(passes) if passes else None
        rows.append(row)
    return rows
