"""Topology generators: ``topology: {generator: NAME, ...}`` -> hosts, switches and links.

Each generator builds a networkx graph and turns it into the scenario's ``hosts``,
``switches`` and ``links`` lists.  Names are predictable:

==============  ==========================================================================
single_host     one host ``h0``; no switches, no links
star            hosts ``h0..h{n_hosts-1}`` each linked to switch ``s0``
leaf_spine      spines ``spine0..``, leaves ``leaf0..``; every leaf links to every spine;
                hosts ``h0..`` numbered leaf by leaf (leaf0 holds h0..h{hosts_per_leaf-1})
fat_tree        k-ary fat tree (k even): ``core0..`` ((k/2)^2), per pod ``agg*``/``edge*``
                (k/2 each, numbered across pods), k/2 hosts per edge switch: k^3/4 hosts
==============  ==========================================================================

``host:`` holds the fields every generated host gets (any `sim.frontdoor.scenario.HostSpec` field but
``name``); ``link:`` the rate, delay and queue of every generated link (``uplink:`` for
leaf-spine's leaf-spine links, default = ``link``).  An explicit top-level ``hosts:`` entry
with a generated host's name is merged over it (per-host overrides); other explicit hosts,
switches and links are added.  The defaults below are the only place these values live.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sim.frontdoor.numbers import LossRate, NonNegativeFloat, PositiveFloat, PositiveInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkDefaults(_Strict):
    rate_bps: PositiveFloat = 10e9          # 10 GbE
    delay_ns: NonNegativeFloat = 500.0      # ~100 m of fibre
    queue_packets: PositiveInt = 1000
    loss_rate: LossRate = 0.0                # each generated link loses packets at random (links[].loss_rate)


class _Gen(_Strict):
    host: dict = {}                          # fields for every generated host
    link: LinkDefaults = LinkDefaults()


class SingleHost(_Gen):
    generator: Literal["single_host"]


class Star(_Gen):
    generator: Literal["star"]
    n_hosts: PositiveInt = 2


class LeafSpine(_Gen):
    generator: Literal["leaf_spine"]
    spines: PositiveInt = 2
    leaves: PositiveInt = 2
    hosts_per_leaf: PositiveInt = 2
    uplink: Optional[LinkDefaults] = None    # leaf <-> spine; default: link


class FatTree(_Gen):
    generator: Literal["fat_tree"]
    k: PositiveInt = 4

    @field_validator("k")
    @classmethod
    def _even(cls, k: int) -> int:
        if k % 2:
            raise ValueError("k must be even (k-ary fat tree)")
        return k


TopologySpec = Annotated[Union[SingleHost, Star, LeafSpine, FatTree], Field(discriminator="generator")]
GENERATOR_MODELS: dict[str, type[_Gen]] = {"single_host": SingleHost, "star": Star, "leaf_spine": LeafSpine,
                                           "fat_tree": FatTree}
GENERATORS = tuple(GENERATOR_MODELS)


def sizes(spec) -> tuple[int, int, int]:
    """(hosts, switches, links) that `graph` would make, computed without building it."""
    if isinstance(spec, Star):
        return spec.n_hosts, 1, spec.n_hosts
    if isinstance(spec, LeafSpine):
        hosts = spec.leaves * spec.hosts_per_leaf
        return hosts, spec.spines + spec.leaves, spec.leaves * spec.spines + hosts
    if isinstance(spec, FatTree):
        k = spec.k
        return k ** 3 // 4, 5 * k * k // 4, 3 * k ** 3 // 4
    return 1, 0, 0


def graph(spec) -> nx.Graph:
    """The generated graph: nodes have ``kind`` host|switch, edges ``link`` (LinkDefaults)."""
    g = nx.Graph()

    def host(name):
        g.add_node(name, kind="host")

    def switch(name):
        g.add_node(name, kind="switch")

    if isinstance(spec, SingleHost):
        host("h0")
    elif isinstance(spec, Star):
        star = nx.star_graph(spec.n_hosts)              # node 0 is the centre
        switch("s0")
        for n in range(1, spec.n_hosts + 1):
            host(f"h{n - 1}")
        for a, b in star.edges:
            g.add_edge("s0" if a == 0 else f"h{a - 1}", f"h{b - 1}", link=spec.link)
    elif isinstance(spec, LeafSpine):
        bip = nx.complete_bipartite_graph(spec.spines, spec.leaves)
        for i in range(spec.spines):
            switch(f"spine{i}")
        for j in range(spec.leaves):
            switch(f"leaf{j}")
        for j in range(spec.leaves):   # leaf-major edge order, so link order is predictable
            for i in range(spec.spines):
                assert bip.has_edge(i, spec.spines + j)
                g.add_edge(f"leaf{j}", f"spine{i}", link=spec.uplink or spec.link)
        h = 0
        for j in range(spec.leaves):
            for _ in range(spec.hosts_per_leaf):
                host(f"h{h}")
                g.add_edge(f"h{h}", f"leaf{j}", link=spec.link)
                h += 1
    elif isinstance(spec, FatTree):
        k, half = spec.k, spec.k // 2
        for c in range(half * half):
            switch(f"core{c}")
        h = 0
        for pod in range(k):
            for a in range(half):
                agg = f"agg{pod * half + a}"
                switch(agg)
                for c in range(half):
                    g.add_edge(agg, f"core{a * half + c}", link=spec.link)
            for e in range(half):
                edge = f"edge{pod * half + e}"
                switch(edge)
                for a in range(half):
                    g.add_edge(edge, f"agg{pod * half + a}", link=spec.link)
                for _ in range(half):
                    host(f"h{h}")
                    g.add_edge(f"h{h}", edge, link=spec.link)
                    h += 1
    else:  # pragma: no cover - the discriminated union makes this unreachable
        raise TypeError(f"unknown generator {spec!r}")
    return g


def expand(spec, explicit_hosts: list, explicit_switches: list, explicit_links: list) -> dict:
    """``{'hosts': [...], 'switches': [...], 'links': [...]}`` as plain dicts (see module doc)."""
    g = graph(spec)
    by_name = {h.get("name"): h for h in explicit_hosts if isinstance(h, dict)}
    hosts = []
    for n, kind in g.nodes(data="kind"):
        if kind == "host":
            hosts.append({"name": n, **spec.host, **by_name.pop(n, {})})
    hosts += [h for h in explicit_hosts if not (isinstance(h, dict) and h.get("name") in
                                                {x["name"] for x in hosts})]
    switches = [{"name": n} for n, kind in g.nodes(data="kind") if kind == "switch"] + list(explicit_switches)
    links = [{"a": a, "b": b, **d["link"].model_dump()} for a, b, d in g.edges(data=True)] + list(explicit_links)
    return {"hosts": hosts, "switches": switches, "links": links}
