"""The README's scenario reference and its scheme example stay true."""

import re
from pathlib import Path

import yaml

from sim.frontdoor.loader import load
from sim.frontdoor.reference import markdown

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_reference_table_is_current():
    block = README.split("<!-- reference:start -->")[1].split("<!-- reference:end -->")[0]
    assert block.strip() == markdown().strip(), "regenerate: python -m sim.frontdoor.reference, paste between the markers"


def test_scheme_example_validates_and_the_scheme_is_used(tmp_path):
    example = next(b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "schemes:" in b)
    doc = yaml.safe_load(example)
    doc["run"] = {"duration_ns": 1e5}
    doc["flows"] = [{"src": "h0:wire", "dst": "h0:ns3", "rate_pps": 1e5}]
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(doc))
    v = load(p).variants[0]
    assert v.scenario.hosts[0].scheme == "my-shortcut" and "my-shortcut" in v.registry
