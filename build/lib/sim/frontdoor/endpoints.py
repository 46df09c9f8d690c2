"""Flow and group endpoints: the one parser of ``HOST:nsN``, ``HOST:root``, ``HOST:ns*``,
``HOST:wire`` and ``group:NAME``.

`parse(text, where)` checks the syntax only and returns an `Endpoint` (`host_of` its host);
`resolve(text, hosts, where)` also checks the host exists and the namespace index is in
range, and returns ``(host, ns)`` with ``ns`` a container index, `ROOT_NS` (the host's root
namespace) or `WIRE_NS` (its wire), the codes of `sim.core.nscodes`.  Errors are
`ValueError` messages that start with `where` (a key path such as ``flows[2].dst``), for the
front door to place on a line.  ``HOST:N`` is accepted as ``HOST:nsN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from sim.core.nscodes import ROOT_NS, WIRE_NS

_ENDPOINT = re.compile(r"^(?:group:(?P<group>.+)"
                       r"|(?P<host>[^:]+):(?:(?:ns)?(?P<ns>\d+)|(?P<spread>ns\*)|(?P<wire>wire)|(?P<root>root)))$")
SYNTAX = "write HOST:nsN, HOST:root, HOST:ns*, HOST:wire or group:NAME"


@dataclass(frozen=True)
class Endpoint:
    """One parsed endpoint: a group, or a host with a namespace index, its root namespace,
    all its namespaces (``ns*``: each packet to one drawn uniformly) or its wire."""

    text: str
    host: Optional[str] = None
    ns: Optional[int] = None
    spread: bool = False
    group: Optional[str] = None
    root: bool = False

    @property
    def wire(self) -> bool:
        return self.host is not None and self.ns is None and not self.spread and not self.root

    @property
    def code(self) -> int:
        """The namespace code of a single host endpoint (`sim.core.nscodes`)."""
        if self.root:
            return ROOT_NS
        return WIRE_NS if self.ns is None else self.ns


def parse(text: str, where: str = "endpoint") -> Endpoint:
    """The endpoint `text` (syntax only); ValueError ``WHERE: 'text' is not an endpoint; ...``."""
    m = _ENDPOINT.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{where}: {text!r} is not an endpoint; {SYNTAX}")
    if m.group("group") is not None:
        return Endpoint(text, group=m.group("group"))
    ns = m.group("ns")
    return Endpoint(text, host=m.group("host"), ns=None if ns is None else int(ns), spread=bool(m.group("spread")),
                    root=bool(m.group("root")))


def host_of(text: str, where: str = "endpoint") -> str:
    """The host of a host endpoint (``HOST:...``); ValueError for a group or bad syntax."""
    ep = parse(text, where)
    if ep.host is None:
        raise ValueError(f"{where}: {text!r} names a group, not a host endpoint")
    return ep.host


def resolve(text: str, hosts: dict, where: str) -> tuple[str, int]:
    """``'h1:ns3'`` -> ``('h1', 3)``, ``'h1:root'`` -> ``('h1', ROOT_NS)``, ``'h1:wire'`` ->
    ``('h1', WIRE_NS)``, for an existing host (`hosts`: name -> spec with ``namespaces``) and
    namespace; groups and ``ns*`` are refused."""
    ep = parse(text, where)
    if ep.host is None or ep.spread:
        raise ValueError(f"{where}: {text!r} is not a single endpoint; write HOST:nsN, HOST:root or HOST:wire")
    if ep.host not in hosts:
        raise ValueError(f"{where}: unknown host {ep.host!r}; hosts are {sorted(hosts)}")
    if ep.ns is not None and ep.ns >= hosts[ep.host].namespaces:
        raise ValueError(f"{where}: {text!r} but host {ep.host!r} has {hosts[ep.host].namespaces} namespace(s), "
                         f"numbered from 0")
    return ep.host, ep.code
