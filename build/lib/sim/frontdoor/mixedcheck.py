"""Front-door checks of mixed hosts (``hosts[].namespace_schemes``, docs/mixed-hosts.md).

Each check returns (key path, message, fix) triples, which the loader turns into issues with
the file position of the path:

- `scheme_problems`: a group's scheme that is neither built in nor defined under ``schemes:``,
  and more scheme labels (schemes and ``A>B`` pairs) than a record's scheme code holds;
- `flow_problems`: a flow between containers of two schemes on one host whose schemes cannot
  meet in the root namespace (one has no ``via_root``, `sim.core.mixing`), and a multicast
  group whose members on one host (and its sender there) do not share one scheme — not
  modelled yet.
"""

from __future__ import annotations

from sim.core.hostschemes import cross_pairs, labels, scheme_at
from sim.core.mixing import missing_via_root
from sim.core.schemes import SchemeRegistry
from sim.frontdoor import endpoints
from sim.frontdoor.scenario import Scenario

Problem = tuple[tuple, str, str]
MAX_SCHEME_LABELS = 127             # a record's scheme code is one signed byte (sim.core.records)


def scheme_problems(sc: Scenario, reg: SchemeRegistry) -> list[Problem]:
    """Unknown scheme names in ``hosts[].namespace_schemes``; too many scheme labels."""
    out: list[Problem] = []
    for i, h in enumerate(sc.hosts):
        for k, g in enumerate(h.namespace_schemes or ()):
            if g.scheme not in reg:
                try:
                    reg.get(g.scheme)
                except KeyError as e:
                    out.append((("hosts", i, "namespace_schemes", k, "scheme"), e.args[0],
                                "`netns-sim schemes` lists the built-in schemes; define new ones under schemes:"))
    seen = set(reg.names())
    for i, h in enumerate(sc.hosts):
        seen.update(labels(h.scheme_groups()))
        if len(seen) > MAX_SCHEME_LABELS:
            out.append((("hosts", i, "namespace_schemes"), f"{len(seen)} scheme labels (schemes and A>B pairs of "
                        f"mixed hosts) by this host, above the {MAX_SCHEME_LABELS} a record can name",
                        "put fewer schemes on one host (n schemes make n*(n-1) pairs)"))
            break
    return out


def flow_problems(sc: Scenario, reg: SchemeRegistry) -> list[Problem]:
    """Cross-scheme flows that cannot be composed, multicast across schemes on one host."""
    hosts = {h.name: h for h in sc.hosts}
    out: list[Problem] = []
    for i, f in enumerate(sc.flows):
        src_host, src_ns = endpoints.resolve(f.src, hosts, "")
        dst_ep = endpoints.parse(f.dst)
        if dst_ep.group is not None:
            continue
        dst_host, dst_ns = endpoints.resolve(f"{dst_ep.host}:ns0" if dst_ep.spread else f.dst, hosts, "")
        if src_host != dst_host:
            continue
        pairs = cross_pairs(src_ns, dst_ns, hosts[src_host].scheme_groups(), dst_ep.spread, f.two_way)
        problem = next(filter(None, (missing_via_root(a, b, reg) for a, b in pairs)), None)
        if problem:
            out.append((("flows", i), *problem))
    for gi, g in enumerate(sc.groups):
        on_host: dict[str, set[str]] = {}
        for m in g.members:
            host, ns = endpoints.resolve(m, hosts, "")
            if ns >= 0:
                on_host.setdefault(host, set()).add(scheme_at(hosts[host].scheme_groups(), ns))
        for f in sc.flows:                           # a sender in a container on a member host
            if endpoints.parse(f.dst).group == g.name:
                host, ns = endpoints.resolve(f.src, hosts, "")
                if ns >= 0 and host in on_host:
                    on_host[host].add(scheme_at(hosts[host].scheme_groups(), ns))
        for host, names in sorted(on_host.items()):
            if len(names) > 1:
                out.append((("groups", gi), f"not modelled yet: multicast group {g.name!r} has members (or a "
                            f"sender) on host {host!r} in schemes {', '.join(sorted(names))}",
                            "put the group's members on that host, and its senders there, in one scheme"))
    return out
