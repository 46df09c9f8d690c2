"""The scenario: a validated description of one simulation run (hosts, network, traffic).

This module holds the data model only (pydantic, unknown keys are errors, defaults live
here and in the cost profile).  Loading YAML files, ``extends:``, topology generators and
error messages with file and line belong to the scenario front door.

Endpoints are strings: ``HOST:nsN`` (container namespace N of HOST, 0-based; ``HOST:N`` also
works), ``HOST:root`` (HOST's root namespace: the host's own applications) or ``HOST:wire``
(the outside world behind HOST's NIC).  A multicast flow's ``dst`` is ``group:NAME``, whose
members are container namespaces or root namespaces (``HOST:root``); the sender may be a
member of its own group (it gets its own copy: IP_MULTICAST_LOOP).  An open-loop flow's
``dst`` may be ``HOST:ns*``: each packet goes to a namespace of HOST drawn uniformly at
random (many containers without one flow each).  Which trip each pair takes:
`sim.core.trips`; whether a host's scheme defines it is checked by the front door
(`sim.frontdoor.loader`), which knows the schemes.  A host may give groups of its containers
their own schemes (``namespace_schemes``, a mixed host: `HostSpec.scheme_groups`,
docs/mixed-hosts.md).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from sim.core.costs import StageTerm
from sim.core.nscodes import WIRE_NS
from sim.core.stages import DECLARED_ENTRY_KINDS, GROUPS, NF_CHAINS, declared_problem
from sim.frontdoor.endpoints import parse, resolve
from sim.frontdoor.numbers import Float, LossRate, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NfRules(Strict):
    """Netfilter rules per chain, in the root namespace and in every child namespace."""

    # Literal over a tuple constant: pydantic expands it at run time, mypy cannot.
    root: dict[Literal[NF_CHAINS], NonNegativeInt] = {}  # type: ignore[valid-type]
    child: dict[Literal[NF_CHAINS], NonNegativeInt] = {}  # type: ignore[valid-type]


NfHookMode = Literal["declared", "all", "none"]
NfBackend = Literal["nftables", "iptables-legacy"]


class NfHooks(Strict):
    """Which netfilter hooks are registered, in the root namespace and in every child
    (`sim.core.netfilter`): ``declared`` — only the chains `nf_rules` lists (0 rules: a
    registered, empty chain), widened to whole tables by ``iptables-legacy``, plus
    conntrack's and br_netfilter's own hooks; ``all`` — every hook (an empty chain costs the
    hook's base); ``none`` — no hook at all (nf_* stages cost nothing)."""

    root: NfHookMode = "declared"
    child: NfHookMode = "declared"


class Conntrack(Strict):
    """Connection tracking in the root namespace and in every child (`sim.core.netfilter`)."""

    root: StrictBool = False
    child: StrictBool = False


class NamespaceScheme(Strict):
    """A group of a mixed host's containers that run one scheme (docs/mixed-hosts.md)."""

    scheme: str
    namespaces: PositiveInt


class HostSpec(Strict):
    name: str
    cores: PositiveInt = 1
    scheme: str = "host"            # the root namespace's own paths, and every container's by default
    namespaces: NonNegativeInt = 1
    namespace_schemes: Optional[list[NamespaceScheme]] = Field(default=None, min_length=1)   # mixed host
    sockets_per_namespace: PositiveInt = 1
    nf_rules: NfRules = NfRules()
    socket_tables: Optional[Literal["per_namespace", "shared_permuted"]] = None   # default: the scheme's
    socket_hash_buckets: Optional[PositiveInt] = None       # UDP table size (each); default: the kernel's rule
    tcp_ehash_buckets: Optional[PositiveInt] = None         # TCP established hash size (each); likewise
    ram_bytes: Optional[PositiveFloat] = None               # sizes boot-time tables; default: profile host.*
    netdev_max_backlog: Optional[PositiveInt] = None         # default: profile host.*
    rx_ring_packets: Optional[PositiveInt] = None
    rcvbuf_bytes: Optional[PositiveInt] = None
    app_recv_ns: Optional[NonNegativeFloat] = None
    app_recv_per_byte_ns: Optional[NonNegativeFloat] = None  # recvmsg's copy per byte; default: profile host.*
    cost_distribution: Literal["deterministic", "exponential"] = "deterministic"
    sndbuf_bytes: Optional[PositiveInt] = None               # default: profile host.sndbuf_bytes
    rx_queues: Optional[PositiveInt] = None                  # NIC RX queues (RSS); default: one per core
    rps_cpus: Optional[list[NonNegativeInt]] = None          # RPS: cores that take packets after the driver
    xps: bool = True                                         # XPS: TX queue of the sending core (drivers' default map)
    nf_hooks: NfHooks = NfHooks()                            # registered hooks per namespace (sim.core.netfilter)
    nf_backend: NfBackend = "nftables"                       # iptables-nft / nft (default) or iptables-legacy
    br_netfilter: StrictBool = True                                # bridge-nf-call-iptables=1 (docker's setting)
    conntrack: Conntrack = Conntrack()                       # connection tracking per namespace

    @field_validator("socket_hash_buckets", "tcp_ehash_buckets")
    @classmethod
    def _power_of_two(cls, n: Optional[int]) -> Optional[int]:
        if n is not None and (n & (n - 1) or n > 2**31):
            up = 1 << (n - 1).bit_length()
            raise ValueError(f"{n} is not a power of two up to 2**31 (a kernel hash table has 2**k buckets"
                             + (f"; the kernel would round {n} up to {up})" if up <= 2**31 else ")"))
        return n

    @model_validator(mode="before")
    @classmethod
    def _mixed_count(cls, data):
        """``namespaces`` left out on a mixed host is the sum of its groups' counts."""
        if isinstance(data, dict) and data.get("namespace_schemes") and "namespaces" not in data:
            groups = data["namespace_schemes"]
            if isinstance(groups, list) and all(isinstance(g, dict) and isinstance(g.get("namespaces"), int)
                                                for g in groups):
                data = {**data, "namespaces": sum(g["namespaces"] for g in groups)}
        return data

    @model_validator(mode="after")
    def _mixed(self) -> "HostSpec":
        if self.namespace_schemes is not None:
            total = sum(g.namespaces for g in self.namespace_schemes)
            if total != self.namespaces:
                raise ValueError(f"namespace_schemes counts sum to {total} but namespaces is {self.namespaces}: "
                                 f"make them agree (set namespaces: {total}, or leave namespaces out and it is "
                                 "the sum)")
        return self

    def scheme_groups(self) -> list[tuple[str, int]]:
        """(scheme, containers) in namespace order: ns0.. run the first group's scheme, and so on
        (one group, the host's scheme, without ``namespace_schemes``)."""
        if self.namespace_schemes is None:
            return [(self.scheme, self.namespaces)]
        return [(g.scheme, g.namespaces) for g in self.namespace_schemes]

    @model_validator(mode="after")
    def _cpus(self) -> "HostSpec":
        if self.rps_cpus is not None:
            if not self.rps_cpus:
                raise ValueError("rps_cpus: give at least one core, or leave it out for no RPS")
            bad = [c for c in self.rps_cpus if c >= self.cores]
            if bad:
                raise ValueError(f"rps_cpus: core(s) {bad} but the host has {self.cores} core(s) (0-based)")
        return self

    @model_validator(mode="after")
    def _netfilter(self) -> "HostSpec":
        for group in ("root", "child"):
            if getattr(self.nf_hooks, group) != "none":
                continue
            if getattr(self.nf_rules, group):
                raise ValueError(f"nf_hooks.{group}: none (no netfilter hook registered) but nf_rules.{group} "
                                 f"declares rules; rules need their chain's hook: remove nf_rules.{group} or use "
                                 f"nf_hooks.{group}: declared")
            if getattr(self.conntrack, group):
                raise ValueError(f"nf_hooks.{group}: none (no netfilter hook registered) but conntrack.{group} is "
                                 f"on; conntrack registers hooks of its own: turn one of them off")
        return self


class SwitchSpec(Strict):
    name: str


class LinkSpec(Strict):
    a: str
    b: str
    rate_bps: PositiveFloat
    delay_ns: NonNegativeFloat = 0.0
    queue_packets: PositiveInt = 1000
    loss_rate: LossRate = 0.0                     # each packet lost at random on this link (each direction)


class SizeSpec(Strict):
    """Packet size distribution (bytes): const, uniform [min, max] or choice with weights."""

    dist: Literal["const", "uniform", "choice"] = "const"
    bytes: Optional[PositiveInt] = None
    min_bytes: Optional[PositiveInt] = None
    max_bytes: Optional[PositiveInt] = None
    values: Optional[list[PositiveInt]] = None
    weights: Optional[list[PositiveFloat]] = None

    @model_validator(mode="after")
    def _complete(self) -> "SizeSpec":
        if self.dist == "const" and self.bytes is None:
            self.bytes = 64
        if self.dist == "uniform":
            if self.min_bytes is None or self.max_bytes is None or self.min_bytes > self.max_bytes:
                raise ValueError("uniform sizes need min_bytes <= max_bytes")
        if self.dist == "choice":
            if not self.values:
                raise ValueError("choice sizes need a non-empty 'values' list")
            if self.weights is not None and len(self.weights) != len(self.values):
                raise ValueError("'weights' must have one entry per value")
        return self


TCP_KINDS = ("tcp_stream", "tcp_rr")
GSO_LEGACY_MAX_BYTES = 65536      # GSO_LEGACY_MAX_SIZE (include/linux/netdevice.h): the most without BIG TCP
GSO_MAX_BYTES = 8 * 65535         # GSO_MAX_SIZE = 8 * GSO_MAX_SEGS (include/linux/netdevice.h): BIG TCP's ceiling
TWO_WAY_KINDS = ("rr",) + TCP_KINDS      # packets go both ways between two namespaces


class TcpSpec(Strict):
    """A TCP flow's connection parameters (`sim.core.tcp`, docs/tcp.md); defaults are Linux's."""

    mss_bytes: PositiveInt = 1448                 # payload per segment: 1500 MTU - 20 IP - 20 TCP - 12 timestamps
    rwnd_bytes: PositiveInt = 131072              # initial window clamp: net.ipv4.tcp_rmem default (tcp_rmem[1])
    rcvbuf_autotune: StrictBool = True            # grow the receive buffer (DRS, net.ipv4.tcp_moderate_rcvbuf)
    rmem_max_bytes: PositiveInt = 6291456         # the most it grows to: net.ipv4.tcp_rmem max (tcp_rmem[2])
    wmem_max_bytes: PositiveInt = 4194304         # tcp_stream's send buffer at most: tcp_wmem[2]
    init_cwnd: PositiveInt = 10                   # TCP_INIT_CWND (include/net/tcp.h), segments
    delack_ns: PositiveFloat = 40e6               # delayed-ACK timer: TCP_DELACK_MIN, HZ/25
    rto_min_ns: PositiveFloat = 200e6             # TCP_RTO_MIN, HZ/5
    rto_init_ns: PositiveFloat = 1e9              # TCP_TIMEOUT_INIT (RFC 6298)
    delayed_ack: StrictBool = True                # False: ACK every segment (TCP_QUICKACK on every read)
    gso: StrictBool = True                        # GSO/TSO on send, GRO on receive (False: a packet per segment)
    gso_max_bytes: PositiveInt = 65536            # payload of a GSO packet at most: GSO_LEGACY_MAX_SIZE; above: BIG TCP
    congestion: Literal["cubic", "reno"] = "cubic"    # net.ipv4.tcp_congestion_control (Linux: cubic)
    hystart: StrictBool = True                    # tcp_cubic.c's hystart module parameter (cubic only)

    @model_validator(mode="after")
    def _sane(self) -> "TcpSpec":
        if not 64 <= self.mss_bytes <= 65483:
            raise ValueError(f"mss_bytes: {self.mss_bytes} is outside 64..65483 (Linux's smallest MSS is 88, "
                             "TCP_MIN_MSS; the largest an IPv4 packet allows is 65483); 1448 is Ethernet's")
        if self.wmem_max_bytes < 2 * self.mss_bytes:
            raise ValueError(f"wmem_max_bytes: {self.wmem_max_bytes} holds fewer than two segments (mss_bytes "
                             f"{self.mss_bytes}): the writer could not keep one in flight while it writes the next; "
                             f"set wmem_max_bytes >= {2 * self.mss_bytes} (Linux's default is 4194304)")
        if self.rwnd_bytes < self.mss_bytes:
            raise ValueError(f"rwnd_bytes: {self.rwnd_bytes} is below one segment (mss_bytes {self.mss_bytes}): "
                             f"the sender could never send; set rwnd_bytes >= {self.mss_bytes}")
        if not self.mss_bytes <= self.gso_max_bytes <= GSO_MAX_BYTES:
            raise ValueError(f"gso_max_bytes: {self.gso_max_bytes} is outside mss_bytes ({self.mss_bytes}).."
                             f"{GSO_MAX_BYTES}: a GSO packet holds at least one segment, and no device takes more "
                             f"than GSO_MAX_SIZE (8 x 65535); {GSO_LEGACY_MAX_BYTES} is the default, above it is "
                             "BIG TCP; to send one segment per packet set gso: false")
        if self.congestion != "cubic" and "hystart" in self.model_fields_set:
            raise ValueError(f"hystart: HyStart is CUBIC's slow-start exit (tcp_cubic.c), not {self.congestion}'s: "
                             "remove hystart or set congestion: cubic")
        if self.rto_init_ns < self.rto_min_ns:
            raise ValueError(f"rto_init_ns ({self.rto_init_ns:g}) is below rto_min_ns ({self.rto_min_ns:g}): "
                             "raise rto_init_ns or lower rto_min_ns")
        return self


class FlowSpec(Strict):
    """A traffic source.  Open loop: poisson, constant, onoff.  Closed loop: rr.  TCP (one
    connection each, `sim.core.tcp`): tcp_stream (bulk data), tcp_rr (request/response)."""

    name: Optional[str] = None
    kind: Literal["poisson", "constant", "onoff", "rr", "tcp_stream", "tcp_rr"] = "poisson"
    src: str
    dst: str
    rate_pps: Optional[PositiveFloat] = None      # open loop (onoff: rate while on)
    size: SizeSpec = SizeSpec()
    port: NonNegativeInt = 0                      # socket index in the destination namespace
    start_ns: NonNegativeFloat = 0.0
    stop_ns: Optional[PositiveFloat] = None
    on_ns: Optional[PositiveFloat] = None         # onoff: mean ON period (exponential)
    off_ns: Optional[PositiveFloat] = None        # onoff: mean OFF period (exponential)
    concurrency: PositiveInt = 1                  # rr: transactions outstanding
    think_ns: NonNegativeFloat = 0.0              # rr: client pause after a response
    server_ns: NonNegativeFloat = 0.0             # rr: server work before responding
    server_dist: Literal["deterministic", "exponential"] = "deterministic"   # rr: server_ns is the mean
    think_dist: Literal["deterministic", "exponential"] = "deterministic"    # rr: think_ns is the mean
    response_size: Optional[SizeSpec] = None      # rr: default = size
    timeout_ns: PositiveFloat = 1e6               # rr: retry after a loss
    connections: PositiveInt = 1                  # connections (source ports), packets round-robin over them
    src_core: Optional[NonNegativeInt] = None     # pin the sending socket's thread to this core
    dst_core: Optional[NonNegativeInt] = None     # pin the receiving socket's thread to this core
    tcp: Optional[TcpSpec] = None                 # tcp_stream, tcp_rr: connection parameters (default: Linux's)

    @property
    def two_way(self) -> bool:
        """Packets go both ways (rr's responses, TCP's ACKs): the way back must exist too."""
        return self.kind in TWO_WAY_KINDS

    @model_validator(mode="after")
    def _kind_fields(self) -> "FlowSpec":
        if self.kind in TCP_KINDS:
            if self.tcp is None:
                self.tcp = TcpSpec()
            if self.rate_pps is not None:
                raise ValueError(f"rate_pps: a {self.kind} flow is paced by TCP (its window and ACKs), not by a "
                                 "packet rate; remove rate_pps")
            if self.kind == "tcp_rr" and self.concurrency != 1:
                raise ValueError("concurrency: a tcp_rr connection has one transaction in flight (netperf TCP_RR); "
                                 f"for {self.concurrency} at once set connections: {self.concurrency} and leave "
                                 "concurrency out")
        elif self.tcp is not None:
            raise ValueError(f"tcp: applies to tcp_stream and tcp_rr flows only (this flow is {self.kind}); "
                             "remove it or set kind: tcp_stream / tcp_rr")
        if self.kind not in TWO_WAY_KINDS and self.rate_pps is None:
            raise ValueError(f"a {self.kind} flow needs rate_pps (packets per second, > 0)")
        if self.kind == "onoff" and (self.on_ns is None or self.off_ns is None):
            raise ValueError("an onoff flow needs on_ns and off_ns (mean ON and OFF periods, ns)")
        if self.stop_ns is not None and self.stop_ns <= self.start_ns:
            raise ValueError("stop_ns must be after start_ns")
        for dist, mean in (("server_dist", "server_ns"), ("think_dist", "think_ns")):
            if getattr(self, dist) == "exponential":
                if self.kind not in ("rr", "tcp_rr"):
                    raise ValueError(f"{dist} applies to rr and tcp_rr flows only (this flow is {self.kind})")
                if getattr(self, mean) <= 0:
                    raise ValueError(f"{dist}: exponential needs {mean} > 0 (its mean)")
        return self


class GroupSpec(Strict):
    name: str
    members: list[str] = Field(min_length=1)


class RunSpec(Strict):
    duration_ns: PositiveFloat
    warmup_ns: NonNegativeFloat = 0.0
    seed: NonNegativeInt = 1
    replication: NonNegativeInt = 0
    max_packets: Optional[PositiveInt] = None     # stop generating after this many packets

    @model_validator(mode="after")
    def _warmup(self) -> "RunSpec":
        if self.warmup_ns >= self.duration_ns:
            raise ValueError("warmup_ns must be shorter than duration_ns")
        return self


class CostOverrides(Strict):
    stages: dict[str, dict[StageTerm, NonNegativeFloat]] = {}
    host: dict[str, Float] = {}
    memory_bytes: dict[str, Float] = {}
    netfilter: dict[str, dict] = {}       # {br_netfilter: {base_ns: ..}, backends: {NAME: {..}}, ...}


class DeclaredStage(Strict):
    """A new stage (docs/stages.md): its cost terms (ns), the report group it belongs to, and
    what ``per_entry_ns`` counts (``none``: nothing).  Schemes name it like a built-in stage."""

    base_ns: NonNegativeFloat = 0.0
    per_byte_ns: NonNegativeFloat = 0.0
    per_entry_ns: NonNegativeFloat = 0.0
    # Literal over tuple constants: pydantic expands them at run time, mypy cannot.
    group: Literal[tuple(GROUPS)]  # type: ignore[valid-type]
    entries: Literal[DECLARED_ENTRY_KINDS] = "none"  # type: ignore[valid-type]
    doc: str = ""


class Scenario(Strict):
    """One run's full description.  See the README's scenario reference for every key."""

    name: str = "scenario"
    description: str = ""
    cost_profile: str = "default"
    cost_overrides: CostOverrides = CostOverrides()
    stages: dict[str, DeclaredStage] = {}         # declared stages, usable by schemes (docs/stages.md)
    schemes: dict[str, dict] = {}                 # extra schemes, same format as built-ins
    hosts: list[HostSpec] = Field(min_length=1)
    switches: list[SwitchSpec] = []
    links: list[LinkSpec] = []
    groups: list[GroupSpec] = []
    flows: list[FlowSpec] = []
    run: RunSpec
    memory_namespace_counts: list[NonNegativeInt] = [1, 10, 100, 1000, 10000]

    @model_validator(mode="after")
    def _references(self) -> "Scenario":
        for name, st in self.stages.items():
            problem = declared_problem(name, st.group, st.entries)
            if problem:
                raise ValueError(f"stages[{name}]: {problem}")
        hosts = {h.name: h for h in self.hosts}
        nodes = set(hosts) | {s.name for s in self.switches}
        if len(nodes) != len(self.hosts) + len(self.switches):
            raise ValueError("host and switch names must be unique")
        for i, link in enumerate(self.links):
            for end in (link.a, link.b):
                if end not in nodes:
                    raise ValueError(f"links[{i}]: unknown node {end!r}; nodes are {sorted(nodes)}")
        _unique_names("groups", [g.name for g in self.groups])
        _unique_names("flows", [f.name for f in self.flows])
        groups = {g.name: g for g in self.groups}
        for g in self.groups:
            for m in g.members:
                host, ns = resolve(m, hosts, f"groups[{g.name}]")
                if ns == WIRE_NS:
                    raise ValueError(f"groups[{g.name}]: member {m!r} must be a namespace, HOST:nsN or HOST:root, "
                                     "not the wire")
        for i, f in enumerate(self.flows):
            where = f"flows[{i}]"
            src_host, src_ns = resolve(f.src, hosts, where + ".src")
            dst = parse(f.dst, where + ".dst")
            _check_pin(f.src_core, hosts[src_host], f"{where}.src_core")
            if dst.group is None and dst.host in hosts:
                _check_pin(f.dst_core, hosts[dst.host], f"{where}.dst_core")
            if dst.group is not None:
                _check_multicast(where, f, src_host, src_ns, groups, hosts)
                continue
            if dst.spread:
                if f.two_way:
                    raise ValueError(f"{where}.dst: a {f.kind} flow needs one server namespace, not {f.dst!r}")
                dst_host, dst_ns = resolve(f"{dst.host}:ns0", hosts, where + ".dst")
            else:
                dst_host, dst_ns = resolve(f.dst, hosts, where + ".dst")
            if src_ns == WIRE_NS and dst_ns == WIRE_NS:
                raise ValueError(f"{where}: src and dst cannot both be the wire")
            if src_ns == WIRE_NS and dst_host != src_host:
                raise ValueError(f"{where}: traffic from {f.src} can only reach namespaces of {src_host} "
                                 f"({src_host}:nsN or {src_host}:root)")
            if dst_ns == WIRE_NS and dst_host != src_host:
                raise ValueError(f"{where}: {f.dst} is reached only from namespaces of {dst_host} "
                                 f"({dst_host}:nsN or {dst_host}:root)")
            if f.two_way and WIRE_NS in (src_ns, dst_ns):
                raise ValueError(f"{where}: a {f.kind} flow runs between two namespaces "
                                 "(HOST:nsN or HOST:root), not the wire")
            if dst_ns != WIRE_NS and f.port >= hosts[dst_host].sockets_per_namespace:
                raise ValueError(f"{where}.port: {f.port} but {dst_host} has only "
                                 f"{hosts[dst_host].sockets_per_namespace} socket(s) per namespace (0-based)")
        return self


def _check_multicast(where: str, f: FlowSpec, src_host: str, src_ns: int, groups: dict, hosts: dict) -> None:
    """ValueError for a multicast flow the model cannot run (see the messages)."""
    dst = parse(f.dst, where + ".dst")
    if dst.group not in groups:
        raise ValueError(f"{where}.dst: unknown group {dst.group!r}; groups are {sorted(groups)}")
    if f.two_way:
        raise ValueError(f"{where}: a {f.kind} flow cannot go to a group (it needs one peer)")
    members = {resolve(m, hosts, f"groups[{dst.group}]") for m in groups[dst.group].members}
    member_hosts = {h for h, _ in members}
    if src_ns == WIRE_NS and member_hosts != {src_host}:
        raise ValueError(f"{where}: traffic from {f.src} reaches only {src_host}'s namespaces; "
                         f"group {dst.group!r} has members on {sorted(member_hosts)}")


def _check_pin(core: Optional[int], host: HostSpec, where: str) -> None:
    """ValueError when `core` (a thread pin) is not a core of `host`."""
    if core is not None and core >= host.cores:
        raise ValueError(f"{where}: core {core} but host {host.name} has {host.cores} core(s) (0-based)")


def _unique_names(coll: str, names: list[Optional[str]]) -> None:
    """ValueError ``coll[i].name: ...`` for the first name used twice (None = unnamed)."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name is None:
            continue
        if name in first:
            raise ValueError(f"{coll}[{i}].name: name {name!r} is already used by {coll}[{first[name]}]; "
                             f"{coll[:-1]} names must be distinct")
        first[name] = i
