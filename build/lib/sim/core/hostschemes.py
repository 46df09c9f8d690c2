"""Which scheme each namespace of a host runs, and so which passes each trip takes there.

Contract: a host's containers are numbered in the order of its scheme groups
(``hosts[].namespace_schemes``; one group, the host's ``scheme``, without it).  The root
namespace's own trips (``wire_to_root``, ``root_to_wire``) take the host's ``scheme``; a
trip with one container end takes that container's scheme (``wire_to_ns``, ``root_to_ns``:
the destination's; ``ns_to_wire``, ``ns_to_root``, ``ns_to_self``, ``multicast_local``: the
source's); the multicast trips reaching members on this host (``multicast``,
``root_multicast_local``) take the members' scheme (the front door admits a group only when
its members on a host, and a sender there, share one scheme), or the host's when the root is
the only member.  ``ns_to_ns`` between containers of one scheme takes that scheme's trip;
between two schemes A and B, the trip `sim.core.mixing` composes, with the records' scheme
label ``A>B`` (`labels`).  Each plan is prepared once per scheme (or pair) by the host's
`prepare` (br_netfilter, RPS), and `plan` answers from a cache.
"""

from __future__ import annotations

import bisect
from typing import Callable, Optional

from sim.core.mixing import cross_trip, label
from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.core.schemes import CompiledPass, PassSpec, Scheme, SchemeRegistry

DST_TRIPS = frozenset({"wire_to_ns", "root_to_ns"})
HOST_OWN = frozenset({"wire_to_root", "root_to_wire"})
Plans = dict[str, tuple[CompiledPass, ...]]


def labels(groups: list[tuple[str, int]]) -> list[str]:
    """The cross-scheme labels (``A>B``) a host of scheme `groups` may record, in order."""
    names = list(dict.fromkeys(s for s, _ in groups))
    return [label(a, b) for a in names for b in names if a != b]


def scheme_at(groups: list[tuple[str, int]], ns: int) -> str:
    """The scheme of container `ns` (>= 0) of a host of scheme `groups` ((scheme, count) in order)."""
    start = 0
    for name, n in groups:
        if ns < start + n:
            return name
        start += n
    raise ValueError(f"namespace {ns} is beyond the host's {start} containers")


def cross_pairs(src_ns: int, dst_ns: int, groups: list[tuple[str, int]], spread: bool = False,
                two_way: bool = False) -> list[tuple[str, str]]:
    """The (A, B) scheme pairs, A != B, a flow between containers `src_ns` and `dst_ns` of one
    host of scheme `groups` crosses (`spread`: to any container; `two_way`: responses too)."""
    if src_ns < 0 or dst_ns < 0:
        return []
    a = scheme_at(groups, src_ns)
    bs = list(dict.fromkeys(s for s, _ in groups)) if spread else [scheme_at(groups, dst_ns)]
    out = [(a, b) for b in bs if b != a]
    return out + [(b, a) for a, b in out] if two_way else out


class HostSchemes:
    """The schemes of one host's namespaces (see the module docstring).  `prepare_scheme`
    turns a scheme into its host's trip plans, `prepare_passes` a composed trip (specs,
    compiled) into its host's plan; `codes` maps scheme names and ``A>B`` labels to record codes;
    `registry` composes the cross-scheme trips (None: a host whose containers share one scheme)."""

    def __init__(self, host_scheme: Scheme, groups: list[tuple[Scheme, int]], registry: Optional[SchemeRegistry],
                 codes: dict[str, int], prepare_scheme: Callable[[Scheme], Plans],
                 prepare_passes: Callable[[tuple[PassSpec, ...], tuple[CompiledPass, ...]],
                                          tuple[CompiledPass, ...]]) -> None:
        self.host_scheme = host_scheme
        self.groups = groups
        self.registry = registry
        self.codes = codes
        self._prepare_passes = prepare_passes
        self._starts: list[int] = []             # first namespace of each group
        n = 0
        for _, count in groups:
            self._starts.append(n)
            n += count
        self.plans: dict[str, Plans] = {}
        for s in [host_scheme] + [s for s, _ in groups]:
            if s.name not in self.plans:
                self.plans[s.name] = prepare_scheme(s)
        self.cross: dict[tuple[str, str], tuple[CompiledPass, ...]] = {}
        self._cache: dict[tuple, tuple[tuple[CompiledPass, ...], int]] = {}

    @property
    def mixed(self) -> bool:
        """Whether some container runs another scheme than the host's."""
        return any(s.name != self.host_scheme.name for s, _ in self.groups)

    def group(self, ns: int) -> int:
        """Index of the group container `ns` (>= 0) belongs to."""
        return bisect.bisect_right(self._starts, ns) - 1

    def scheme_of(self, ns: int) -> Scheme:
        """The scheme of namespace `ns` (the host's for the root namespace and the wire)."""
        return self.groups[self.group(ns)][0] if ns >= 0 else self.host_scheme

    def local(self, ns: int) -> tuple[int, int]:
        """(group index, index of `ns` within its group)."""
        g = self.group(ns)
        return g, ns - self._starts[g]

    def _end(self, trip: str, src_ns: int, dst_ns: int, members: Optional[tuple[int, ...]]) -> int:
        """The namespace whose scheme runs `trip` (ROOT_NS: the host's)."""
        if trip in HOST_OWN:
            return ROOT_NS
        if trip in ("multicast", "root_multicast_local"):
            return next((m for m in members or () if m >= 0), ROOT_NS)
        return dst_ns if trip in DST_TRIPS else src_ns

    def plan(self, trip: str, src_ns: int, dst_ns: int,
             members: Optional[tuple[int, ...]] = None) -> tuple[tuple[CompiledPass, ...], int]:
        """(passes, record scheme code) of `trip` between `src_ns` and `dst_ns` on this host."""
        end = self._end(trip, src_ns, dst_ns, members)
        g_end = self.group(end) if end >= 0 else -1
        g_dst = self.group(dst_ns) if trip == "ns_to_ns" else -1
        key = (trip, g_end, g_dst)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._plan(trip, end, dst_ns)
        return hit

    def _plan(self, trip: str, end: int, dst_ns: int) -> tuple[tuple[CompiledPass, ...], int]:
        a = self.scheme_of(end).name
        b = self.scheme_of(dst_ns).name if trip == "ns_to_ns" else a
        if a == b:
            return self.plans[a][trip], self.codes[a]
        if (a, b) not in self.cross:
            composed = None if self.registry is None else cross_trip(self.registry, a, b)
            if composed is None:             # the front door refuses such flows (mixing.missing_via_root)
                raise ValueError(f"no trip from scheme {a!r} to scheme {b!r}: one of them has no via_root")
            self.cross[(a, b)] = self._prepare_passes(*composed)
        return self.cross[(a, b)], self.codes[label(a, b)]

    def all_plans(self) -> list[tuple[str, tuple[CompiledPass, ...]]]:
        """(trip, passes) of every prepared plan, for the host's bookkeeping of pass uids; the
        composed trips are prepared here, so call it after construction."""
        names = [s.name for s, _ in self.groups]
        for a in names:
            for b in names:
                if a != b and self.registry is not None and cross_trip(self.registry, a, b) is not None:
                    self.plan("ns_to_ns", self._starts[names.index(a)], self._starts[names.index(b)])
        out = [(t, p) for plans in self.plans.values() for t, p in plans.items()]
        return out + [("ns_to_ns", p) for p in self.cross.values()]

    def own_netfilter(self, ns: int) -> bool:
        """Whether namespace `ns` has netfilter hooks of its own (else its packets cross the root's)."""
        return self.scheme_of(ns).spec.capabilities.own_netfilter if ns != WIRE_NS else False
