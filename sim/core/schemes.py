"""Isolation schemes as data, and their registry.

A scheme says, for each kind of trip through one host, which *passes* a packet makes and
which stages each pass runs, in which namespace; plus how socket tables are organised, what
the isolation gives a container (capabilities), and which kernel structures each namespace
costs (see `sim.core.memory`).  Built-in schemes are in `sim/data/schemes.yaml`; a scenario can add
more in exactly the same format (``schemes:`` block), without Python.

Trips are named in `sim.core.trips`: every scheme defines the three `REQUIRED_TRIPS`; the
`OPTIONAL_TRIPS` (``multicast`` and the endpoint trips: root namespace, a namespace to
itself, multicast to members on the sender's host) may be left out, and a flow needing one a
scheme lacks is refused.

Contract of a compiled pass (`CompiledPass`): `stages` is a tuple of `CompiledStage`, each
naming the stage index in `sim.core.stages.STAGES`, the namespace role it runs in (``root``,
``src`` or ``dst``: namespace switches are already applied; ``src``/``dst`` are priced as the
root namespace when that end is ``HOST:root``) and whether it runs once per multicast member.
`wire_stages` is None, or the stages the pass adds (once) when a multicast group also has
members on other hosts, whose copy leaves the host when the pass ends (``wire_copy``).
`root_stages` is None, or the stages the pass adds (once, in the root namespace) when the
root namespace is a member on this host: the root's copy is delivered when the pass ends and
leaves the packet's members (``root_copy``: the root's own input path, e.g. ip_mr_input's
local delivery or the bridge's br_pass_frame_up).  `loop_stages` is None, or the stages a
sender's pass adds (once) when the sender is itself a member (``loop_copy``: ip_mc_output's
IP_MULTICAST_LOOP clone, POSTROUTING and dev_loopback_xmit); when the pass ends the sender's
own copy leaves the members and goes in through the rest of the scheme's ``ns_to_self`` trip
(its own loopback input).  A scheme without these keys reaches the root and the sender like
any member (the per-member stages ``*`` or the fanout).  A ``ns_switch`` stage costs nothing
when it would switch to the namespace the packet is already in (`CompiledStage.to_role`).

A scheme may also say how its containers meet a container of *another* scheme on the same
host (``via_root``, `ViaRootSpec`): the two halves of such a trip meet at the root
namespace's routing decision; `sim.core.mixing` joins them, and `SchemeRegistry.compile_passes`
compiles the result with uids of this registry.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationInfo, model_validator

from sim.core.sockets import ERA_TABLES
from sim.core.stages import BUILTIN_STAGES, STAGE_INDEX, StageSet
from sim.core.trips import HOST_TRIPS, LOCAL_MULTICAST_TRIPS, MULTICAST_TRIPS, REQUIRED_TRIPS, SENDER_TRIPS
from sim.frontdoor.numbers import NonNegativeFloat
from sim.yamlload import safe_load

TRIPS = HOST_TRIPS
# What a scheme's memory_per_namespace counts per container (sim.core.memory composes each
# into kernel structures): a namespace's own state, a device, a veth pair, ...
MEMORY_STRUCTURES: tuple[str, ...] = ("netns_struct", "net_device", "veth_pair", "bridge_port", "fib_table",
                                      "fib_info_hash", "nf_table", "proc_entries", "bind_filter",
                                      "classifier_rule", "ns_tag")
BUILTIN_FILE = Path(__file__).parent.parent / "data" / "schemes.yaml"
Role = Literal["root", "src", "dst"]
NIC_TX = STAGE_INDEX["nic_tx"]
# Stages the execution model charges itself, never a scheme's pass: name -> why.
NOT_LISTED: dict[str, str] = {
    "napi_poll": "the packet that opens a NAPI poll pays it (sim.core.cpu), whichever pass it runs; remove it",
}


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    own_routes: bool
    own_netfilter: bool
    own_devices: bool
    dhcp_raw_nonip: bool
    tunnels_vpn: bool
    migration_with_ip: bool


class PassSpec(BaseModel):
    """One pass: stages run back to back on one core, after waiting in `queue`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ns: Role
    queue: Literal["nic_rx", "backlog", "process"]
    stages: list[str] = Field(min_length=1)
    fanout: bool = False
    wire_copy: Optional[list[str]] = None     # multicast_local: see the module docstring
    root_copy: Optional[list[str]] = None     # multicast trips: see the module docstring
    loop_copy: Optional[list[str]] = None     # a sender's multicast pass: see the module docstring

    @model_validator(mode="after")
    def _known_stages(self, info: ValidationInfo) -> "PassSpec":
        # the run's stages (built-ins plus declared ones) come in the validation context
        known = ((info.context or {}).get("stages") or BUILTIN_STAGES).index
        for token in self.stages + (self.wire_copy or []) + (self.root_copy or []) + (self.loop_copy or []):
            name = _stage_name(token)
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                raise ValueError(f"unknown stage {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                                 + f" Known stages: {', '.join(known)}. A new stage is declared in the "
                                 "scenario's stages: block, e.g. stages: {tc_policy: {base_ns: 40, group: bpf}}")
            if name in NOT_LISTED:
                raise ValueError(f"stage {name!r} is not listed in a pass: {NOT_LISTED[name]}")
            if ":" in token and token.split(":", 1)[1].rstrip("*") not in ("root", "src", "dst"):
                raise ValueError(f"stage {token!r}: a namespace switch names root, src or dst, e.g. 'ns_switch:dst'")
        return self


ROUTE_DECISION = {"input": "route_input", "output": "route_output"}


class ViaRootSpec(BaseModel):
    """A container's half of a trip to or from a container of another scheme on its host
    (mixed hosts, `sim.core.mixing`): `send` are the passes from the container up to and
    including the root namespace's routing decision (its last stage: ``route_input`` when
    `decision` is ``input``, the packet entering the root by the container's device;
    ``route_output`` when ``output``, the container's sockets living in the root's stack);
    `receive` the stages, in the same pass, after the decision that brings it to the
    container (`by` ``local``: the root's stack delivers it; ``device``: the root sends it out
    of the container's device), and `then` the passes after that (``device`` only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    decision: Literal["input", "output"]
    send: list[PassSpec] = Field(min_length=1)
    by: Literal["local", "device"]
    receive: list[str] = Field(min_length=1)
    then: list[PassSpec] = []

    @model_validator(mode="after")
    def _shape(self, info: ValidationInfo) -> "ViaRootSpec":
        PassSpec.model_validate({"ns": "root", "queue": "backlog", "stages": self.receive}, context=info.context)
        if self.send[0].queue != "process":
            raise ValueError("via_root.send: the first pass must wait in queue 'process' (the sending application)")
        last = _stage_name(self.send[-1].stages[-1])
        if last != ROUTE_DECISION[self.decision]:
            raise ValueError(f"via_root.send: decision {self.decision} means the last pass ends with the root's "
                             f"{ROUTE_DECISION[self.decision]}, not {last}")
        if (self.by == "device") != bool(self.then):
            raise ValueError("via_root.then: the passes in the container after the root's device (by: device) "
                             "are needed there and only there")
        for p in self.send + self.then:
            if p.fanout or p.wire_copy is not None or p.root_copy is not None or p.loop_copy is not None:
                raise ValueError("via_root passes are unicast: no fanout, wire_copy, root_copy or loop_copy")
        if any(t.endswith("*") for p in self.send + self.then for t in p.stages) or \
                any(t.endswith("*") for t in self.receive):
            raise ValueError("via_root: per-member stages ('*') belong to multicast trips")
        return self


class SchemeSpec(BaseModel):
    """A whole isolation scheme (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str
    socket_tables: Literal["single", "addr_port", "shared_permuted", "per_namespace"]
    # Schemes whose namespaces have their own stack say which kernel era's socket tables they
    # model: posted_2006 (per_namespace) or mainline (shared_permuted); a host may run the
    # other (hosts[].socket_tables, sim.core.sockets).  None: the organisation is the scheme's own.
    socket_era: Optional[Literal["posted_2006", "mainline"]] = None
    capabilities: Capabilities
    addresses_per_container: NonNegativeInt
    devices_per_container: NonNegativeInt
    # Literal over a tuple constant: pydantic expands it at run time, mypy cannot.
    memory_per_namespace: dict[Literal[MEMORY_STRUCTURES], NonNegativeFloat] = {}  # type: ignore[valid-type]
    trips: dict[Literal[TRIPS], Annotated[list[PassSpec], Field(min_length=1)]]  # type: ignore[valid-type]
    via_root: Optional[ViaRootSpec] = None      # trips to another scheme's containers (sim.core.mixing)

    @model_validator(mode="after")
    def _trip_rules(self) -> "SchemeSpec":
        if self.socket_era is not None and ERA_TABLES[self.socket_era] != self.socket_tables:
            raise ValueError(f"socket_era {self.socket_era} means socket_tables: {ERA_TABLES[self.socket_era]}, "
                             f"not {self.socket_tables}")
        missing = [t for t in REQUIRED_TRIPS if t not in self.trips]
        if missing:
            raise ValueError(f"trips {missing} are missing; every scheme defines {list(REQUIRED_TRIPS)}")
        for trip, passes in self.trips.items():
            first = passes[0].queue
            want = "process" if trip in SENDER_TRIPS else "nic_rx"
            if first != want:
                raise ValueError(f"trips.{trip}: the first pass must wait in queue {want!r}, not {first!r}")
            fanouts = [i for i, p in enumerate(passes) if p.fanout]
            if fanouts and trip not in MULTICAST_TRIPS:
                raise ValueError(f"trips.{trip}: only the multicast trips may have a fanout pass")
            if len(fanouts) > 1:
                raise ValueError(f"trips.{trip}: at most one fanout pass")
            after = fanouts[0] if fanouts else len(passes)
            for i, p in enumerate(passes):
                starred = any(t.endswith("*") for t in p.stages)
                if starred and (trip not in MULTICAST_TRIPS or i >= after):
                    raise ValueError(f"trips.{trip}[{i}]: per-member stages ('*') only in multicast passes "
                                     "before the fanout")
            copies = [i for i, p in enumerate(passes) if p.wire_copy is not None]
            if copies and trip not in LOCAL_MULTICAST_TRIPS:
                raise ValueError(f"trips.{trip}: only the multicast_local trips may have a wire_copy pass")
            if trip in LOCAL_MULTICAST_TRIPS and (len(copies) != 1 or copies[0] >= after):
                raise ValueError(f"trips.{trip}: exactly one pass before the fanout has wire_copy "
                                 "(the stages that send the copy for members on other hosts, maybe [])")
            roots = [i for i, p in enumerate(passes) if p.root_copy is not None]
            if roots and (trip not in MULTICAST_TRIPS or len(roots) > 1 or roots[0] >= after):
                raise ValueError(f"trips.{trip}: root_copy (the root namespace's delivery as a member) is for "
                                 "one pass before the fanout of a multicast trip")
            loops = [i for i, p in enumerate(passes) if p.loop_copy is not None]
            if loops and (trip not in LOCAL_MULTICAST_TRIPS or loops != [0]):
                raise ValueError(f"trips.{trip}: loop_copy (the sender's own IP_MULTICAST_LOOP copy) belongs on "
                                 "the first pass of a multicast_local trip")
            if loops and len(self.trips.get("ns_to_self", ())) < 2:
                raise ValueError(f"trips.{trip}: loop_copy needs trips.ns_to_self with an input pass after the "
                                 "first (the sender's own copy goes in through its own loopback)")
        return self


@dataclass(frozen=True)
class CompiledStage:
    index: int          # position in sim.core.stages.STAGES
    role: str           # root | src | dst: the namespace the stage runs in
    entry_kind: str     # see sim.core.stages
    per_member: bool    # runs once per multicast member
    to_role: str = ""   # ns_switch: the namespace it switches to (free when that is where the packet is)


@dataclass(frozen=True)
class CompiledPass:
    uid: int            # unique over the registry, used as a cache key
    queue: str
    role: str           # namespace the pass starts in (decides the vnic RX queue)
    fanout: bool
    stages: tuple[CompiledStage, ...]
    wire_stages: tuple[CompiledStage, ...] | None = None    # see the module docstring
    root_stages: tuple[CompiledStage, ...] | None = None    # see the module docstring
    loop_stages: tuple[CompiledStage, ...] | None = None    # see the module docstring
    steer: bool = False     # RPS (sim.core.host.rps_plans): the packet moves to another core's backlog after it
    # stage indexes the packet ran in an earlier pass of its trip, whose cost profile prices a
    # repeat traversal (``repeat_ns``; sim.core.host.Host._repeat_passes)
    repeat: frozenset[int] = frozenset()
    has_tx: bool = field(init=False, default=False, compare=False)   # may hand packets to the NIC (nic_tx)
    tx: int = field(init=False, default=0, compare=False)            # nic_tx stages a unicast packet runs
    # wire, root or loop stages, or steer: its end may do more than queue the packet's next pass
    copies_or_steer: bool = field(init=False, default=False, compare=False)

    def __post_init__(self) -> None:
        every = self.stages + (self.wire_stages or ()) + (self.root_stages or ()) + (self.loop_stages or ())
        object.__setattr__(self, "has_tx", any(st.index == NIC_TX for st in every))
        object.__setattr__(self, "tx", sum(st.index == NIC_TX for st in self.stages))
        object.__setattr__(self, "copies_or_steer", self.steer or self.wire_stages is not None
                           or self.root_stages is not None or self.loop_stages is not None)


@dataclass(frozen=True)
class Scheme:
    name: str
    spec: SchemeSpec
    trips: dict[str, tuple[CompiledPass, ...]]


def _stage_name(token: str) -> str:
    return token.rstrip("*").split(":", 1)[0]


def _compile_stages(tokens: list[str], role: str,
                    stages: StageSet = BUILTIN_STAGES) -> tuple[tuple[CompiledStage, ...], str]:
    """The compiled stages of `tokens` starting in namespace `role`, and the role at the end."""
    out = []
    for token in tokens:
        per_member = token.endswith("*")
        name = _stage_name(token)
        if name == "ns_switch":
            target = token.rstrip("*").split(":", 1)[1] if ":" in token else "dst"
            out.append(CompiledStage(stages.index[name], role, "none", per_member, target))
            role = target
            continue
        out.append(CompiledStage(stages.index[name], role, stages.info[name].entry_kind, per_member))
    return tuple(out), role


def _compile_pass(spec: PassSpec, uid: int, known: StageSet = BUILTIN_STAGES) -> CompiledPass:
    stages, end_role = _compile_stages(spec.stages, spec.ns, known)
    wire = None if spec.wire_copy is None else _compile_stages(spec.wire_copy, end_role, known)[0]
    root = None if spec.root_copy is None else _compile_stages(spec.root_copy, "root", known)[0]
    loop = None if spec.loop_copy is None else _compile_stages(spec.loop_copy, end_role, known)[0]
    return CompiledPass(uid, spec.queue, spec.ns, spec.fanout, stages, wire, root, loop)


class SchemeRegistry:
    """Name -> compiled scheme.  Built-ins load from `sim/data/schemes.yaml`.  `stages` are the
    run's stages (`sim.core.stages.StageSet`: the built-ins plus declared ones) the schemes added
    may name; the built-in schemes use built-in stages only, whose indices never change."""

    def __init__(self, stages: StageSet = BUILTIN_STAGES) -> None:
        self._schemes: dict[str, Scheme] = {}
        self._next_uid = 0
        self.stages = stages
        self.cross: dict[tuple[str, str], tuple] = {}     # sim.core.mixing.cross_trip's cache

    def add(self, name: str, spec: SchemeSpec | dict) -> Scheme:
        if not isinstance(spec, SchemeSpec):
            spec = SchemeSpec.model_validate(spec, context={"stages": self.stages})
        trips = {trip: self.compile_passes(passes) for trip, passes in spec.trips.items()}
        scheme = Scheme(name, spec, trips)
        self._schemes[name] = scheme
        return scheme

    def compile_passes(self, passes: list[PassSpec]) -> tuple[CompiledPass, ...]:
        """`passes` compiled, each with a uid unique in this registry."""
        compiled = []
        for p in passes:
            compiled.append(_compile_pass(p, self._next_uid, self.stages))
            self._next_uid += 1
        return tuple(compiled)

    def get(self, name: str) -> Scheme:
        if name not in self._schemes:
            hint = difflib.get_close_matches(name, self._schemes, n=1)
            raise KeyError(f"unknown scheme {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                           + f" Known schemes: {', '.join(self._schemes)}")
        return self._schemes[name]

    def names(self) -> list[str]:
        return list(self._schemes)

    def __contains__(self, name: str) -> bool:
        return name in self._schemes

    def copy(self, stages: StageSet | None = None) -> "SchemeRegistry":
        """A copy (whose added schemes may name `stages`, if given, which extend this one's)."""
        new = SchemeRegistry(stages or self.stages)
        new._schemes = dict(self._schemes)
        new._next_uid = self._next_uid
        return new


_BUILTIN: SchemeRegistry | None = None          # sim/data/schemes.yaml, parsed once per process
_WITH_EXTRA: dict[str, SchemeRegistry] = {}


def builtin_registry(stages: StageSet = BUILTIN_STAGES) -> SchemeRegistry:
    """A fresh registry holding the built-in schemes (the file is parsed once per process), to
    which schemes naming `stages` may be added."""
    global _BUILTIN
    if _BUILTIN is None:
        reg = SchemeRegistry()
        for name, spec in safe_load(BUILTIN_FILE.read_text()).items():
            reg.add(name, spec)
        _BUILTIN = reg
    return _BUILTIN.copy(stages)


def registry_with(extra: dict, stages: StageSet = BUILTIN_STAGES) -> SchemeRegistry:
    """The built-in schemes plus a scenario's own `extra` ones (name -> spec, validated here),
    which may name the run's `stages`; cached per process by content: the one scheme-registry
    cache.  Shared: do not add to it (``copy()`` first)."""
    key = json.dumps([stages.key(), {n: s.model_dump(mode="json") if hasattr(s, "model_dump") else s
                                     for n, s in extra.items()}], sort_keys=True, default=str)
    if key not in _WITH_EXTRA:
        reg = builtin_registry(stages)
        for name, spec in extra.items():
            reg.add(name, spec)
        _WITH_EXTRA[key] = reg
    return _WITH_EXTRA[key]
