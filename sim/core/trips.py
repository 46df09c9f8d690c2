"""Which trips a packet takes, from its two ends: the one classification of traffic.

Two names are involved:

- a *host trip* is what one host runs: a key of a scheme's ``trips`` (`HOST_TRIPS`), a list
  of passes.  `REQUIRED_TRIPS` are the ones every scheme defines; `OPTIONAL_TRIPS` are
  ``multicast`` (a scheme whose containers the kernel cannot reach by multicast has none) and
  the `ENDPOINT_TRIPS` (the root namespace as an endpoint, a namespace to itself, multicast to
  members on the sender's own host); a flow that needs a trip its host's scheme lacks is
  refused at validation (`missing_trip`).
- a *journey label* (`sim.core.records.TRIP_LABELS`) names a packet's whole way, one or two
  hosts, and is the ``trip`` column of the records.

Unicast (`unicast`), with S and D the kinds of the two ends (``ns`` a container, ``root``
the host's root namespace, ``wire``):

- same host: ``wire_to_D`` and ``S_to_wire`` (S, D not the wire), ``ns_to_ns``,
  ``root_to_ns``, ``ns_to_root``; a namespace to itself is ``ns_to_self`` /
  ``root_to_self``, both run as host trip ``ns_to_self`` (the source's own loopback);
- two hosts: label ``S_to_remote_D``; host trip ``S_to_wire`` on the source host, then, after
  the links, ``wire_to_D`` on the destination host.

Multicast (`multicast_first_trip`): from the wire, host trip ``multicast`` (label
``multicast``); from a container whose host holds members, ``multicast_local``, and from the
root namespace, ``root_multicast_local`` (label ``multicast_local`` for the local members'
records either way), whose `wire_copy` pass sends one copy to each other member host; from a
sender whose host holds no member, ``S_to_wire``; every other member host runs
``multicast`` (label ``multicast``).  Members may be containers or the root namespace, and
the sender may be a member of its own group (IP_MULTICAST_LOOP, on by default): it is then
one of the members on its host (`sim.core.schemes` says how each scheme reaches it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.core.records import TRIP_LABELS

REQUIRED_TRIPS: tuple[str, ...] = ("wire_to_ns", "ns_to_wire", "ns_to_ns")
ENDPOINT_TRIPS: tuple[str, ...] = ("wire_to_root", "root_to_wire", "root_to_ns", "ns_to_root", "ns_to_self",
                                   "multicast_local", "root_multicast_local")
# A scheme whose containers the kernel cannot reach by multicast (ipvlan in L3/L3S mode) has no
# ``multicast`` trip; a flow to a group with members there is refused (`missing_trip`).
OPTIONAL_TRIPS: tuple[str, ...] = ("multicast",) + ENDPOINT_TRIPS
HOST_TRIPS: tuple[str, ...] = REQUIRED_TRIPS + OPTIONAL_TRIPS
LEAVING_TRIPS: frozenset[str] = frozenset({"ns_to_wire", "root_to_wire"})   # the packet leaves the host after
SENDER_TRIPS: frozenset[str] = frozenset(t for t in HOST_TRIPS if not t.startswith("wire_to") and t != "multicast")
LOCAL_MULTICAST_TRIPS: frozenset[str] = frozenset({"multicast_local", "root_multicast_local"})   # sender's host
MULTICAST_TRIPS: frozenset[str] = frozenset({"multicast"}) | LOCAL_MULTICAST_TRIPS
CODE: dict[str, int] = {label: i for i, label in enumerate(TRIP_LABELS)}


@dataclass(frozen=True)
class Journey:
    """A unicast packet's way: its record label (code `code`), the host trip on the source
    host and, when the destination is another host, the host trip there (else None)."""

    label: str
    first: str
    last: Optional[str]

    @property
    def code(self) -> int:
        return CODE[self.label]


def kind(ns: int) -> str:
    """``wire``, ``root`` or ``ns`` for a namespace code (`sim.core.nscodes`)."""
    return "wire" if ns == WIRE_NS else "root" if ns == ROOT_NS else "ns"


def unicast(src_host: int, src_ns: int, dst_host: int, dst_ns: int) -> Journey:
    """The journey between two host endpoints (see the module docstring); ValueError for
    the pairs the front door refuses (wire to wire, wire to another host)."""
    s, d = kind(src_ns), kind(dst_ns)
    if "wire" in (s, d) and (s == d or src_host != dst_host):
        raise ValueError(f"no trip from {s} to {d} across hosts {src_host}->{dst_host}")
    if src_host != dst_host:
        return Journey(f"{s}_to_remote_{d}", f"{s}_to_wire", f"wire_to_{d}")
    if src_ns == dst_ns:
        return Journey(f"{s}_to_self", "ns_to_self", None)
    return Journey(f"{s}_to_{d}", f"{s}_to_{d}", None)


@functools.lru_cache(maxsize=1 << 18)
def journey_codes(src_host: int, src_ns: int, dst_host: int, dst_ns: int) -> tuple[int, str, Optional[str]]:
    """`unicast` as (record code, first host trip, last host trip or None), memoised for the
    process (a pure function; a flow spread over 10,000 namespaces meets most pairs in every
    variant a process runs)."""
    u = unicast(src_host, src_ns, dst_host, dst_ns)
    return u.code, u.first, u.last


def multicast_first_trip(src_ns: int, local_members: bool) -> str:
    """The host trip a multicast packet starts with on its sender's host."""
    if src_ns == WIRE_NS:
        return "multicast"
    if local_members:
        return "root_multicast_local" if src_ns == ROOT_NS else "multicast_local"
    return f"{kind(src_ns)}_to_wire"


def uses(src: tuple, dst: Optional[tuple], group_hosts=(), two_way: bool = False,
         spread: bool = False) -> list[tuple]:
    """(host, host trip) pairs a flow's packets run: `src` and `dst` are (host, namespace
    code) with any host identifier; `dst` None means a group with members on `group_hosts`;
    `two_way` adds the responses' way back; `spread` (``HOST:ns*``) any namespace of dst's host."""
    if dst is None:
        first = multicast_first_trip(src[1], src[0] in group_hosts)
        return [(src[0], first)] + [(h, "multicast") for h in group_hosts if h != src[0]]
    ends = [(src, dst)] + ([(dst, src)] if two_way else [])
    if spread and src[0] == dst[0] and kind(src[1]) == "ns":
        ends.append((src, src))                      # the drawn namespace may be the sender's own
    out = []
    for (sh, sn), (dh, dn) in ends:
        j = unicast(sh, sn, dh, dn)
        out.append((sh, j.first))
        if j.last is not None:
            out.append((dh, j.last))
    return out


def missing_trip(pairs: list[tuple[str, str]], schemes: Mapping) -> Optional[tuple[str, str]]:
    """(message, fix) for the first (host name, host trip) of `pairs` whose host's scheme
    does not define that trip, or None if every one is there.  `schemes`: host name ->
    `sim.core.schemes.Scheme`, or a list of them (a mixed host: each scheme it runs must
    define the trip)."""
    for host, trip in pairs:
        for scheme in (schemes[host] if isinstance(schemes[host], list) else [schemes[host]]):
            if trip not in scheme.trips:
                return (f"host {host!r} uses scheme {scheme.name!r}, which does not define trip {trip!r} that "
                        f"this flow needs", f"use a scheme that has it (`netns-sim schemes` lists each scheme's "
                        f"trips; a built-in scheme lacks one where the kernel has no such path) or, in a scheme "
                        f"of your own, add trips.{trip} (format: sim/data/schemes.yaml)")
    return None
