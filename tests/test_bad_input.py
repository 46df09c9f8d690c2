"""Bad input cannot hurt (issue 14): a table of hostile or careless inputs.

Every row runs ``netns-sim run`` in process (subprocess with a timeout for the few that once
hung) and asserts: exit 2, every stderr line is ``FILE:LINE: key.path: message`` (or starts
``--set ...`` / ``--out ...``), the expected key path or message fragment is there, no
traceback, and the output directory was not created.

Row kinds: ``doc`` edits the base scenario (key path -> value, written as YAML; DELETE
removes the key), ``set`` passes ``--set`` options, ``yaml`` is a whole file (``{base}`` is
replaced by the base scenario's text), ``bytes`` raw file content, ``files`` a dict of
files (symlinks as ``-> target``) of which ``main.yaml`` is run, ``out`` an ``--out`` path
relative to the test directory (``afile`` is a regular file there).
"""

from __future__ import annotations

import copy
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.frontdoor import keypath
from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
BASE_TEXT = """\
hosts:
  - name: h0
    cores: 2
    namespaces: 4
    sockets_per_namespace: 2
  - name: h1
    namespaces: 2
switches:
  - name: s0
links:
  - {a: h0, b: s0, rate_bps: 1.0e10}
  - {a: h1, b: s0, rate_bps: 1.0e10}
groups:
  - {name: g0, members: ["h1:ns0", "h1:ns1"]}
flows:
  - {name: f0, src: "h0:wire", dst: "h0:ns1", rate_pps: 1000}
  - {name: f1, kind: rr, src: "h0:ns0", dst: "h1:ns1", concurrency: 2}
run:
  duration_ns: 1.0e6
  seed: 1
"""
BASE = yaml.safe_load(BASE_TEXT)
DELETE = object()
LINE = re.compile(r"^(\S+?(:\d+)?|--set \S.*?|--out \S.*?): \S")

SCHEME = {"description": "d", "socket_tables": "single", "addresses_per_container": 1, "devices_per_container": 1,
          "capabilities": dict.fromkeys(["own_routes", "own_netfilter", "own_devices", "dhcp_raw_nonip",
                                         "tunnels_vpn", "migration_with_ip"], True),
          "trips": {t: [{"ns": "root", "queue": "process" if t.startswith("ns_to") else "nic_rx",
                         "stages": ["nic_rx"]}] for t in ("wire_to_ns", "ns_to_wire", "ns_to_ns", "multicast")}}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))

# -- numeric fields x bad values (generated rows) ------------------------------------------
INT_FIELDS = ["hosts.0.cores", "hosts.0.namespaces", "hosts.0.sockets_per_namespace", "run.seed",
              "flows.1.concurrency", "flows.0.port", "links.0.queue_packets", "run.replication"]
FLOAT_FIELDS = ["run.duration_ns", "flows.0.rate_pps", "links.0.rate_bps", "links.0.delay_ns",
                "flows.0.start_ns", "run.warmup_ns", "flows.1.think_ns", "flows.1.timeout_ns"]
BAD_INT = {"bool": (True, "boolean"), "str": ("four", "string"), "frac": (1.5, "fractional"),
           "huge": (10**30, "9223372036854775807"), "neg": (-3, "")}
BAD_FLOAT = {"bool": (False, "boolean"), "str": ("fast", "string"), "inf": (float("inf"), "finite"),
             "nan": (float("nan"), "finite"), "neg": (-1.0, "")}
GENERATED = [(f"{f}-{k}", "doc", {f: v}, keypath.fmt(keypath.parse(f)) + (f": " if not msg else ""), msg)
             for fields, bad in ((INT_FIELDS, BAD_INT), (FLOAT_FIELDS, BAD_FLOAT))
             for f in fields for k, (v, msg) in bad.items()]

# -- hand-written rows: (id, kind, payload, key path fragment, message fragment) -----------
TABLE = [
    # encoding and binary content
    ("nul-byte", "bytes", b"hosts: []\n\0\0\0", "", "binary file"),
    ("elf-header", "bytes", b"\x7fELF\x02\x01\x01\0\0\0\0", "", "binary file"),
    ("latin1", "bytes", BASE_TEXT.encode() + "# caf\xe9\n".encode("latin-1"), "", "not UTF-8"),
    ("utf16", "bytes", BASE_TEXT.encode("utf-16"), "", ""),
    ("control-char", "bytes", b"hosts:\n  - name: h\x07\n", "", "malformed YAML"),
    ("empty-file", "yaml", "", "hosts", "Field required"),
    ("only-comment", "yaml", "# nothing\n", "run", "Field required"),
    ("top-list", "yaml", "- a\n- b\n", "", "must be a mapping"),
    ("top-scalar", "yaml", "42\n", "", "must be a mapping"),
    ("top-string", "yaml", "hello world\n", "", "must be a mapping"),
    # YAML syntax and structure
    ("unclosed-bracket", "yaml", "hosts: [\n", "", "malformed YAML"),
    ("bad-indent", "yaml", "hosts:\n  - name: h0\n   cores: 2\n", "", "malformed YAML"),
    ("tab-indent", "yaml", "hosts:\n\t- name: h0\n", "", "malformed YAML"),
    ("two-documents", "yaml", "{base}---\nhosts: []\n", "", "malformed YAML"),
    ("deep-flow", "yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n", "", "nested more than"),
    ("deep-block", "yaml", "x:\n" + "".join(" " * i + "k:\n" for i in range(1, 200)), "", "nested more than"),
    ("alias-bomb", "yaml", "{base}" + BOMB, "", "aliases"),
    ("recursive-alias", "yaml", "{base}x: &r [*r]\n", "", "recursive"),
    ("unknown-alias", "yaml", "{base}x: *nope\n", "", "malformed YAML"),
    ("python-tag", "yaml", "{base}x: !!python/object/apply:os.system [ls]\n", "", "malformed YAML"),
    ("custom-tag", "yaml", "{base}x: !mytag 3\n", "", "malformed YAML"),
    ("unhashable-key", "yaml", "{base}? [a, b]\n: 1\n", "", "malformed YAML"),
    ("dup-top-run", "yaml", "{base}run:\n  duration_ns: 2.0e6\n", "run", "lines 18 and 21"),
    ("dup-top-hosts", "yaml", "{base}hosts: []\n", "hosts", "appears twice"),
    ("dup-nested-key", "yaml", BASE_TEXT.replace("    cores: 2\n", "    cores: 2\n    cores: 3\n"),
     "hosts[0].cores", "appears twice"),
    ("dup-flow-key", "yaml", BASE_TEXT.replace("rate_pps: 1000}", "rate_pps: 1000, rate_pps: 5}"),
     "flows[0].rate_pps", "appears twice"),
    ("dup-run-seed", "yaml", BASE_TEXT + "  seed: 2\n", "run.seed", "appears twice"),
    ("dup-compare-key", "yaml", "{base}compare:\n  run.seed: [1, 2]\n  run.seed: [3]\n", "compare", "twice"),
    # YAML 1.2 numbers
    ("yaml12-quoted-rate", "yaml", BASE_TEXT.replace("rate_pps: 1000", "rate_pps: '1.0e4'"),
     "flows[0].rate_pps", "string"),
    ("yaml12-yes-bool", "yaml", BASE_TEXT.replace("cores: 2", "cores: yes"), "hosts[0].cores", "string"),
    ("yaml12-underscore", "yaml", BASE_TEXT.replace("rate_pps: 1000", "rate_pps: 1_000"),
     "flows[0].rate_pps", "string"),
    ("yaml12-sexagesimal", "yaml", BASE_TEXT.replace("seed: 1", "seed: 1:30"), "run.seed", "string"),
    ("yaml-inf", "yaml", BASE_TEXT.replace("duration_ns: 1.0e6", "duration_ns: .inf"), "run.duration_ns", "finite"),
    ("yaml-nan", "yaml", BASE_TEXT.replace("rate_pps: 1000", "rate_pps: .nan"), "flows[0].rate_pps", "finite"),
    ("seed-1e3-frac", "set", ["run.seed=1.5e0"], "run.seed", "fractional"),
    ("cores-true", "yaml", BASE_TEXT.replace("cores: 2", "cores: true"), "hosts[0].cores", "boolean"),
    ("cores-quoted", "yaml", BASE_TEXT.replace("cores: 2", "cores: '2'"), "hosts[0].cores", "string"),
    ("seed-30-digits", "doc", {"run.seed": 123456789012345678901234567890}, "run.seed", "9223372036854775807"),
    # --set
    ("set-no-equals", "set", ["run.seed"], "", "key.path=value"),
    ("set-bad-yaml", "set", ["run.seed=[1,"], "", "not valid YAML"),
    ("set-unknown-key", "set", ["run.durration_ns=5"], "run.durration_ns", "duration_ns"),
    ("set-index-out", "set", ["hosts.9.cores=2"], "hosts", "no [9]"),
    ("set-empty-path", "set", ["=3"], "", "not a key path"),
    ("set-double-dot", "set", ["run..seed=3"], "", "not a key path"),
    ("set-into-scalar", "set", ["run.seed.x=3"], "run.seed", "is a value"),
    ("set-bool-cores", "set", ["hosts.*.cores=true"], "hosts[0].cores", "boolean"),
    ("set-inf", "set", ["run.duration_ns=.inf"], "run.duration_ns", "finite"),
    ("set-alias-bomb", "set", ["x=" + BOMB.replace("\n", ", ").join("{}")], "", "not valid YAML"),
    ("set-deep", "set", ["x=" + "[" * 500 + "]" * 500], "", "nested more than"),
    ("set-limits-negative", "set", ["limits.max_events=-1"], "limits.max_events", "greater than 0"),
    ("set-limits-unknown", "set", ["limits.max_speed=3"], "limits.max_speed", "Extra inputs"),
    ("set-limits-string", "set", ["limits.max_variants=lots"], "limits.max_variants", "string"),
    ("set-huge-duration", "set", ["run.duration_ns=1e18"], "run.duration_ns", "limits.max_events"),
    # sizes and limits
    ("duration-1e18", "doc", {"run.duration_ns": 1e18}, "run.duration_ns", "limits.max_events"),
    ("rate-1e18", "doc", {"flows.0.rate_pps": 1e18}, "run.duration_ns", "limits.max_events"),
    ("rr-concurrency-1e9", "doc", {"flows.1.concurrency": 10**9}, "", "limits.max_"),
    ("namespaces-1e9", "doc", {"hosts.0.namespaces": 10**9}, "", "limits.max_memory_bytes"),
    ("sockets-1e9", "doc", {"hosts.0.sockets_per_namespace": 10**9}, "", "limits.max_memory_bytes"),
    ("cores-1e12", "doc", {"hosts.0.cores": 10**12}, "", "limits.max_memory_bytes"),
    ("buckets-2e40", "doc", {"hosts.0.socket_hash_buckets": 2**40}, "hosts[0].socket_hash_buckets", "2**31"),
    ("buckets-not-pow2", "doc", {"hosts.0.socket_hash_buckets": 100}, "hosts[0].socket_hash_buckets",
     "round 100 up to 128"),
    ("ehash-not-pow2", "doc", {"hosts.0.tcp_ehash_buckets": 3}, "hosts[0].tcp_ehash_buckets", "power of two"),
    ("tables-no-era", "doc", {"hosts.0.socket_tables": "per_namespace"}, "hosts[0].socket_tables", "socket_era"),
    ("scheme-era-mismatch", "doc", {"schemes": {"x": {**SCHEME, "socket_era": "mainline"}}, "hosts.0.scheme": "x"},
     "schemes.x", "socket_era mainline means socket_tables: shared_permuted"),
    ("multicast-huge", "doc", {"flows.0": {"src": "h0:ns0", "dst": "group:g0", "rate_pps": 1e12}},
     "", "limits.max_events"),
    ("limit-lowered", "doc", {"limits": {"max_events": 10}}, "run.duration_ns", "limits.max_events"),
    ("star-million", "doc", {"topology": {"generator": "star", "n_hosts": 10**6}}, "topology", "limits.max_hosts"),
    ("leafspine-million", "doc", {"topology": {"generator": "leaf_spine", "spines": 1000, "leaves": 1000}},
     "topology", "limits.max_links"),
    ("fattree-k200", "doc", {"topology": {"generator": "fat_tree", "k": 200}}, "topology", "limits.max_hosts"),
    ("fattree-odd", "doc", {"topology": {"generator": "fat_tree", "k": 3}}, "topology.k", "even"),
    ("topology-unknown-gen", "doc", {"topology": {"generator": "ring"}}, "topology", "generator"),
    ("topology-not-mapping", "doc", {"topology": [1, 2]}, "topology", ""),
    ("compare-million", "doc", {"compare": {"run.seed": list(range(1000)), "flows.0.rate_pps": list(range(1, 1001))}},
     "compare", "limits.max_variants"),
    ("compare-not-mapping", "doc", {"compare": [1, 2]}, "compare", "mapping"),
    ("compare-empty-list", "doc", {"compare": {"run.seed": []}}, "compare", "non-empty list"),
    ("compare-scalar", "doc", {"compare": {"flows.0.rate_pps": 5.0e4}}, "compare", "non-empty list"),
    ("compare-bad-path", "doc", {"compare": {"hosts..cores": [1]}}, "compare", "not a key path"),
    ("compare-bad-value", "doc", {"compare": {"hosts.*.cores": [1, True]}}, "hosts[0].cores", "boolean"),
    ("sweep-runs-million", "sweep", {"sweep": {"replications": 10**6, "grid": {"run.seed": [1, 2]}}},
     "sweep", "limits.max_sweep_runs"),
    ("sweep-not-mapping", "sweep", {"sweep": [1]}, "sweep", "must be a mapping"),
    ("sweep-bad-replications", "sweep", {"sweep": {"replications": True, "grid": {"run.seed": [1]}}},
     "sweep", "whole number"),
    ("sweep-refused-by-run", "doc", {"sweep": {"grid": {"run.seed": [1, 2]}}}, "sweep", "netns-sim sweep"),
    # extends
    ("extends-missing", "doc", {"extends": "nope.yaml"}, "extends", "not found"),
    ("extends-list", "doc", {"extends": ["a.yaml"]}, "extends", "one file path"),
    ("extends-self", "files", {"main.yaml": "extends: main.yaml\n"}, "extends", "cycle"),
    ("extends-cycle", "files", {"main.yaml": "extends: a.yaml\n", "a.yaml": "extends: main.yaml\n"}, "extends", "cycle"),
    ("extends-symlink-cycle", "files", {"main.yaml": "extends: link.yaml\n", "link.yaml": "-> main.yaml"},
     "extends", "cycle"),
    ("extends-symlink-loop", "files", {"main.yaml": "extends: loop.yaml\n", "loop.yaml": "-> loop.yaml"},
     "extends", "resolve"),
    ("extends-deep-chain", "files", {"main.yaml": "extends: c1.yaml\n", **{f"c{i}.yaml": f"extends: c{i + 1}.yaml\n"
                                                                         for i in range(1, 40)},
                                     "c40.yaml": BASE_TEXT}, "extends", "chain longer"),
    ("extends-binary-base", "files", {"main.yaml": "extends: b.yaml\n", "b.yaml": "\0\0"}, "", "binary"),
    ("extends-directory", "files", {"main.yaml": "extends: sub\n", "sub/x.yaml": BASE_TEXT}, "extends", "not found"),
    ("extends-dup-in-base", "files", {"main.yaml": "extends: b.yaml\n", "b.yaml": BASE_TEXT + "run: {}\n"},
     "run", "appears twice"),
    # schema: types, missing keys, references, duplicates
    ("no-hosts", "doc", {"hosts": DELETE}, "hosts", "Field required"),
    ("no-run", "doc", {"run": DELETE}, "run", "Field required"),
    ("hosts-empty", "doc", {"hosts": []}, "hosts", "at least 1"),
    ("hosts-mapping", "doc", {"hosts": {"h0": {}}}, "hosts", "list"),
    ("host-no-name", "doc", {"hosts.1.name": DELETE}, "hosts[1].name", "Field required"),
    ("host-unknown-key", "doc", {"hosts.0.corez": 2}, "hosts[0].corez", "did you mean"),
    ("host-dup-name", "doc", {"hosts.1.name": "h0"}, "hosts[1].name", "already used"),
    ("switch-host-same-name", "doc", {"switches.0.name": "h1"}, "switches[0].name", "already used"),
    ("flow-dup-name", "doc", {"flows.1.name": "f0"}, "flows[1].name", "already used"),
    ("flow-dup-item", "doc", {"flows": [BASE["flows"][0], BASE["flows"][0]]}, "flows[1].name", "already used"),
    ("group-dup-name", "doc", {"groups": [BASE["groups"][0], BASE["groups"][0]]}, "groups[1].name", "already used"),
    ("group-empty", "doc", {"groups.0.members": []}, "groups[0].members", "at least 1"),
    ("group-wire-member", "doc", {"groups.0.members": ["h1:wire"]}, "groups", "not the wire"),
    ("flow-unknown-host", "doc", {"flows.0.dst": "h9:ns0"}, "flows[0].dst", "unknown host"),
    ("flow-ns-out-of-range", "doc", {"flows.0.dst": "h0:ns7"}, "flows[0].dst", "numbered from 0"),
    ("flow-bad-endpoint", "doc", {"flows.0.src": "h0"}, "flows[0].src", "not an endpoint"),
    ("flow-wire-to-wire", "doc", {"flows.0.dst": "h0:wire"}, "flows[0]", "both be the wire"),
    ("flow-root-unknown-host", "doc", {"flows.0.dst": "h9:root"}, "flows[0].dst", "unknown host"),
    ("flow-root-misspelt", "doc", {"flows.0.dst": "h0:roots"}, "flows[0].dst", "HOST:root"),
    ("flow-wire-to-other-root", "doc", {"flows.0.dst": "h1:root"}, "flows[0]", "can only reach namespaces of h0"),
    ("flow-root-to-other-wire", "doc", {"flows.0": {"src": "h1:root", "dst": "h0:wire", "rate_pps": 10}},
     "flows[0]", "reached only from namespaces of h0"),
    ("flow-rr-root-to-wire", "doc", {"flows.1.src": "h0:root", "flows.1.dst": "h0:wire"}, "flows[1]",
     "between two namespaces"),
    ("scheme-lacks-root-trip", "doc", {"schemes": {"x": SCHEME}, "hosts.0.scheme": "x",
                                       "flows.0": {"src": "h0:root", "dst": "h0:ns1", "rate_pps": 10}},
     "flows[0]", "does not define trip 'root_to_ns'"),
    ("scheme-lacks-self-trip", "doc", {"schemes": {"x": SCHEME}, "hosts.0.scheme": "x",
                                       "flows.0": {"src": "h0:ns1", "dst": "h0:ns1", "rate_pps": 10}},
     "flows[0]", "does not define trip 'ns_to_self'"),
    ("scheme-lacks-mc-local-trip", "doc", {"schemes": {"x": SCHEME}, "hosts.1.scheme": "x",
                                           "flows.0": {"src": "h1:ns1", "dst": "group:g1", "rate_pps": 10},
                                           "groups": [*BASE["groups"], {"name": "g1", "members": ["h1:ns0"]}]},
     "flows[0]", "does not define trip 'multicast_local'"),
    ("scheme-lacks-root-mc-local-trip", "doc", {"schemes": {"x": SCHEME}, "hosts.1.scheme": "x",
                                                "flows.0": {"src": "h1:root", "dst": "group:g0", "rate_pps": 10}},
     "flows[0]", "does not define trip 'root_multicast_local'"),
    ("scheme-wire-copy-elsewhere", "doc", {"schemes": {"x": {**SCHEME, "trips": {**SCHEME["trips"], "ns_to_ns": [
        {"ns": "root", "queue": "process", "stages": ["dev_xmit"], "wire_copy": ["nic_tx"]}]}}}},
     "schemes.x", "only the multicast_local trips may have a wire_copy pass"),
    ("scheme-root-copy-elsewhere", "doc", {"schemes": {"x": {**SCHEME, "trips": {**SCHEME["trips"], "ns_to_ns": [
        {"ns": "root", "queue": "process", "stages": ["dev_xmit"], "root_copy": ["socket_enqueue"]}]}}}},
     "schemes.x", "root_copy"),
    ("scheme-loop-copy-not-first", "doc", {"schemes": {"x": {**SCHEME, "trips": {**SCHEME["trips"], "multicast_local": [
        {"ns": "src", "queue": "process", "stages": ["dev_xmit"], "wire_copy": []},
        {"ns": "root", "queue": "backlog", "stages": ["socket_enqueue*"], "loop_copy": ["dev_xmit"]}]}}}},
     "schemes.x", "loop_copy"),
    ("scheme-loop-copy-no-self-trip", "doc", {"schemes": {"x": {**SCHEME, "trips": {**SCHEME["trips"], "multicast_local": [
        {"ns": "src", "queue": "process", "stages": ["dev_xmit"], "wire_copy": [], "loop_copy": ["dev_xmit"]},
        {"ns": "root", "queue": "backlog", "stages": ["socket_enqueue*"]}]}}}},
     "schemes.x", "loop_copy needs trips.ns_to_self"),
    ("flow-unknown-group", "doc", {"flows.0": {"src": "h0:ns0", "dst": "group:gx", "rate_pps": 10}},
     "flows[0].dst", "unknown group"),
    ("flow-unknown-kind", "doc", {"flows.0.kind": "burst"}, "flows[0].kind", "literal" if False else "Input should be"),
    ("flow-no-rate", "doc", {"flows.0.rate_pps": DELETE}, "flows[0]", "needs rate_pps"),
    ("flow-zero-rate", "doc", {"flows.0.rate_pps": 0}, "flows[0].rate_pps", "greater than 0"),
    ("flow-port-too-high", "doc", {"flows.0.port": 5}, "flows[0].port", "socket(s) per namespace"),
    ("flow-stop-before-start", "doc", {"flows.0.start_ns": 10.0, "flows.0.stop_ns": 5.0}, "flows[0]", "after start_ns"),
    ("flow-onoff-no-periods", "doc", {"flows.0.kind": "onoff"}, "flows[0]", "on_ns"),
    ("flow-rr-to-group", "doc", {"flows.1.dst": "group:g0"}, "flows[1]", "cannot go to a group"),
    ("flow-server-dist-unknown", "doc", {"flows.1.server_dist": "gamma"}, "flows[1].server_dist", "exponential"),
    ("flow-think-dist-no-mean", "doc", {"flows.1.think_dist": "exponential"}, "flows[1]", "think_ns > 0"),
    ("flow-server-dist-open-loop", "doc", {"flows.0.server_dist": "exponential", "flows.0.server_ns": 1000.0},
     "flows[0]", "rr flows only"),
    ("flow-size-uniform", "doc", {"flows.0.size": {"dist": "uniform", "min_bytes": 100, "max_bytes": 10}},
     "flows[0].size", "min_bytes"),
    ("flow-size-choice-empty", "doc", {"flows.0.size": {"dist": "choice"}}, "flows[0].size", "values"),
    ("flows-not-list", "doc", {"flows": "f0"}, "flows", "list"),
    ("no-route", "doc", {"links": [BASE["links"][0]]}, "flows[1]", "no route"),
    ("link-unknown-node", "doc", {"links.0.b": "s9"}, "links[0]", "unknown node"),
    ("link-no-rate", "doc", {"links.0.rate_bps": DELETE}, "links[0].rate_bps", "Field required"),
    ("warmup-too-long", "doc", {"run.warmup_ns": 2e6}, "run", "warmup_ns must be shorter"),
    ("run-not-mapping", "doc", {"run": 5}, "run", "mapping"),
    ("unknown-top-key", "doc", {"hostz": []}, "hostz", "did you mean"),
    ("name-list", "doc", {"name": [1]}, "name", "string"),
    ("unknown-scheme", "doc", {"hosts.0.scheme": "l2-routd"}, "hosts[0].scheme", "did you mean"),
    ("scheme-zero-passes", "doc", {"schemes": {"x": {**SCHEME, "trips": {t: [] for t in SCHEME["trips"]}}}},
     "schemes.x.trips", "at least 1"),
    ("scheme-missing-trip", "doc", {"schemes": {"x": {**SCHEME, "trips": {"wire_to_ns": SCHEME["trips"]["wire_to_ns"]}}}},
     "schemes.x", "missing"),
    ("scheme-not-mapping", "doc", {"schemes": {"x": [1]}}, "schemes.x", ""),
    ("scheme-bad-stage", "doc", {"schemes": {"x": {**SCHEME, "trips": {**SCHEME["trips"], "ns_to_ns": [
        {"ns": "root", "queue": "process", "stages": ["warp"]}]}}}}, "schemes.x", "unknown stage"),
    ("cost-profile-list", "doc", {"cost_profile": [1, 2]}, "cost_profile", "string"),
    ("cost-profile-mapping", "doc", {"cost_profile": {"stages": {}}}, "cost_profile", "string"),
    ("cost-profile-int", "doc", {"cost_profile": 7}, "cost_profile", "string"),
    ("cost-profile-missing", "doc", {"cost_profile": "nope"}, "cost_profile", "not found"),
    ("cost-profile-list-file", "files", {"main.yaml": BASE_TEXT + "cost_profile: {tmp}/p.yaml\n", "p.yaml": "- 1\n"},
     "cost_profile", "not a cost profile"),
    ("cost-profile-wrong-file", "files", {"main.yaml": BASE_TEXT + "cost_profile: {tmp}/p.yaml\n", "p.yaml": BASE_TEXT},
     "cost_profile", "not a cost profile"),
    ("cost-profile-binary", "files", {"main.yaml": BASE_TEXT + "cost_profile: {tmp}/p.yaml\n", "p.yaml": "\0"},
     "cost_profile", "binary"),
    ("cost-override-unknown", "doc", {"cost_overrides": {"stages": {"warp": {"base_ns": 1}}}}, "cost_overrides", "warp"),
    ("cost-override-bool", "doc", {"cost_overrides": {"host": {"x": True}}}, "cost_overrides.host.x", "boolean"),
    ("cost-override-host-negative", "doc", {"cost_overrides": {"host": {"wakeup_local_send_ns": -1}}},
     "cost_overrides.host.wakeup_local_send_ns", ">= 0"),
    ("memory-counts-bool", "doc", {"memory_namespace_counts": [True]}, "memory_namespace_counts[0]", "boolean"),
    ("nf-rules-negative", "doc", {"hosts.0.nf_rules": {"root": {"INPUT": -1}}}, "hosts[0].nf_rules", ""),
    # netfilter options and what a scheme's capabilities allow (issue 11)
    ("nf-hooks-unknown", "doc", {"hosts.0.nf_hooks": {"root": "some"}}, "hosts[0].nf_hooks.root", "declared"),
    ("nf-backend-unknown", "doc", {"hosts.0.nf_backend": "ipchains"}, "hosts[0].nf_backend", "iptables-legacy"),
    ("br-netfilter-string", "doc", {"hosts.0.br_netfilter": "yes"}, "hosts[0].br_netfilter", "bool"),
    ("conntrack-unknown-group", "doc", {"hosts.0.conntrack": {"pod": True}}, "hosts[0].conntrack.pod", ""),
    ("nf-hooks-none-with-rules", "doc", {"hosts.0.scheme": "l2-routed", "hosts.0.nf_hooks": {"root": "none"},
                                        "hosts.0.nf_rules": {"root": {"forward": 10}}},
     "hosts[0]", "nf_hooks.root: none"),
    ("nf-hooks-none-with-conntrack", "doc", {"hosts.0.nf_hooks": {"root": "none"}, "hosts.0.conntrack": {"root": True}},
     "hosts[0]", "conntrack registers hooks"),
    ("child-rules-without-own-netfilter", "doc", {"hosts.0.scheme": "shortcut-postrouting",
                                                 "hosts.0.nf_rules": {"child": {"input": 5}}},
     "hosts[0].nf_rules.child", "no netfilter of its own"),
    ("child-conntrack-without-own-netfilter", "doc", {"hosts.0.scheme": "l3-bind", "hosts.0.conntrack": {"child": True}},
     "hosts[0].conntrack.child", "own_netfilter: false"),
    ("child-hooks-without-own-netfilter", "doc", {"hosts.0.nf_hooks": {"child": "all"}},
     "hosts[0].nf_hooks.child", "nf_rules.root"),
    ("child-rules-set-without-own-netfilter", "set", ["hosts.1.scheme=vnic", "hosts.0.nf_rules.child.forward=3"],
     "hosts[0].nf_rules.child", "scheme 'host'"),
    ("netfilter-override-unknown", "doc", {"cost_overrides": {"netfilter": {"conntrack_lookpu": {"base_ns": 1}}}},
     "cost_overrides", "unknown netfilter cost"),
    ("netfilter-override-not-mapping", "doc", {"cost_overrides": {"netfilter": {"br_netfilter": 5}}},
     "cost_overrides", ""),
    # files on the command line
    ("scenario-missing", "argv", ["run", "{tmp}/nope.yaml"], "", "not found"),
    ("scenario-directory", "argv", ["run", "{tmp}"], "", "not found"),
    ("scenario-devnull", "argv", ["run", "/dev/null"], "", "not found"),
    # --out
    ("out-under-file", "out", "afile/sub", "", "is a file"),
    ("out-deep-under-file", "out", "afile/a/b/c", "", "is a file"),
    ("out-is-file", "out", "afile", "", "not a directory"),
    ("out-proc", "out", "/proc/nonexistent/x", "", "cannot be written"),
    # declared stages (docs/stages.md): the place and the fix
    ("stage-declared-builtin-name", "doc", {"stages": {"nic_rx": {"base_ns": 1, "group": "nic"}}},
     "stages.nic_rx", "cost_overrides.stages.nic_rx"),
    ("stage-declared-negative-cost", "doc", {"stages": {"tc_policy": {"base_ns": -40, "group": "bpf"}}},
     "stages.tc_policy.base_ns", "greater than or equal to 0"),
    ("stage-declared-unknown-group", "doc", {"stages": {"tc_policy": {"base_ns": 40, "group": "ebpf"}}},
     "stages.tc_policy.group", "'bpf'"),
    ("stage-declared-no-group", "doc", {"stages": {"tc_policy": {"base_ns": 40}}}, "stages.tc_policy.group",
     "Field required"),
    ("stage-declared-bad-entries", "doc", {"stages": {"tc_policy": {"group": "bpf", "entries": "nf:input"}}},
     "stages.tc_policy.entries", "'sock_chain'"),
    ("stage-declared-bad-name", "doc", {"stages": {"tc-bpf": {"group": "bpf"}}}, "stages", "underscores"),
    ("stage-declared-set-negative", "set", ["stages.tc_policy={base_ns: 1, group: bpf, per_byte_ns: -1}"],
     "stages.tc_policy.per_byte_ns", "greater than or equal to 0"),
    ("scheme-undeclared-stage", "doc", {"schemes": {"x": {**SCHEME, "trips": {**SCHEME["trips"], "wire_to_ns": [
        {"ns": "root", "queue": "nic_rx", "stages": ["nic_rx", "tc_policy"]}]}}}, "hosts.0.scheme": "x"},
     "schemes.x.trips.wire_to_ns[0]", "stages: {tc_policy: {base_ns: 40, group: bpf}}"),
]
TABLE += GENERATED


def _write(tmp: Path, kind: str, payload) -> Path:
    main_file = tmp / "main.yaml"
    if kind in ("doc", "sweep"):
        doc = copy.deepcopy(BASE)
        for key, value in payload.items():
            path = keypath.parse(key)
            if value is DELETE:
                parent = doc
                for p in path[:-1]:
                    parent = parent[p]
                del parent[path[-1]]
            else:
                keypath.assign(doc, path, value)
        main_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    elif kind == "yaml":
        main_file.write_text(payload.replace("{base}", BASE_TEXT))
    elif kind == "bytes":
        main_file.write_bytes(payload)
    elif kind == "files":
        for name, text in payload.items():
            f = tmp / name
            f.parent.mkdir(parents=True, exist_ok=True)
            if text.startswith("-> "):
                f.symlink_to(text[3:])
            else:
                f.write_text(text.replace("{tmp}", str(tmp)))
    else:
        main_file.write_text(BASE_TEXT)
    return main_file


def _argv(tmp: Path, kind: str, payload, scenario: Path, out: Path) -> list[str]:
    if kind == "argv":
        return [a.replace("{tmp}", str(tmp)) for a in payload] + ["--out", str(out), "-q"]
    if kind == "out":
        (tmp / "afile").write_text("not a directory\n")
        return ["run", str(scenario), "-q", "--out", payload if payload.startswith("/") else str(tmp / payload)]
    if kind == "sweep":
        return ["sweep", str(scenario), "-q", "--out", str(out)]
    sets = [a for s in payload for a in ("--set", s)] if kind == "set" else []
    return ["run", str(scenario), "-q", "--out", str(out), *sets]


def assert_clean_refusal(code: int, err: str, path_fragment: str, message: str, prefix: str = "") -> None:
    assert code == 2, err
    assert err.strip(), "no message"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    for line in lines:
        assert LINE.match(line), f"not FILE:LINE/--set/--out: {line!r}"
    assert any(line.startswith(prefix) for line in lines), err
    assert path_fragment in err, err
    assert message in err, err


@pytest.mark.parametrize("case_id,kind,payload,path_fragment,message", TABLE, ids=[r[0] for r in TABLE])
def test_bad_input_is_refused_cleanly(tmp_path, capsys, case_id, kind, payload, path_fragment, message):
    scenario = _write(tmp_path, kind, payload)
    out = tmp_path / "results"
    code = main(_argv(tmp_path, kind, payload, scenario, out))
    err = capsys.readouterr().err
    prefix = {"set": "--set", "out": "--out"}.get(kind, "")
    assert_clean_refusal(code, err, path_fragment, message, prefix)
    assert not out.exists()
    if kind == "out":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "main.yaml"]


def test_table_is_large_and_ids_unique():
    assert len(TABLE) >= 150
    assert len({r[0] for r in TABLE}) == len(TABLE)


@pytest.mark.parametrize("case_id,kind,payload,message", [
    ("alias-bomb", "yaml", "{base}" + BOMB, "aliases"),
    ("duration-1e18", "doc", {"run.duration_ns": 1e18}, "limits.max_events"),
    ("compare-million", "doc", {"compare": {"run.seed": list(range(1000)), "flows.0.rate_pps": list(range(1, 1001))}},
     "limits.max_variants"),
])
def test_former_hangs_end_quickly_in_a_real_process(tmp_path, case_id, kind, payload, message):
    scenario = _write(tmp_path, kind, payload)
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(scenario), "-q", "--out", str(out)],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert_clean_refusal(proc.returncode, proc.stderr, "", message)
    assert not out.exists()


def test_read_only_output_directory_is_refused(tmp_path, capsys, monkeypatch):
    """An unwritable directory (simulated: the probe mkdir fails with EROFS, which root sees too)."""
    real_mkdir = os.mkdir
    ro = tmp_path / "ro"
    ro.mkdir()

    def mkdir(path, *a, **k):
        if Path(path).parent == ro:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)
    monkeypatch.setattr(os, "mkdir", mkdir)
    code = main(["run", str(_write(tmp_path, "plain", None)), "-q", "--out", str(ro / "res")])
    assert_clean_refusal(code, capsys.readouterr().err, "", "read-only filesystem", "--out")
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode 0555 directory")
def test_unwritable_output_directory_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code = main(["run", str(_write(tmp_path, "plain", None)), "-q", "--out", str(locked / "res")])
    assert_clean_refusal(code, capsys.readouterr().err, "", "not writable", "--out")


def test_disk_full_while_writing_leaves_nothing(tmp_path, capsys, monkeypatch):
    from sim.sweep.store import PacketWriter

    def full(self, frame):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(PacketWriter, "add", full)
    out = tmp_path / "results"
    code = main(["run", str(_write(tmp_path, "plain", None)), "-q", "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and code != 2
    assert "Traceback" not in err and err.startswith(f"--out {out}: ") and "disk is full" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.yaml"]     # no result, no .tmp-* left


def test_yaml12_numbers_and_exact_integer_floats_are_accepted(tmp_path, capsys):
    """The good side of the number rules: 1.0e7 and 5.0e4 are numbers, seed 1e3 is 1000."""
    scenario = _write(tmp_path, "yaml", BASE_TEXT + "compare:\n  flows.0.rate_pps: [5.0e4, 1e3]\n")
    code = main(["validate", str(scenario), "--set", "run.seed=1e3", "--set", "run.duration_ns=1.0e7", "--print"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert code == 0
    assert printed["run"]["seed"] == 1000 and printed["run"]["duration_ns"] == 1e7
    assert printed["compare"]["flows.0.rate_pps"] == [5e4, 1e3]


def test_limits_block_lets_a_large_run_validate(tmp_path, capsys):
    """The documented override: what the default limits refuse, a limits: block allows."""
    big = {"run.duration_ns": 1e13}
    refused = main(["validate", str(_write(tmp_path, "doc", big))])
    assert refused == 2 and "limits.max_events" in capsys.readouterr().err
    allowed = main(["validate", str(_write(tmp_path, "doc", {**big, "limits": {"max_events": 1e12,
                                                                                  "max_memory_bytes": 1e13}}))])
    assert allowed == 0, capsys.readouterr().err


def test_every_shipped_scenario_fits_the_default_limits(capsys):
    for f in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert main(["validate", "-q", str(f)]) == 0, capsys.readouterr().err
