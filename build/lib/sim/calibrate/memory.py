"""Kernel memory per network namespace and per veth pair, measured on the running kernel.

Not a timing measurement: it counts what the kernel allocates, so machine load matters little
(other processes still allocate slab objects meanwhile: large counts make that small).

Contract:
- `measure(lab, ns_counts, veth_counts)` builds in `lab` (`sim.calibrate.netns.Lab`: names
  ``nsim-<run id>-*``, links ``nsim<run id>*``, addresses only from 10.251.0.0/16 and only in
  namespaces it created; everything is removed when the lab closes, on error or Ctrl-C too):
  * namespaces, cumulatively up to each of `ns_counts`: ``ip netns add`` and the loopback set
    up (what a container runtime does for a container's namespace);
  * then veth pairs, cumulatively up to each of `veth_counts`, between two namespaces of the
    lab (one end in each, as a container's pair joins it to the root or bridge namespace),
    both ends up with one IPv4 address each (a /30 of 10.251.0.0/16);
  and reads `/proc/meminfo` and (when readable) `/proc/slabinfo` before and after every step.
- The cost of one unit (``bytes``, with ``percpu_bytes`` its per-CPU part) is Δ(Slab + Percpu)
  / units over the last step (from the second-largest count, ``from_count``, to the largest,
  ``count``): the first units partly fill slab pages the machine already had half used and
  look cheaper than units at scale.  ``overall`` is the same from nothing to the largest
  count, and every step's own marginal cost is kept (``steps``, each with its caches) to show
  what grows with the count.  KernelStack,
  PageTables, VmallocUsed, MemAvailable and MemFree are recorded but not counted: other
  processes move them on a shared machine, and the vmalloc'd per-CPU chunks are already in
  Percpu.  ``slab_by_cache`` is Δ(active objects x object size) per unit for every cache
  that moved by at least half an object per unit.
- `derive(record, prior)` turns a record into the measured terms of a profile's
  ``memory_bytes`` (``netdev_per_cpu``, ``netdev_other``, ``netns_per_cpu``,
  ``netns_subsystems``): with them, `model_totals` — the memory model's namespace (struct
  net, its subsystems and per-CPU data, /proc/net, a loopback device, two FIB tables and the
  fib_info hash) and veth pair at the measured CPU count — equals the measurement; every
  other size stays the prior's (struct sizes from the kernel's BTF and source, see the
  default profile).  A negative remainder (named terms larger than the measurement) is fixed
  at 0 and said in ``notes``.  Each measured term's ``range`` is its spread over the record's
  estimates of the unit's cost at scale (``overall`` and every step but the first).
"""

from __future__ import annotations

import time
from pathlib import Path

from sim.calibrate.hostinfo import host_info
from sim.calibrate.netns import Lab, sh
from sim.core.memory import UNITS

MEMINFO_KEYS = ("Slab", "SReclaimable", "SUnreclaim", "Percpu", "KernelStack", "PageTables", "VmallocUsed",
                "MemAvailable", "MemFree")
COUNTED = ("Slab", "Percpu")
NS_COUNTS = (100, 1000)
VETH_COUNTS = (100, 1000)
PAIRS_PER_SUBNET = 64                 # /30s in one /24
# What a measured namespace is in the model (besides the namespace's own state): its loopback
# device, the local and main FIB tables, the fib_info hash and /proc/net.
NAMESPACE_UNITS = {"netns_struct": 1, "proc_entries": 1, "net_device": 1, "fib_table": 2, "fib_info_hash": 1}
DEVICE_MEASURED = ("netdev_other", "netdev_per_cpu")
NAMESPACE_MEASURED = ("netns_subsystems", "netns_per_cpu")


def meminfo() -> dict[str, int]:
    """The counters of `MEMINFO_KEYS` from /proc/meminfo, in bytes."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in MEMINFO_KEYS:
            out[key] = int(rest.split()[0]) * 1024
    return out


def slabinfo() -> dict[str, tuple[int, int]] | None:
    """cache -> (active objects, object size) from /proc/slabinfo; None if it cannot be read."""
    try:
        lines = Path("/proc/slabinfo").read_text().splitlines()[2:]
    except OSError:
        return None
    out = {}
    for line in lines:
        p = line.split()
        if len(p) > 3:
            out[p[0]] = (int(p[1]), int(p[3]))
    return out


def possible_cpus() -> int:
    """Possible CPUs (per-CPU allocations are made for each), from /sys/devices/system/cpu/possible."""
    try:
        n = 0
        for part in Path("/sys/devices/system/cpu/possible").read_text().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
        return n
    except (OSError, ValueError):
        import os
        return os.cpu_count() or 1


def snapshot(settle_s: float) -> dict:
    time.sleep(settle_s)               # RCU-deferred frees of the step's temporaries
    return {"meminfo": meminfo(), "slab": slabinfo(), "t": time.time()}


def delta(before: dict, after: dict, units: int) -> dict:
    """Per-unit change between two snapshots (see the module docstring)."""
    mb, ma = before["meminfo"], after["meminfo"]
    d = {k: (ma.get(k, 0) - mb.get(k, 0)) / units for k in MEMINFO_KEYS}
    out = {"units": units, "bytes": sum(d[k] for k in COUNTED), "percpu_bytes": d["Percpu"], "meminfo": d}
    if before["slab"] is not None and after["slab"] is not None:
        caches = {}
        for name, (objs, size) in after["slab"].items():
            n = (objs - before["slab"].get(name, (0, size))[0]) / units
            if abs(n) >= 0.5:
                caches[name] = {"objects": round(n, 2), "object_size": size, "bytes": round(n * size)}
        out["slab_by_cache"] = dict(sorted(caches.items(), key=lambda kv: -abs(kv[1]["bytes"])))
        out["slab_objects_bytes"] = sum(c["bytes"] for c in caches.values())
    return out


def _series(counts, build, settle_s: float, what: str, log) -> dict:
    """Build units up to each count (cumulative), snapshot around every step."""
    counts = sorted({int(c) for c in counts if int(c) > 0})
    first = snapshot(settle_s)
    steps, prev, made = [], first, 0
    for n in counts:
        t0 = time.perf_counter()
        build(made, n)
        wall = time.perf_counter() - t0
        snap = snapshot(settle_s)
        steps.append({"to": n, **delta(prev, snap, n - made), "create_s_per_unit": wall / (n - made)})
        log(f"  {what}: {made} -> {n}: {steps[-1]['bytes'] / 1024:8.1f} KiB each (Slab + Percpu)")
        prev, made = snap, n
    if not made:
        return {"count": 0, "steps": steps}
    overall = delta(first, prev, made)
    # the headline is the last step's marginal cost: the first units partly fill slab pages the
    # machine already had half used, so they look cheaper than units at scale
    last = steps[-1] if len(steps) > 1 else overall
    head = {k: last[k] for k in ("units", "bytes", "percpu_bytes", "meminfo", "slab_objects_bytes") if k in last}
    return {"count": made, "from_count": made - last["units"], **head, "overall": overall, "steps": steps}


def measure(lab: Lab, ns_counts=NS_COUNTS, veth_counts=VETH_COUNTS, settle_s: float = 1.0, log=print) -> dict:
    """Measure memory per namespace and per veth pair in `lab` (module docstring)."""
    names: list[str] = []

    def add_namespaces(made: int, n: int) -> None:
        new = [lab.ns_name(f"m{i:05d}") for i in range(made, n)]
        lab.namespaces.extend(new)                 # owned (and removed) by the lab from here on
        sh(["ip", "-batch", "-"], input="".join(f"netns add {x}\n" for x in new), timeout=600)
        for x in new:
            lab.ip(x, "link", "set", "lo", "up")
        names.extend(new)

    per_ns = _series(ns_counts, add_namespaces, settle_s, "namespaces", log) if ns_counts else {}

    a, b = lab.add_ns("mva"), lab.add_ns("mvb")
    subnets: list[str] = []

    def add_pairs(made: int, n: int) -> None:
        while len(subnets) * PAIRS_PER_SUBNET < n:
            subnets.append(lab.next_subnet())
        ends = [(lab.link_name(f"a{i}"), lab.link_name(f"b{i}")) for i in range(made, n)]
        sh(["ip", "-n", a, "-batch", "-"], timeout=600,
           input="".join(f"link add {x} type veth peer name {y} netns {b}\n" for x, y in ends))
        cmds_a: list[str] = []
        cmds_b: list[str] = []
        for i, (x, y) in zip(range(made, n), ends):
            net, k = subnets[i // PAIRS_PER_SUBNET], (i % PAIRS_PER_SUBNET) * 4
            for cmds, dev, host in ((cmds_a, x, k + 1), (cmds_b, y, k + 2)):
                addr = f"{net}.{host}/30"
                if not addr.startswith("10.251."):
                    raise ValueError(f"address {addr} is outside 10.251.0.0/16")
                cmds.append(f"link set {dev} up\naddr add {addr} dev {dev}\n")
        sh(["ip", "-n", a, "-batch", "-"], input="".join(cmds_a), timeout=600)
        sh(["ip", "-n", b, "-batch", "-"], input="".join(cmds_b), timeout=600)

    per_pair = _series(veth_counts, add_pairs, settle_s, "veth pairs", log) if veth_counts else {}
    return {"host": host_info(), "possible_cpus": possible_cpus(), "settle_s": settle_s,
            "slabinfo_readable": slabinfo() is not None,
            "namespace": {"what": "ip netns add + loopback up", **per_ns},
            "veth_pair": {"what": "veth pair between two namespaces, both ends up, one IPv4 /30 address each",
                          **per_pair}}


def _unit_bytes(unit: str, sizes: dict, cpus: int) -> float:
    from sim.core.memory import PER_CPU
    return sum(k * sizes.get(field, 0) * (cpus if field in PER_CPU else 1)
               for field, k in UNITS.get(unit, ((unit, 1),)))


def model_totals(sizes: dict, cpus: int) -> dict[str, float]:
    """The memory model's namespace (`NAMESPACE_UNITS`) and veth pair, bytes, on `cpus` CPUs,
    for the ``memory_bytes`` values `sizes`."""
    return {"namespace": sum(k * _unit_bytes(u, sizes, cpus) for u, k in NAMESPACE_UNITS.items()),
            "veth_pair": _unit_bytes("veth_pair", sizes, cpus)}


def _device_terms(sizes: dict, pair: dict, cpus: int, fixed) -> dict[str, int]:
    """``netdev_per_cpu`` and ``netdev_other`` from one per-pair slope (`pair`: bytes, percpu_bytes)."""
    per_cpu = fixed("netdev_per_cpu", pair["percpu_bytes"] / 2 / cpus)
    named = _unit_bytes("veth_pair", {**sizes, "netdev_per_cpu": 0, "netdev_other": 0}, cpus)
    return {"netdev_per_cpu": per_cpu,
            "netdev_other": fixed("netdev_other", (pair["bytes"] - pair["percpu_bytes"] - named) / 2)}


def _namespace_terms(sizes: dict, ns: dict, cpus: int, fixed) -> dict[str, int]:
    """``netns_per_cpu`` and ``netns_subsystems`` from one per-namespace slope, the device terms
    (its loopback) as in `sizes`."""
    per_cpu = fixed("netns_per_cpu", (ns["percpu_bytes"] - sizes.get("netdev_per_cpu", 0) * cpus) / cpus)
    named = model_totals({**sizes, "netns_per_cpu": per_cpu, "netns_subsystems": 0}, cpus)["namespace"]
    return {"netns_per_cpu": per_cpu, "netns_subsystems": fixed("netns_subsystems", ns["bytes"] - named)}


def _other_slopes(unit: dict) -> list[dict]:
    """The record's other estimates of a unit's cost at scale, besides the headline (the last
    step): ``overall`` (nothing to the largest count) and every step but the first (which starts
    from nothing and partly fills slab pages already there: not a cost at scale)."""
    return [s for s in [unit.get("overall"), *(unit.get("steps") or [])[1:]] if s and s.get("units")]


def derive(record: dict, prior: dict) -> tuple[dict, dict]:
    """(memory_bytes, notes): `prior`'s sizes with the measured terms set from `record` (see
    the module docstring).  Each measured term also gets a ``range``: the same derivation over
    every estimate of its unit's cost at scale the record holds (`_other_slopes`, the headline
    included), the other terms at their headline values; a term that comes out the same at every
    estimate has none.  The prior's other ranges (sizes not measured here) are kept."""
    sizes = {k: v for k, v in prior.items() if k != "range"}
    ranges = {k: [int(x) for x in v] for k, v in (prior.get("range") or {}).items()
              if k not in DEVICE_MEASURED + NAMESPACE_MEASURED}
    cpus = int(record["possible_cpus"])
    notes: dict[str, str] = {}

    def fixed(name: str, value: float) -> int:
        if value < 0:
            notes[name] = f"remainder {value:.0f} B < 0 (the named terms exceed the measurement): fixed at 0"
            return 0
        return round(value)

    def quiet(name: str, value: float) -> int:
        return max(round(value), 0)

    def spread(values: dict[str, list[int]]) -> None:
        for k, v in values.items():
            if min(v) < max(v):
                ranges[k] = [min(v), max(v)]
    pair, ns = record.get("veth_pair") or {}, record.get("namespace") or {}
    if pair.get("count"):
        sizes.update(_device_terms(sizes, pair, cpus, fixed))
        alt = [_device_terms(sizes, s, cpus, quiet) for s in _other_slopes(pair)]
        spread({k: [sizes[k], *(a[k] for a in alt)] for k in DEVICE_MEASURED})
    if ns.get("count"):
        sizes.update(_namespace_terms(sizes, ns, cpus, fixed))
        alt = [_namespace_terms(sizes, s, cpus, quiet) for s in _other_slopes(ns)]
        spread({k: [sizes[k], *(a[k] for a in alt)] for k in NAMESPACE_MEASURED})
    return {**sizes, "range": ranges}, notes


def summary_lines(record: dict, sizes: dict | None = None) -> list[str]:
    """Short text of a memory record (and the model's totals for `sizes`), for logs and headers."""
    cpus = record.get("possible_cpus")
    out = []
    for key, label in (("namespace", "per namespace"), ("veth_pair", "per veth pair")):
        r = record.get(key) or {}
        if r.get("count"):
            out.append(f"{label}: {r['bytes'] / 1024:.1f} KiB (Slab + Percpu; Percpu {r['percpu_bytes'] / 1024:.2f} "
                       f"KiB) from {r['from_count']} to {r['count']} ({r['what']}), {cpus} possible CPUs")
    if sizes is not None and cpus:
        m = model_totals(sizes, int(cpus))
        out.append(f"model with these sizes: namespace {m['namespace'] / 1024:.1f} KiB, veth pair "
                   f"{m['veth_pair'] / 1024:.1f} KiB")
    return out
