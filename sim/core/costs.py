"""Cost profiles: the CPU cost of each stage and the sizes used by the memory model.

A stage costs ``base_ns + per_byte_ns * size_bytes + per_entry_ns * entries`` (see
`sim.core.stages` for what `entries` counts); a stage may price its repeat traversals (the
second and later time one packet runs it on one host) with ``repeat_ns`` in place of
``base_ns``.  A profile is a YAML file; the default one is `sim/profiles/default.yaml`, whose
comments name the public source of every value.  A scenario names a profile (``default`` or a
path) and may override any value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)

from sim.core.stages import STAGE_INFO, STAGE_NAMES, StageSet, declared_problem, stage_set
from sim.frontdoor.yamlpos import read

PROFILE_DIR = Path(__file__).parent.parent / "profiles"


# A stage's cost terms: what a range may span and a scenario's cost_overrides may set.
StageTerm = Literal["base_ns", "per_byte_ns", "per_entry_ns", "repeat_ns"]


class StageCost(BaseModel):
    """CPU cost of one stage: base plus per-byte plus per-entry terms, all ns.

    Optional, for the reader and for sensitivity studies (the simulator uses only the three
    terms): ``range`` gives a plausible ``[low, high]`` per term (``{base_ns: [30, 80]}``) and
    ``source`` where the value comes from (literature, kernel source, ``calibrate`` or
    ``perf-stages`` on a named CPU and kernel; in a calibrated profile "measured (perf)",
    "fitted" or "prior")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    base_ns: NonNegativeFloat = 0.0
    per_byte_ns: NonNegativeFloat = 0.0
    per_entry_ns: NonNegativeFloat = 0.0
    # The base of a repeat traversal: the second and later time one packet runs this stage on
    # one host (a second router in a row, the receiver's IP input after the router's), when its
    # code and the packet's cache lines are still warm.  None: a repeat costs base_ns
    # (docs/calibration.md, "A repeat traversal costs less than the first").
    repeat_ns: Optional[NonNegativeFloat] = None
    range: dict[StageTerm, tuple[NonNegativeFloat, NonNegativeFloat]] = {}
    source: str = ""
    # Only in a profile's declared stage (a name not built in; docs/stages.md): its report group
    # and what per_entry_ns counts.
    group: Optional[str] = None
    entries: Optional[str] = None

    def model_post_init(self, _ctx) -> None:
        for term, (low, high) in self.range.items():
            if low > high:
                raise ValueError(f"range of {term}: low {low:g} > high {high:g}")

    @property
    def repeat_or_base_ns(self) -> float:
        """What a repeat traversal's base costs: ``repeat_ns``, or ``base_ns`` without one."""
        return self.base_ns if self.repeat_ns is None else self.repeat_ns


class NetfilterCosts(BaseModel):
    """Netfilter costs beyond the nf_* stages' own terms (`sim.core.netfilter`; the values, with
    their sources, are in default.yaml's ``netfilter:`` block, and a profile without one gets
    these same values).

    The nf_* stages' ``base_ns`` and ``per_entry_ns`` are a registered hook with an empty chain
    and one rule of the ``nftables`` backend (they were measured with iptables-nft).
    ``backends.<name>`` adds its ``base_ns`` to every registered hook's traversal and its
    ``per_entry_ns`` to every rule.  ``br_netfilter.base_ns`` is added to a ``bridge`` stage
    that runs br_netfilter's hooks (a frame from a port, ``br_netfilter: true``).
    ``conntrack_lookup.base_ns`` is added to every packet's conntrack hook (PREROUTING or
    OUTPUT) in a namespace with conntrack, ``conntrack_create.base_ns`` to the first packet's
    of each connection there."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backends: dict[Literal["nftables", "iptables-legacy"], StageCost] = {
        "nftables": StageCost(source="the nf_* stage costs are nftables' own (no extra)"),
        "iptables-legacy": StageCost(base_ns=10.0, per_entry_ns=2.0,
                                     range={"base_ns": (0.0, 30.0), "per_entry_ns": (0.0, 70.0)},
                                     source="prior (kernel source: ipt_do_table vs nft_do_chain); see default.yaml"),
    }
    br_netfilter: StageCost = StageCost(base_ns=340.0, range={"base_ns": (100.0, 740.0)},
                                        source="perf-stages on AMD EPYC / 6.18.44, scaled; see default.yaml")
    conntrack_lookup: StageCost = StageCost(base_ns=100.0, range={"base_ns": (40.0, 430.0)},
                                            source="prior ([XDP] bound); see default.yaml")
    conntrack_create: StageCost = StageCost(base_ns=500.0, range={"base_ns": (200.0, 2000.0)},
                                            source="prior (kernel source, [qmempool]); see default.yaml")


class HostDefaults(BaseModel):
    """Per-host queue limits, application costs, softirq budgets and wake-up costs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    netdev_max_backlog: PositiveInt = 1000
    rx_ring_packets: PositiveInt = 1024
    rcvbuf_bytes: PositiveInt = 212992
    skb_truesize_overhead_bytes: NonNegativeInt = 768
    app_recv_ns: NonNegativeFloat = 0.0
    # recvmsg's copy of the packet to user space, per byte (`sim.core.apps`): read = app_recv_ns
    # + this x the packet's bytes; nothing on a host whose app_recv_ns is 0 (no application reads)
    app_recv_per_byte_ns: NonNegativeFloat = 0.0
    # Execution (sim.core.cpu, sim.core.apps); defaults are the kernel's, see default.yaml.
    sndbuf_bytes: PositiveInt = 212992
    napi_weight: PositiveInt = 64
    netdev_budget: PositiveInt = 300
    netdev_budget_usecs: PositiveFloat = 2000.0
    max_softirq_restart: PositiveInt = 10
    max_softirq_time_ns: PositiveFloat = 2e6
    wakeup_local_ns: NonNegativeFloat = 1000.0
    wakeup_ipi_ns: NonNegativeFloat = 3000.0
    wakeup_ipi_send_ns: NonNegativeFloat = 200.0
    # the waker's CPU for a same-core wake-up; 0 in profiles that price it inside socket_enqueue
    wakeup_local_send_ns: NonNegativeFloat = 0.0
    tx_completion_ns: NonNegativeFloat = 100.0      # NIC TX completion per packet (sim.core.txq), a prior
    # Where a value here was measured rather than taken from default.yaml's priors
    # (e.g. ``wakeup_ipi_ns`` by ``python -m sim.calibrate wakeup --profile``): field -> source.
    sources: dict[str, str] = {}
    ram_bytes: PositiveFloat = 25_275_990_016.0     # sizes the boot-time socket tables (sim.core.sockets)


class MemorySizes(BaseModel):
    """Sizes in bytes of the kernel structures of the memory model (`sim.core.memory` says what a
    namespace, a device and a veth pair are made of).  ``*_per_cpu`` sizes are per possible CPU.
    Fields added after the first profiles default to 0, so older profiles still load (their
    ``netns_struct`` and ``net_device`` then hold everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # a namespace's own state (netns_struct in a scheme's memory_per_namespace)
    netns_struct: NonNegativeInt
    netns_subsystems: NonNegativeInt = 0
    netns_per_cpu: NonNegativeInt = 0
    proc_entries: NonNegativeInt
    # a registered network device (net_device; a veth pair is two of them plus veth_rq each)
    net_device: NonNegativeInt
    netdev_queues: NonNegativeInt = 0
    netdev_sysfs: NonNegativeInt = 0
    ipv4_dev: NonNegativeInt = 0
    ipv6_dev: NonNegativeInt = 0
    neigh_parms: NonNegativeInt = 0
    netdev_other: NonNegativeInt = 0
    netdev_per_cpu: NonNegativeInt = 0
    veth_rq: NonNegativeInt = 0
    bridge_port: NonNegativeInt
    fib_table: NonNegativeInt
    fib_info_hash: NonNegativeInt
    nf_table: NonNegativeInt
    # socket hash tables (sim.core.sockets sizes them)
    socket_hash_bucket: NonNegativeInt = 8          # a TCP established-hash bucket (hlist_nulls_head)
    udp_hash_slot: NonNegativeInt = 64              # a UDP table slot (hash, hash2 and hash4 slots)
    udp_hash_buckets: PositiveInt = 128             # a per-namespace UDP table's slots
    tcp_ehash_buckets: PositiveInt = 128            # a per-namespace TCP established hash's buckets
    bind_filter: NonNegativeInt
    classifier_rule: NonNegativeInt
    ns_tag: NonNegativeInt
    conntrack_entry: NonNegativeInt = 384          # one tracked connection (struct nf_conn + extensions)
    conntrack_hash_buckets: PositiveInt = 262144   # nf_conntrack_htable_size of a 64-bit host with > 4 GiB
    # Optional: a plausible [low, high] of some byte sizes (``range: {netns_subsystems: [157512,
    # 165290]}``), their basis in the profile's comment above each size; read by the claims'
    # memory robustness and the report's memory bands (`analysis.robustness`), never by a run.
    range: dict[str, tuple[NonNegativeInt, NonNegativeInt]] = {}

    def model_post_init(self, _ctx) -> None:
        for key, (low, high) in self.range.items():
            problem = range_problem(key, low, high, getattr(self, key) if key in type(self).model_fields else None)
            if problem:
                raise ValueError(problem)

    def sizes(self) -> dict[str, int]:
        """Every size and count by name (the ``range`` block left out)."""
        return {k: v for k, v in self.model_dump().items() if k != "range"}


# memory_bytes fields that count slots or buckets (table sizes: a host chooses them with
# hosts[].socket_hash_buckets / tcp_ehash_buckets), not bytes: no range
MEMORY_COUNTS = ("udp_hash_buckets", "tcp_ehash_buckets", "conntrack_hash_buckets")


def range_problem(key: str, low: float, high: float, value) -> str:
    """What is wrong with ``memory_bytes.range.KEY: [low, high]`` for the size `value`, with the
    fix; "" if nothing."""
    where = f"memory_bytes.range.{key}"
    sizes = [k for k in MemorySizes.model_fields if k != "range" and k not in MEMORY_COUNTS]
    if key in MEMORY_COUNTS:
        return (f"{where}: {key} is a table size (a count, not bytes): it takes no range; a host sets it "
                f"(hosts[].socket_hash_buckets, hosts[].tcp_ehash_buckets) — remove {key} from range")
    if value is None or key == "range":
        return f"{where}: unknown size {key!r}; a range is for one of the byte sizes: {sizes}"
    if low > high:
        return f"{where}: low {low:g} > high {high:g}; write it as [low, high], e.g. [{high:g}, {low:g}]"
    if not low <= value <= high:
        return (f"{where}: [{low:g}, {high:g}] does not contain the size itself ({key}: {value:g}); give "
                f"[low, high] with low <= {value:g} <= high, or change the size")
    return ""


class CostProfile(BaseModel):
    """A complete cost profile: every stage of `sim.core.stages.STAGES` must have a cost; a
    stage not built in is *declared* here (it then needs a ``group``, docs/stages.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    stages: dict[str, StageCost]
    host: HostDefaults = HostDefaults()
    netfilter: NetfilterCosts = NetfilterCosts()
    memory_bytes: MemorySizes
    calibration: dict = {}           # free-form: raw measurements, kernel, CPU (netns-sim calibrate)
    source_file: Optional[str] = None

    def model_post_init(self, _ctx) -> None:
        unknown = sorted(n for n, c in self.stages.items() if n not in STAGE_INFO and c.group is None)
        missing = sorted(set(STAGE_NAMES) - set(self.stages))
        if unknown:
            raise ValueError(f"cost profile {self.name!r}: unknown stages {unknown}; known: {list(STAGE_NAMES)} "
                             "(to declare a new stage give it a group, e.g. {base_ns: 40, group: bpf})")
        if missing:
            raise ValueError(f"cost profile {self.name!r}: no cost for stages {missing}")
        for n, c in self.stages.items():
            if n in STAGE_INFO and (c.group is not None or c.entries is not None):
                raise ValueError(f"cost profile {self.name!r}: stages.{n}: {declared_problem(n, c.group or '')}")
            if n not in STAGE_INFO:
                problem = declared_problem(n, c.group or "", c.entries or "none")
                if problem:
                    raise ValueError(f"cost profile {self.name!r}: stages.{n}: {problem}")

    @property
    def stage_set(self) -> StageSet:
        """The stages of a run with this profile: the built-ins, then the declared ones."""
        return stage_set({n: (c.group or "", c.entries or "none", c.source)
                          for n, c in self.stages.items() if n not in STAGE_INFO})

    def with_stages(self, declared: dict) -> "CostProfile":
        """A copy that also declares `declared` (a scenario's ``stages:`` block: name ->
        `sim.frontdoor.scenario.DeclaredStage`)."""
        if not declared:
            return self
        data = self.model_dump()
        for name, st in declared.items():
            if name in data["stages"]:
                raise ValueError(f"stages.{name}: cost profile {self.name!r} already has stage {name!r}; "
                                 f"change its cost with cost_overrides.stages.{name} instead")
            data["stages"][name] = {"base_ns": st.base_ns, "per_byte_ns": st.per_byte_ns,
                                    "per_entry_ns": st.per_entry_ns, "group": st.group,
                                    "entries": st.entries, "source": st.doc or "declared in the scenario"}
        return CostProfile.model_validate(data)

    def with_overrides(self, stages: dict[str, dict] | None = None, host: dict | None = None,
                       memory_bytes: dict | None = None, netfilter: dict | None = None) -> "CostProfile":
        """A copy with some values replaced; unknown names are errors."""
        data = self.model_dump()
        for name, fields in (stages or {}).items():
            if name not in data["stages"]:
                raise ValueError(f"cost override: unknown stage {name!r}; known: {list(data['stages'])}")
            data["stages"][name].update(fields)
        data["host"].update(host or {})
        for key, value in (memory_bytes or {}).items():
            if key == "range":
                raise ValueError("cost override: memory_bytes.range cannot be overridden (ranges come with a "
                                 "profile, each with its basis); override a size's value, or give a profile file")
            data["memory_bytes"][key] = value
            data["memory_bytes"]["range"].pop(key, None)   # an overridden size is the scenario's: no range
        for name, fields in (netfilter or {}).items():
            if not isinstance(fields, dict):
                raise ValueError(f"cost override: netfilter.{name} must be a mapping, e.g. {{base_ns: 100}}")
            if name == "backends":
                for backend, terms in fields.items():
                    if backend not in data["netfilter"]["backends"] or not isinstance(terms, dict):
                        raise ValueError(f"cost override: netfilter backend {backend!r} unknown or not a "
                                         f"mapping; known: {list(data['netfilter']['backends'])}")
                    data["netfilter"]["backends"][backend].update(terms)
            elif name in data["netfilter"]:
                data["netfilter"][name].update(fields)
            else:
                raise ValueError(f"cost override: unknown netfilter cost {name!r}; known: {list(data['netfilter'])}")
        return CostProfile.model_validate(data)


# (path, mtime ns, size) -> the profile read from it: a sweep's points, and every
# run of a process, parse a profile once (the position-keeping YAML parse is pure Python:
# tens of ms, more than a small run).  CostProfile is frozen; callers derive new ones.
_LOADED: dict[tuple[str, int, int], CostProfile] = {}


def load_profile(name_or_path: str = "default") -> CostProfile:
    """Load a profile by name (a file in `sim/profiles/`) or by path to a YAML file (read
    again whenever the file changes)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and not path.is_file():     # a name (names may hold dots)
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"cost profile {name_or_path!r} not found; built-in profiles: {known}, "
                                "or give a path to a .yaml file")
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    cached = _LOADED.get(key)
    if cached is None:
        cached = _LOADED[key] = _read_profile(path)
    return cached


def _read_profile(path: Path) -> CostProfile:
    data = read(path)[0]                       # YamlSyntaxError (a ValueError) for unreadable files
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a cost profile: a profile is a mapping (stages:, host:, memory_bytes:)")
    data["source_file"] = str(path)
    try:
        return CostProfile.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise ValueError(f"{path} is not a cost profile: {'.'.join(map(str, first['loc']))}: {first['msg']} "
                         f"({e.error_count()} problem(s))") from None
