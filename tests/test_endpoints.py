"""The one endpoint parser (sim/frontdoor/endpoints.py): every form, and errors that name their place."""

import pytest

from sim.core.nscodes import ROOT_NS, WIRE_NS
from sim.frontdoor.endpoints import Endpoint, host_of, parse, resolve


class H:
    def __init__(self, namespaces):
        self.namespaces = namespaces


@pytest.mark.parametrize("text, want", [
    ("h1:ns3", Endpoint("h1:ns3", host="h1", ns=3)),
    ("h1:3", Endpoint("h1:3", host="h1", ns=3)),
    ("h1:wire", Endpoint("h1:wire", host="h1")),
    ("h1:root", Endpoint("h1:root", host="h1", root=True)),
    ("leaf0-h2:ns*", Endpoint("leaf0-h2:ns*", host="leaf0-h2", spread=True)),
    ("group:job", Endpoint("group:job", group="job")),
])
def test_every_form_parses(text, want):
    ep = parse(text)
    assert ep == want
    assert ep.wire == text.endswith(":wire")


@pytest.mark.parametrize("text", ["h1", "h1:ns", "h1:nsx", ":ns1", "h1:ns-1", "h1:ns1:ns2", "group:", "h1:roots",
                                  "h1:ROOT", 5, None])
def test_bad_syntax_names_the_place_and_the_forms(text):
    with pytest.raises(ValueError, match=r"^flows\[0\]\.dst: .* is not an endpoint; write HOST:nsN, HOST:root, "
                                         r"HOST:ns\*"):
        parse(text, "flows[0].dst")


def test_resolve_checks_host_and_namespace_range():
    hosts = {"h0": H(2)}
    assert resolve("h0:ns1", hosts, "x") == ("h0", 1) and resolve("h0:wire", hosts, "x") == ("h0", WIRE_NS)
    assert resolve("h0:root", hosts, "x") == ("h0", ROOT_NS)
    assert resolve("h0:root", {"h0": H(0)}, "x") == ("h0", ROOT_NS)     # a host without containers has a root
    with pytest.raises(ValueError, match="unknown host 'h9'; hosts are"):
        resolve("h9:ns0", hosts, "x")
    with pytest.raises(ValueError, match="has 2 namespace"):
        resolve("h0:ns2", hosts, "x")
    for single in ("h0:ns*", "group:g"):
        with pytest.raises(ValueError, match="not a single endpoint"):
            resolve(single, hosts, "x")
    assert host_of("h0:ns*") == "h0"
    with pytest.raises(ValueError, match="names a group"):
        host_of("group:g")
