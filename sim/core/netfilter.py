"""Netfilter per namespace and hook: registered hooks, their prices, br_netfilter's bridge
passes, conntrack's sites, and the policy bits a pass records.  (docs/netfilter.md has the
kernel functions behind every rule here.)

Contract:
- A namespace group (``root``: the host's root namespace; ``child``: every container
  namespace) has, per hook (`sim.core.stages.NF_CHAINS`), one of three states
  (`HookPrices`): **no hook registered** — the nf stage costs nothing (``nf_hook()`` finds
  ``net->nf.hooks_ipv4[hook]`` NULL and returns 1, include/linux/netfilter.h);
  **registered, empty chain** — the stage's ``base_ns`` plus the backend's extra
  (``nf_hook_slow`` runs the chain, net/netfilter/core.c); **N rules** — that plus
  ``N * (per_entry_ns + backend per rule)``.
- Which hooks are registered (`registered_hooks`): ``nf_hooks: none`` none; ``all`` every
  hook; ``declared`` (the default) the chains ``nf_rules`` lists (with 0 rules: registered,
  empty), widened by ``iptables-legacy`` to whole tables (a filter chain registers INPUT,
  FORWARD and OUTPUT, as ``xt_hook_ops_alloc`` does for FILTER_VALID_HOOKS; PREROUTING or
  POSTROUTING the mangle table's five hooks), plus conntrack's four hooks
  (``ipv4_conntrack_ops``: PREROUTING, LOCAL_OUT, and ``nf_confirm`` at POSTROUTING and
  LOCAL_IN) when conntrack is on, plus the root's PREROUTING when br_netfilter runs on a
  bridge there (``ip_sabotage_in`` in ``br_nf_ops``).
- br_netfilter (`br_netfilter_trips`): in a host whose scheme bridges, every ``bridge`` stage
  crossed by a frame that came from a port (not one the root sent through br0, whose
  ``bridge`` follows ``dev_xmit``) becomes ``bridge`` (priced with the profile's
  ``netfilter.br_netfilter`` extra: br_nf_pre_routing, br_validate_ipv4, the skb extension,
  br_nf_forward_ip, br_nf_post_routing) followed by the root's ``nf_prerouting`` and, when the
  frame is forwarded to a port (``dev_xmit`` next, per member when starred), ``nf_forward``
  and ``nf_postrouting``.  A frame passed up to br0 (``l2_demux`` next, or the pass's
  ``root_copy``) skips its second PREROUTING (``ip_sabotage_in``): that ``nf_prerouting`` is
  dropped.  A multicast_local pass's ``wire_copy`` forwarded to the NIC's port gains
  ``nf_forward, nf_postrouting``.
- conntrack: in a namespace with conntrack, the PREROUTING and LOCAL_OUT stages (the
  ``nf_conntrack_in`` sites) cost ``conntrack_lookup`` for every packet and
  ``conntrack_create`` more for the first packet of each connection there (the host keeps the
  set of (connection, namespace) it has seen; a connection is the flow's 5-tuple: flow,
  source port ``seq % connections``, and the request's destination namespace).
- Policy bits (`policy_bit`): a pass records the (side, chain) hook points it crosses,
  registered or not: side 0 the sender's container, 1 the root namespace of the sender's host,
  2 the root of the receiver's host, 3 the receiver's container (bit ``side * 5 + chain``).
  `policy_sums` turns them and the declared rules into ``policy_*`` metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.core.schemes import CompiledPass, PassSpec, Scheme, _compile_pass, _stage_name
from sim.core.stages import NF_CHAINS, STAGES

CHAIN_INDEX: dict[str, int] = {c: i for i, c in enumerate(NF_CHAINS)}
KIND_CHAIN: dict[str, int] = {f"nf:{c}": i for i, c in enumerate(NF_CHAINS)}   # entry kind -> chain index
CHAIN_STAGE: dict[str, str] = {s.entry_kind[3:]: s.name for s in STAGES if s.entry_kind.startswith("nf:")}
CT_IN = frozenset({"prerouting", "output"})             # ipv4_conntrack_in / ipv4_conntrack_local
CT_HOOKS = frozenset({"prerouting", "input", "output", "postrouting"})   # ipv4_conntrack_ops
LEGACY_FILTER = frozenset({"input", "forward", "output"})                # iptable_filter FILTER_VALID_HOOKS
GROUPS = ("root", "child")
SIDES = ("src", "src_root", "dst_root", "dst")          # policy bit sides, in bit order
WHERE = ("src", "root", "dst")                          # what the policy metrics name
BR_UID_BASE = 1 << 40                                   # uids of br_netfilter's rewritten passes
BR_NF = "br_nf"                                         # entry kind of a bridge stage running br_netfilter
# Chains that apply to a packet (policy_sums), as masks in NF_CHAINS order
OUT_CHAINS = np.array([c in ("output", "postrouting") for c in NF_CHAINS])          # where it is sent
IN_CHAINS = np.array([c in ("prerouting", "input") for c in NF_CHAINS])              # where it is received
TRANSIT_CHAINS = np.array([c in ("prerouting", "forward", "postrouting") for c in NF_CHAINS])   # a root between


def policy_bit(side: int, chain: int) -> int:
    return 1 << (side * len(NF_CHAINS) + chain)


def registered_hooks(mode: str, rules: dict[str, int], backend: str, conntrack: bool,
                     br_prerouting: bool = False) -> frozenset[str]:
    """The hooks registered in one namespace group (see the module docstring)."""
    if mode == "none":
        return frozenset()
    if mode == "all":
        return frozenset(NF_CHAINS)
    hooks = set(rules)
    if backend == "iptables-legacy":
        if hooks & LEGACY_FILTER:
            hooks |= LEGACY_FILTER
        if hooks & {"prerouting", "postrouting"}:
            hooks |= set(NF_CHAINS)                     # the mangle table: every hook
    if conntrack:
        hooks |= CT_HOOKS
    if br_prerouting:
        hooks.add("prerouting")
    return frozenset(hooks)


@dataclass(frozen=True)
class HookPrices:
    """One namespace group's prices per chain (indexed like NF_CHAINS): None for no hook, else
    the fixed ns of a traversal (base + backend base + rules * per rule, + conntrack lookup at
    its sites), and whether the chain is a conntrack site."""

    fixed: tuple[float | None, ...]
    ct_site: tuple[bool, ...]


def hook_prices(profile, spec, group: str, br_prerouting: bool) -> HookPrices:
    """`HookPrices` of namespace group `group` of host `spec` under `profile`."""
    rules = dict(getattr(spec.nf_rules, group))
    conntrack = getattr(spec.conntrack, group)
    hooks = registered_hooks(getattr(spec.nf_hooks, group), rules, spec.nf_backend, conntrack,
                             br_prerouting and group == "root")
    extra = profile.netfilter.backends[spec.nf_backend]
    lookup = profile.netfilter.conntrack_lookup.base_ns
    fixed: list[float | None] = []
    sites = []
    for chain in NF_CHAINS:
        site = conntrack and chain in CT_IN
        sites.append(site)
        if chain not in hooks:
            fixed.append(None)
            continue
        st = profile.stages[CHAIN_STAGE[chain]]
        n = rules.get(chain, 0)
        per_rule = st.per_entry_ns + extra.per_entry_ns
        fixed.append(st.base_ns + extra.base_ns + n * per_rule + (lookup if site else 0.0))
    return HookPrices(tuple(fixed), tuple(sites))


# -- br_netfilter ---------------------------------------------------------------------

def _rewrite(tokens: list[str]) -> tuple[list[str], list[int], bool]:
    """`tokens` with br_netfilter's hooks around every bridge crossed by a frame from a port:
    (new tokens, positions of those bridge stages, whether a frame went up to br0 after its
    PREROUTING ran at the bridge)."""
    out: list[str] = []
    marks: list[int] = []
    sabotage = up = False
    for i, tok in enumerate(tokens):
        name = _stage_name(tok)
        if name == "bridge" and (i == 0 or _stage_name(tokens[i - 1]) != "dev_xmit"):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            marks.append(len(out))
            out += [tok, "nf_prerouting"]
            if nxt is not None and _stage_name(nxt) == "dev_xmit":
                star = "*" if nxt.endswith("*") else ""
                out += ["nf_forward" + star, "nf_postrouting" + star]
            if nxt is None or _stage_name(nxt) == "l2_another_round":
                sabotage = True             # passed up to br0 in this pass
            up = True
            continue
        if name == "nf_prerouting" and sabotage:
            sabotage = False                # ip_sabotage_in: PREROUTING already ran at the bridge
            continue
        out.append(tok)
    return out, marks, up


def _drop_first_prerouting(tokens: list[str]) -> list[str]:
    out = list(tokens)
    for i, tok in enumerate(out):
        if _stage_name(tok) == "nf_prerouting":
            return out[:i] + out[i + 1:]
    return out


def _rewrite_pass(spec: PassSpec) -> tuple[PassSpec, list[int]] | None:
    stages, marks, bridged = _rewrite(list(spec.stages))
    if not bridged:
        return None
    update: dict = {"stages": stages}
    if spec.root_copy is not None:                  # br_pass_frame_up: PREROUTING ran at the bridge
        update["root_copy"] = _drop_first_prerouting(spec.root_copy)
    if spec.wire_copy is not None and any(_stage_name(t) == "dev_xmit" for t in spec.wire_copy[:1]):
        update["wire_copy"] = ["nf_forward", "nf_postrouting", *spec.wire_copy]
    return spec.model_copy(update=update), marks


def br_netfilter_trips(scheme: Scheme) -> dict[str, tuple[CompiledPass, ...]] | None:
    """The scheme's trips with br_netfilter's hooks (see the module docstring), or None if no
    pass bridges a frame from a port.  Rewritten passes get uid ``BR_UID_BASE + uid``."""
    out: dict[str, tuple[CompiledPass, ...]] = {}
    changed = False
    for trip, specs in scheme.spec.trips.items():
        new = br_netfilter_passes(specs, scheme.trips[trip])
        changed |= new is not None
        out[trip] = new or scheme.trips[trip]
    return out if changed else None


def br_netfilter_passes(specs, compiled: tuple[CompiledPass, ...]) -> tuple[CompiledPass, ...] | None:
    """Passes `compiled` (of pass specs `specs`) with br_netfilter's hooks, or None if none
    bridges a frame from a port (see `br_netfilter_trips`)."""
    new = []
    changed = False
    for spec, p in zip(specs, compiled):
        rw = _rewrite_pass(spec)
        if rw is None:
            new.append(p)
            continue
        changed = True
        rspec, marks = rw
        q = _compile_pass(rspec, BR_UID_BASE + p.uid)
        stages = list(q.stages)
        for k in marks:
            stages[k] = replace(stages[k], entry_kind=BR_NF)
        new.append(replace(q, stages=tuple(stages)))
    return tuple(new) if changed else None


def bridges(scheme: Scheme) -> bool:
    """Whether any pass of `scheme` has a bridge stage (a bridge device in the root)."""
    return any(_stage_name(t) == "bridge" for specs in scheme.spec.trips.values() for s in specs
               for t in s.stages + (s.root_copy or []) + (s.wire_copy or []))


# -- policy ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicyScope:
    """Declared rules per host (by node name): root and child rule counts per chain (only
    chains with rules count; a chain declared with 0 rules has nothing to bypass)."""

    root: dict[str, tuple[int, ...]]
    child: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, hosts) -> "PolicyScope":
        def vec(rules: dict) -> tuple[int, ...]:
            return tuple(int(rules.get(c, 0)) for c in NF_CHAINS)
        return cls({h.name: vec(h.nf_rules.root) for h in hosts}, {h.name: vec(h.nf_rules.child) for h in hosts})


def policy_sums(delivered, scope: PolicyScope) -> tuple[np.ndarray, np.ndarray]:
    """(declared, bypassed): arrays of shape (len(WHERE), len(NF_CHAINS)), rules summed over the
    rows of `delivered` (a packet frame), by where (src container, roots, dst container) and
    chain.

    A chain *applies* to a packet where it passes: the sender's OUTPUT and POSTROUTING, the
    receiver's PREROUTING and INPUT (a root namespace at an end likewise), and PREROUTING,
    FORWARD and POSTROUTING of a root the packet crosses between its ends (a transit root).  A
    row's declared rules are the rules of the chains that apply to it or that its path crossed
    (``nf_chains``), in the namespaces at its ends and the roots of its hosts (a wire end has
    none); bypassed are the rules of chains that apply but were never crossed.  The two roots
    of a one-host trip are one namespace (an end if either end is the root, else transit), as
    are the two ends of a trip to itself."""
    if len(delivered) == 0:
        return policy_sums_of(PolicyRows(*(np.zeros(0, np.int64),) * 5), scope)

    # pandas here, not at the top: validating a scenario imports none
    import pandas as pd
    return policy_sums_of(PolicyRows(host_positions(scope, *pd.factorize(delivered["src_host"])),
                                     host_positions(scope, *pd.factorize(delivered["dst_host"])),
                                     delivered["src_netns"].to_numpy(), delivered["dst_netns"].to_numpy(),
                                     delivered["nf_chains"].to_numpy()), scope)


class PolicyRows(NamedTuple):
    """What `policy_sums_of` reads of delivered rows, one array entry per row: the source and
    destination hosts' positions in the scope (`host_positions`), the namespace codes and
    the ``nf_chains`` bit masks."""

    src_i: np.ndarray
    dst_i: np.ndarray
    src_ns: np.ndarray
    dst_ns: np.ndarray
    nf_chains: np.ndarray

    def take(self, rows: np.ndarray) -> "PolicyRows":
        """The rows at positions `rows`."""
        return PolicyRows(*(a[rows] for a in self))


def host_positions(scope: PolicyScope, codes: np.ndarray, labels) -> np.ndarray:
    """Each row's host as its position in `scope` (`scope.root` order), from `codes` into
    host names `labels`; code -1 (missing) or a name that is no host of `scope` gives
    ``len(scope.root)``: not a host."""
    names = {h: i for i, h in enumerate(scope.root)}
    lut = np.asarray([names.get(str(u), len(names)) for u in labels] + [len(names)], dtype=np.int64)
    return lut[codes]


def policy_sums_of(delivered: PolicyRows, scope: PolicyScope) -> tuple[np.ndarray, np.ndarray]:
    """`policy_sums` of delivered rows given as arrays."""
    src_i, dst_i, src_ns, dst_ns, nf_chains = delivered
    nc = len(NF_CHAINS)
    if len(src_i) == 0:
        return np.zeros((len(WHERE), nc)), np.zeros((len(WHERE), nc))
    n_hosts = len(scope.root)
    root = np.asarray([*scope.root.values(), (0,) * nc], dtype=float)    # last row: not a host
    child = np.asarray([*(scope.child[h] for h in scope.root), (0,) * nc], dtype=float)
    bits = nf_chains.astype(np.int64)
    crossed = np.stack([(bits[:, None] >> (k * nc + np.arange(nc))) & 1 for k in range(len(SIDES))], axis=1) > 0
    declared = np.stack([
        child[src_i] * (src_ns >= 0)[:, None],
        root[src_i] * (src_ns != WIRE_NS)[:, None],
        root[dst_i] * (dst_ns != WIRE_NS)[:, None],
        child[dst_i] * (dst_ns >= 0)[:, None]], axis=1)
    src_root, dst_root = src_ns == ROOT_NS, dst_ns == ROOT_NS
    applies = np.stack([
        np.broadcast_to(OUT_CHAINS, (len(bits), nc)),
        np.where(src_root[:, None], OUT_CHAINS, TRANSIT_CHAINS),
        np.where(dst_root[:, None], IN_CHAINS, TRANSIT_CHAINS),
        np.broadcast_to(IN_CHAINS, (len(bits), nc))], axis=1).copy()
    one_host = (src_i == dst_i) & (src_i < n_hosts) & (src_ns != WIRE_NS) & (dst_ns != WIRE_NS)
    crossed[one_host, 1] |= crossed[one_host, 2]
    end = (src_root | dst_root)[:, None]
    merged = np.where(end, (src_root[:, None] & OUT_CHAINS) | (dst_root[:, None] & IN_CHAINS), TRANSIT_CHAINS)
    applies[one_host, 1] = merged[one_host]
    declared[one_host, 2] = 0
    same_ns = one_host & (src_ns == dst_ns) & (src_ns >= 0)
    crossed[same_ns, 0] |= crossed[same_ns, 3]
    applies[same_ns, 0] |= applies[same_ns, 3]
    declared[same_ns, 3] = 0
    in_scope = declared * (applies | crossed)
    bypassed = declared * (applies & ~crossed)
    by_where = lambda a: np.stack([a[:, 0].sum(0), a[:, 1].sum(0) + a[:, 2].sum(0), a[:, 3].sum(0)])  # noqa: E731
    return by_where(in_scope), by_where(bypassed)
