"""Scenario front door, in process: extends, --set, compare, topology generators, error locations."""

import textwrap

import pytest

from sim.frontdoor import keypath, topogen
from sim.frontdoor.loader import ScenarioError, load

BASE = """\
description: base scenario
hosts:
  - name: h0
    cores: 2
    namespaces: 4
flows:
  - {name: f0, src: "h0:wire", dst: "h0:ns1", rate_pps: 1000}
run:
  duration_ns: 1.0e6
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_extends_deep_merges_and_name_is_the_files_own(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", """\
        extends: base.yaml
        run: {warmup_ns: 1000}
        """)
    loaded = load(child)
    sc = loaded.variants[0].scenario
    assert sc.run.duration_ns == 1e6 and sc.run.warmup_ns == 1000     # merged, not replaced
    assert sc.hosts[0].cores == 2 and sc.description == "base scenario"
    assert sc.name == "child"


def test_set_applies_after_extends_and_reaches_resolved_yaml(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\n")
    loaded = load(child, sets=["hosts.0.cores=3", "flows.*.rate_pps=2e3"], seed=7)
    sc = loaded.variants[0].scenario
    assert sc.hosts[0].cores == 3 and sc.flows[0].rate_pps == 2000 and sc.run.seed == 7
    text = loaded.resolved_yaml()
    assert "cores: 3" in text and "seed: 7" in text
    assert "sockets_per_namespace: 1" in text          # defaults filled in


def test_compare_grid_product_in_file_order(tmp_path):
    p = write(tmp_path, "c.yaml", BASE + textwrap.dedent("""\
        compare:
          hosts.*.scheme: [host, l2-routed, vnic]
          flows.0.rate_pps: [10, 20]
        """))
    loaded = load(p)
    assert [v.id for v in loaded.variants] == ["v0", "v1", "v2", "v3", "v4", "v5"]
    got = [(v.scenario.hosts[0].scheme, v.scenario.flows[0].rate_pps) for v in loaded.variants]
    assert got == [("host", 10), ("host", 20), ("l2-routed", 10), ("l2-routed", 20), ("vnic", 10), ("vnic", 20)]
    assert "compare:" in loaded.resolved_yaml()


@pytest.mark.parametrize("spec, hosts, switches, links", [
    ({"generator": "single_host"}, 1, 0, 0),
    ({"generator": "star", "n_hosts": 3}, 3, 1, 3),
    ({"generator": "leaf_spine", "spines": 2, "leaves": 3, "hosts_per_leaf": 2}, 6, 5, 6 + 6),
    ({"generator": "fat_tree", "k": 4}, 16, 20, 48),
])
def test_topology_generators_sizes_and_names(spec, hosts, switches, links):
    from pydantic import TypeAdapter
    out = topogen.expand(TypeAdapter(topogen.TopologySpec).validate_python(spec), [], [], [])
    assert len(out["hosts"]) == hosts and len(out["switches"]) == switches and len(out["links"]) == links
    assert [h["name"] for h in out["hosts"]] == [f"h{i}" for i in range(hosts)]


def test_topology_host_template_and_per_host_override(tmp_path):
    p = write(tmp_path, "t.yaml", """\
        topology: {generator: star, n_hosts: 3, host: {cores: 2, namespaces: 3, scheme: l2-bridged}}
        hosts:
          - {name: h2, scheme: vnic}
        flows:
          - {src: "h0:ns0", dst: "h2:ns2", rate_pps: 100}
        run: {duration_ns: 1e6}
        """)
    sc = load(p).variants[0].scenario
    assert [(h.name, h.scheme, h.cores) for h in sc.hosts] == [("h0", "l2-bridged", 2), ("h1", "l2-bridged", 2),
                                                               ("h2", "vnic", 2)]


def test_errors_from_compare_point_at_the_compare_line(tmp_path):
    p = write(tmp_path, "c.yaml", BASE + "compare:\n  flows.*.rate_pps: [10, -1]\n")
    with pytest.raises(ScenarioError) as e:
        load(p)
    msg = str(e.value)
    assert f"{p}:11: flows[0].rate_pps" in msg and "v1" in msg


def test_errors_in_a_base_file_name_the_base_file(tmp_path):
    write(tmp_path, "base.yaml", BASE.replace("cores: 2", "cores: zero"))
    child = write(tmp_path, "child.yaml", "extends: base.yaml\n")
    with pytest.raises(ScenarioError) as e:
        load(child)
    assert "base.yaml:4: hosts[0].cores" in str(e.value)


def test_sweep_block_is_a_front_door_key_kept_with_its_lines(tmp_path):
    p = write(tmp_path, "s.yaml", BASE + textwrap.dedent("""\
        sweep:
          replications: 3
          grid:
            hosts.*.scheme: [host, vnic]
        """))
    loaded = load(p)                                   # not rejected as an unknown key
    assert loaded.sweep == {"replications": 3, "grid": {"hosts.*.scheme": ["host", "vnic"]}}
    assert str(loaded.sweep_where) == f"{p}:10" and str(loaded.positions.lookup(("sweep", "replications"))) == f"{p}:11"
    assert len(loaded.variants) == 1 and "sweep" not in loaded.document       # not applied by load
    assert "sweep:" in loaded.resolved_yaml()
    assert load(p, sets=["sweep.replications=1", "sweep.grid.hosts.*.scheme=[vnic]"]).sweep == {
        "replications": 1, "grid": {"hosts.*.scheme": ["vnic"]}}
    assert load(write(tmp_path, "plain.yaml", BASE)).sweep is None


def test_keypath_star_and_errors():
    doc = {"hosts": [{"a": 1}, {"a": 2}]}
    assert keypath.assign(doc, keypath.parse("hosts.*.a"), 5) == [("hosts", 0, "a"), ("hosts", 1, "a")]
    assert doc == {"hosts": [{"a": 5}, {"a": 5}]}
    with pytest.raises(keypath.KeyPathError, match="2 element"):
        keypath.assign(doc, keypath.parse("hosts.4.a"), 1)
    assert keypath.fmt(("flows", 0, "size", "min_bytes")) == "flows[0].size.min_bytes"


def test_unknown_topology_key_lists_that_generators_keys(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("topology: {generator: star, hosts: 2}\nrun: {duration_ns: 1.0e6}\n")
    with pytest.raises(ScenarioError) as e:
        load(p)
    assert f"{p}:1: topology.hosts: Extra inputs are not permitted" in str(e.value)
    assert "allowed keys here: host, link, generator, n_hosts" in str(e.value)
