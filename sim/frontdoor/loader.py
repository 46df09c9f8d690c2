"""The scenario front door: YAML file -> validated `Scenario` variants, or precise errors.

Pipeline (`load`): read the file and its ``extends:`` chain (deep merge: mappings merge key
by key, anything else — lists included — is replaced by the extending file; ``extends`` is
a path relative to the file that names it; ``name`` defaults to the top file's stem and is
not inherited) -> apply ``--seed`` and ``--set key.path=value`` (value parsed as YAML) ->
take out ``sweep:`` (kept as `Loaded.sweep` for `sim.sweep.spec`, which checks its shape;
`load` itself never applies it) -> take out ``compare:`` (`sim.frontdoor.matrix`) -> for every variant:
apply the ``topology.*`` factors, expand ``topology:`` (`sim.frontdoor.topogen`), apply the other factors, validate with
`sim.frontdoor.scenario.Scenario`, then check what the schema cannot: scheme names against the
built-in registry plus the file's ``schemes:``, the cost profile and overrides, a route
between the hosts of every flow, and that `sim.core.model.Model` builds.

Every problem becomes an `Issue` printed as ``FILE:LINE: key.path: message (fix: hint)``;
`ScenarioError` carries all of them.  Values set on the command line are reported as
``--set ...`` instead of a line; values set by ``compare:`` point at the compare entry.

`read_document` is the first half (file, ``extends:``, ``--seed``, ``--set``, ``sweep:``
taken out) and `expand` the second (``compare:`` -> validated variants); `load` is both.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import networkx as nx
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from sim.core import trips
from sim.core.costs import CostProfile, load_profile
from sim.core.model import Model
from sim.core.schemes import SchemeRegistry, builtin_registry
from sim.core.stages import BUILTIN_STAGES, stage_set
from sim.frontdoor import endpoints, keypath, limits, matrix, mixedcheck, topogen
from sim.frontdoor.scenario import Scenario
from sim.frontdoor.yamlpos import Positions, Where, YamlSyntaxError, parse_value, read

TOP_KEYS_FRONT = ("extends", "topology", "compare", "sweep", "limits")   # front-door keys, not in Scenario
MAX_EXTENDS = 32                    # files in one extends: chain


@dataclass
class Issue:
    where: Optional[Where]
    path: tuple
    message: str
    fix: str = ""
    variant: str = ""          # "v3 (hosts.*.scheme=vnic)" when only some variants fail

    def __str__(self) -> str:
        s = f"{self.where or '?'}: {keypath.fmt(self.path)}: {self.message}"
        if self.fix:
            s += f" (fix: {self.fix})"
        if self.variant:
            s += f" [in variant {self.variant}]"
        return s


class ScenarioError(Exception):
    """Bad input; `issues` says where and why.  str() is the user-facing message."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass
class Variant:
    cell: matrix.Cell
    scenario: Scenario
    registry: SchemeRegistry
    profile: CostProfile

    @property
    def id(self) -> str:
        return self.cell.id


@dataclass
class Document:
    """A scenario file read and resolved up to its variants (`read_document`)."""
    path: str                            # the file as the user named it (used in messages)
    name: str
    data: dict                           # after extends, --seed and --set; sweep taken out, compare still in
    positions: Positions                 # key path -> file:line (or --set ...), sweep block included
    sweep: Any = None                    # the ``sweep:`` block as written; None when there is none

    @property
    def sweep_where(self) -> Optional[Where]:
        return self.positions.lookup(("sweep",)) if self.sweep is not None else None


@dataclass
class Loaded:
    path: str
    name: str
    document: dict                       # after extends, --seed and --set; compare and sweep taken out
    factors: list[matrix.Factor]
    variants: list[Variant] = field(default_factory=list)
    sweep: Any = None                    # the ``sweep:`` block (not applied: `netns-sim sweep` does)
    positions: Positions = field(default_factory=Positions)   # of the document, sweep block included
    rejected: list[tuple[matrix.Cell, str]] = field(default_factory=list)   # with expand(..., partial=True)
    error: Optional["ScenarioError"] = None                                # idem: all their problems
    limits: limits.Limits = field(default_factory=limits.Limits)            # the limits: block, defaults filled

    @property
    def sweep_where(self) -> Optional[Where]:
        return self.positions.lookup(("sweep",)) if self.sweep is not None else None

    def resolved_yaml(self) -> str:
        """A complete, re-runnable scenario: variant 0 with every default filled in, the
        ``compare:`` grid, and the variant table as comments."""
        lines = [f"# Resolved from {self.path} by netns-sim: extends, --seed and --set applied,",
                 "# topology expanded, every default filled in.  Running this file reproduces",
                 "# the same variants; the values below are variant 0's, compare: overrides them."]
        if self.factors:
            lines.append("# variants:")
            lines += [f"#   {v.id}: {v.cell.label()}" for v in self.variants]
        body = self.variants[0].scenario.model_dump(mode="json")
        if any(f.path[0] == "topology" for f in self.factors):
            doc = copy.deepcopy(self.document)
            body = {k: doc[k] if k in doc else v for k, v in body.items()
                    if k not in ("hosts", "switches", "links") or k in doc}
            body["topology"] = doc["topology"]
        if self.factors:
            body["compare"] = {f.name: list(f.values) for f in self.factors}
        if self.limits != limits.Limits():
            body["limits"] = self.limits.model_dump()
        if self.sweep is not None:
            body["sweep"] = copy.deepcopy(self.sweep)
        return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, width=100)


# -- reading files ------------------------------------------------------------------------

def _merge(base: dict, over: dict, pos: Positions, prefix: tuple = ()) -> dict:
    """Deep-merge `over` into `base` in place; positions under replaced values are dropped."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v, pos, prefix + (k,))
        else:
            pos.drop_under(prefix + (k,))
            base[k] = v
    return base


def _yaml_issues(e: YamlSyntaxError) -> ScenarioError:
    return ScenarioError([Issue(x.where, x.path, x.message, x.fix) for x in [e] + e.more])


def _read_tree(path: Path, display: str, chain: tuple[Path, ...]) -> tuple[dict, Positions]:
    try:
        data, pos = read(path, display)
    except YamlSyntaxError as e:
        raise _yaml_issues(e) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([Issue(Where(display, 1), (), "a scenario file must be a mapping of keys "
                                   f"(hosts:, flows:, run: ...), not a {type(data).__name__}")])
    ext = data.pop("extends", None)
    if ext is None:
        return data, pos
    where = pos.get(("extends",))
    if not isinstance(ext, str):
        raise ScenarioError([Issue(where, ("extends",), "extends takes one file path",
                                   "write extends: base.yaml (relative to this file)")])
    try:
        base_path = (path.parent / ext).resolve()
    except (OSError, RuntimeError) as e:          # a symlink loop
        raise ScenarioError([Issue(where, ("extends",), f"cannot resolve {ext!r}: {e}",
                                   "point extends: at a regular file")]) from None
    base_display = str(Path(display).parent / ext)
    if len(chain) >= MAX_EXTENDS:
        raise ScenarioError([Issue(where, ("extends",), f"extends: chain longer than {MAX_EXTENDS} files",
                                   "merge some of the base files")])
    if base_path in chain:
        raise ScenarioError([Issue(where, ("extends",), f"{ext!r} extends itself (cycle: "
                                   + " -> ".join(p.name for p in chain + (base_path,)) + ")")])
    if not base_path.is_file():
        raise ScenarioError([Issue(where, ("extends",), f"base scenario {ext!r} not found (looked for {base_path})",
                                   "extends takes a path relative to the file that contains it")])
    base, base_pos = _read_tree(base_path, base_display, chain + (base_path,))
    pos.pop(("extends",), None)
    merged = _merge(base, data, base_pos)
    base_pos.update(pos)
    return merged, base_pos


# -- --set and --seed ---------------------------------------------------------------------

def _apply_sets(doc: dict, pos: Positions, sets: list[str]) -> None:
    issues = []
    for s in sets:
        where = Where(f"--set {s}", None)
        if "=" not in s:
            issues.append(Issue(where, (), "expected key.path=value", "e.g. --set run.duration_ns=1e6"))
            continue
        key, raw = s.split("=", 1)
        try:
            value = parse_value(raw, str(where)) if raw.strip() else ""
        except YamlSyntaxError as e:
            issues.append(Issue(where, (), f"value {raw[:60]!r} is not valid YAML: {e.message}", e.fix))
            continue
        try:
            path = _set_path(key)
            written = keypath.assign(doc, path, value)
        except keypath.KeyPathError as e:
            issues.append(Issue(where, getattr(e, "at", ()), str(e),
                                "--set takes a key path of the scenario, e.g. hosts.0.cores=4 or hosts.*.scheme=vnic"))
            continue
        for p in written:
            pos.drop_under(p)
            pos[p] = where
    if issues:
        raise ScenarioError(issues)


def _set_path(key: str) -> tuple:
    """``--set`` key -> key path.  ``compare.`` and ``sweep.`` keys hold key paths themselves:
    ``compare.hosts.*.scheme``, ``sweep.replications``, ``sweep.grid.flows.*.rate_pps``."""
    if key.startswith("compare."):
        return ("compare", key[len("compare."):])
    if key.startswith("sweep."):
        rest = key[len("sweep."):]
        head, _, tail = rest.partition(".")
        if head in ("grid", "zip") and tail:
            return ("sweep", head, tail)
        return ("sweep", rest)
    return keypath.parse(key)


# -- validation errors -> issues ----------------------------------------------------------

_FIX_BY_TYPE = {
    "greater_than": "give a value > {gt}",
    "greater_than_equal": "give a value >= {ge}",
    "less_than": "give a value < {lt}",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "int_from_float": "write a whole number",
    "less_than_equal": "give a value <= {le}",
    "finite_number": "write a finite number (not .inf or .nan)",
    "float_parsing": "write a number, e.g. 1e6",
    "float_type": "write a number, e.g. 1e6",
    "string_type": "write a string (quote it if it looks like a number)",
    "bool_parsing": "write true or false",
    "list_type": "write a YAML list, e.g. [a, b] or one '- item' per line",
    "dict_type": "write a mapping of key: value",
    "model_type": "write a mapping of key: value",
    "model_attributes_type": "write a mapping of key: value",
    "literal_error": "use one of the values listed",
    "too_short": "give at least one element",
    "missing": "add this key",
    "union_tag_invalid": f"generator is one of {', '.join(topogen.GENERATORS)}",
    "union_tag_not_found": f"add generator: one of {', '.join(topogen.GENERATORS)}",
}

_FIX_BY_TEXT = (
    ("unknown host", "use one of the hosts listed, or add that host under hosts:"),
    ("numbered from 0", "namespaces of a host are numbered 0..namespaces-1: raise that host's namespaces "
                        "or use a lower index"),
    ("min_bytes <= max_bytes", "make min_bytes <= max_bytes"),
    ("not an endpoint", "endpoints are HOST:nsN, HOST:root, HOST:ns*, HOST:wire or group:NAME"),
    ("must be a namespace, HOST:nsN or HOST:root", "group members are HOST:nsN or HOST:root"),
    ("can only reach namespaces of", "the wire reaches its own host only: use that host's HOST:nsN or HOST:root"),
    ("is reached only from namespaces of", "send from a namespace of that host (HOST:nsN or HOST:root)"),
    ("cannot both be the wire", "make one end a namespace, HOST:nsN or HOST:root"),
    ("request/response flow runs between two namespaces", "use HOST:nsN or HOST:root at both ends"),
    ("unknown group", "use a group defined under groups:"),
    ("warmup_ns must be shorter", "make warmup_ns < duration_ns"),
    ("needs rate_pps", "add rate_pps (packets per second, > 0)"),
    ("socket(s) per namespace", "raise that host's sockets_per_namespace or use a lower port"),
    ("unknown node", "links join names listed under hosts: or switches:"),
    ("unique", "rename one of them"),
    ("names must be distinct", "rename one of them"),
)

_REF = re.compile(r"^(?P<coll>\w+)\[(?P<key>[^\]]+)\](?P<rest>(?:\.\w+)*): (?P<msg>.*)$", re.S)


def _unwrap_model(ann: Any) -> Optional[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _unwrap_model(arg)
        if m is not None:
            return m
    return None


def _model_at(root: type[BaseModel], loc: tuple) -> Optional[type[BaseModel]]:
    """The pydantic model that validates the mapping at `loc` (None if not a model)."""
    model: Optional[type[BaseModel]] = root
    skip_key = False
    for part in loc:
        if isinstance(part, int):
            continue
        if skip_key:
            skip_key = False
            continue
        f = model.model_fields.get(part) if model else None
        if f is None:
            return None
        ann = f.annotation
        if typing.get_origin(ann) is dict:
            skip_key = True
        model = _unwrap_model(ann)
        if model is None:
            return None
    return model


def _fix(err: ErrorDetails, loc: tuple, msg: str, root: type[BaseModel]) -> str:
    typ = err.get("type", "")
    if typ == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        if model is not None:
            allowed = list(model.model_fields)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            return (f"did you mean {hint[0]!r}? " if hint else "") + "allowed keys here: " + ", ".join(allowed)
        return "remove this key or check its spelling"
    if typ in _FIX_BY_TYPE:
        try:
            return _FIX_BY_TYPE[typ].format(**(err.get("ctx") or {}))
        except (KeyError, IndexError):
            return _FIX_BY_TYPE[typ]
    for text, fix in _FIX_BY_TEXT:
        if text in msg:
            return fix
    return ""


def _issues(err: ValidationError, doc: dict, pos: Positions, prefix: tuple = (),
            root: type[BaseModel] = Scenario) -> list[Issue]:
    out = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p != "[key]")
        model = root
        if prefix == ("topology",) and loc and loc[0] in topogen.GENERATORS:
            model = topogen.GENERATOR_MODELS[loc[0]]            # the generator's own keys, for the fix
            loc = loc[1:]
        if e["type"] in ("union_tag_invalid", "union_tag_not_found") and not loc:
            loc = ("generator",)
        msg = e["msg"]
        if e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
            m = _REF.match(msg) if not loc else None
            if m:
                coll, key = m["coll"], m["key"]
                found = doc.get(coll)
                items = found if isinstance(found, list) else []
                idx = int(key) if key.isdigit() else next(
                    (i for i, it in enumerate(items) if isinstance(it, dict) and it.get("name") == key), key)
                loc = (coll, idx) + tuple(p for p in m["rest"].split(".") if p)
                msg = m["msg"]
        if "names must be unique" in msg:
            out += _duplicate_issues(doc, pos)
            continue
        full = prefix + loc
        out.append(Issue(pos.lookup(full), full, msg, _fix(e, loc, msg, model)))
    return out


def _duplicate_issues(doc: dict, pos: Positions) -> list[Issue]:
    seen: dict[str, tuple] = {}
    out = []
    for coll in ("hosts", "switches"):
        for i, item in enumerate(doc.get(coll) or []):
            name = item.get("name") if isinstance(item, dict) else None
            if name is None:
                continue
            if name in seen:
                first = keypath.fmt(seen[name])
                out.append(Issue(pos.lookup((coll, i, "name")), (coll, i, "name"),
                                 f"name {name!r} is already used by {first}", "host and switch names must be unique"))
            else:
                seen[name] = (coll, i, "name")
    return out or [Issue(pos.lookup(("hosts",)), ("hosts",), "host and switch names must be unique")]


# -- checks beyond the schema -------------------------------------------------------------

def _registry(sc: Scenario, pos: Positions,
              profile: Optional[CostProfile] = None) -> tuple[SchemeRegistry, list[Issue]]:
    """The built-in schemes plus the scenario's, which may name the run's stages (the profile's
    stage set: built-ins plus declared ones; without a profile, the scenario's declared ones)."""
    if profile is not None:
        stages = profile.stage_set
    else:
        try:
            stages = stage_set({n: (d.group, d.entries, d.doc) for n, d in sc.stages.items()})
        except ValueError:
            stages = BUILTIN_STAGES
    reg = builtin_registry(stages)
    issues = []
    for name, spec in sc.schemes.items():
        try:
            reg.add(name, spec)
        except ValidationError as e:
            issues += _issues(e, {}, pos, ("schemes", name), root=_scheme_model())
    for i, h in enumerate(sc.hosts):
        if h.scheme not in reg:
            try:
                reg.get(h.scheme)
            except KeyError as e:
                issues.append(Issue(pos.lookup(("hosts", i, "scheme")), ("hosts", i, "scheme"), e.args[0],
                                    "`netns-sim schemes` lists the built-in schemes; define new ones under schemes:"))
    issues += [Issue(pos.lookup(path), path, msg, fix) for path, msg, fix in mixedcheck.scheme_problems(sc, reg)]
    return reg, issues


def _host_schemes(h, reg: SchemeRegistry) -> list:
    """Every scheme host `h` runs: its own, then its containers' (a mixed host's groups)."""
    return [reg.get(h.scheme)] + [reg.get(s) for s, _ in h.scheme_groups() if s != h.scheme]


def _scheme_model():
    from sim.core.schemes import SchemeSpec
    return SchemeSpec


def _route_issues(sc: Scenario, pos: Positions) -> list[Issue]:
    g = nx.Graph()
    g.add_nodes_from(h.name for h in sc.hosts)
    g.add_nodes_from(s.name for s in sc.switches)
    g.add_edges_from((link.a, link.b) for link in sc.links)
    groups = {gr.name: {endpoints.host_of(m) for m in gr.members} for gr in sc.groups}
    issues = []
    for i, f in enumerate(sc.flows):
        src_ep, dst_ep = endpoints.parse(f.src), endpoints.parse(f.dst)
        src = endpoints.host_of(f.src)
        if dst_ep.group is not None:
            targets = [] if src_ep.wire else sorted(groups.get(dst_ep.group, ()))
        else:
            targets = [endpoints.host_of(f.dst)]
        for dst in targets:
            if dst != src and not nx.has_path(g, src, dst):
                issues.append(Issue(pos.lookup(("flows", i)), ("flows", i),
                                    f"no route from host {src!r} to host {dst!r}: no chain of links joins them",
                                    "add links (or a topology: generator) connecting the two hosts"))
    return issues


def _trip_issues(sc: Scenario, reg: SchemeRegistry, pos: Positions) -> list[Issue]:
    """Flows that need a trip their host's scheme does not define (a scheme defined under
    schemes: may leave out the optional endpoint trips, `sim.core.trips.ENDPOINT_TRIPS`)."""
    if any(h.scheme not in reg for h in sc.hosts):
        return []                                # reported by _registry
    hosts = {h.name: h for h in sc.hosts}
    schemes = {h.name: _host_schemes(h, reg) for h in sc.hosts}
    groups = {g.name: {endpoints.resolve(m, hosts, "")[0] for m in g.members} for g in sc.groups}
    issues = []
    for i, f in enumerate(sc.flows):
        src, dst_ep = endpoints.resolve(f.src, hosts, ""), endpoints.parse(f.dst)
        if dst_ep.group is not None:
            runs = trips.uses(src, None, groups[dst_ep.group])
        else:
            dst = endpoints.resolve(f"{dst_ep.host}:ns0" if dst_ep.spread else f.dst, hosts, "")
            runs = trips.uses(src, dst, two_way=f.two_way, spread=dst_ep.spread)
        problem = trips.missing_trip(runs, schemes)
        if problem:
            issues.append(Issue(pos.lookup(("flows", i)), ("flows", i), *problem))
    return issues + [Issue(pos.lookup(path), path, msg, fix) for path, msg, fix in mixedcheck.flow_problems(sc, reg)]


def _where_at_or_under(pos: Positions, path: tuple) -> Optional[Where]:
    """The position of `path`, else of the first key set below it (a --set of a deeper key),
    else of its nearest parent."""
    w = pos.get(path)
    if w is None:
        w = next((v for k, v in pos.items() if k[:len(path)] == path), None)
    return w or pos.lookup(path)


def _capability_issues(sc: Scenario, reg: SchemeRegistry, pos: Positions) -> list[Issue]:
    """Host settings the host's scheme cannot have (its capabilities, `sim.core.schemes`): a
    container's own netfilter (rules, registered hooks, conntrack) where containers have none
    (a mixed host: where none of its containers' schemes gives them one; the child settings
    then apply to the containers whose scheme does)."""
    if any(h.scheme not in reg for h in sc.hosts):
        return []                                # reported by _registry
    own = [n for n in reg.names() if reg.get(n).spec.capabilities.own_netfilter]
    issues = []
    for i, h in enumerate(sc.hosts):
        names = list(dict.fromkeys(s for s, _ in h.scheme_groups()))
        if any(reg.get(s).spec.capabilities.own_netfilter for s in names):
            continue
        which = f"scheme {names[0]!r} gives" if len(names) == 1 else f"schemes {', '.join(map(repr, names))} give"
        why = (f"{which} a container no netfilter of its own (capabilities.own_netfilter: "
               f"false): its packets cross only the root namespace's hooks, so")
        fix = ("declare the rules in the root namespace (nf_rules.root, conntrack.root), which every container's "
               f"packets cross, or give the host a scheme with its own netfilter ({', '.join(own)})")
        if h.nf_rules.child:
            path = ("hosts", i, "nf_rules", "child")
            issues.append(Issue(_where_at_or_under(pos, path), path,
                                f"{why} these rules would never be evaluated", fix))
        if h.conntrack.child:
            path = ("hosts", i, "conntrack", "child")
            issues.append(Issue(_where_at_or_under(pos, path), path,
                                f"{why} a container has no conntrack table to turn on", fix))
        if h.nf_hooks.child == "all":
            path = ("hosts", i, "nf_hooks", "child")
            issues.append(Issue(_where_at_or_under(pos, path), path,
                                f"{why} a container has no hooks to register", fix))
    return issues


def _table_issues(sc: Scenario, reg: SchemeRegistry, pos: Positions) -> list[Issue]:
    """A host's socket_tables needs a scheme that models one era's tables (its socket_era):
    the other organisations (one stack, bind filtering, PATCH 4/9's short-cut) are the scheme."""
    issues = []
    for i, h in enumerate(sc.hosts):
        spec = reg.get(h.scheme).spec
        if any(reg.get(s).spec.socket_era is not None for s, _ in h.scheme_groups()):
            continue                             # a mixed host: the era applies to the groups that have one
        if h.socket_tables is not None and spec.socket_era is None:
            issues.append(Issue(pos.lookup(("hosts", i, "socket_tables")), ("hosts", i, "socket_tables"),
                                f"scheme {h.scheme!r} has {spec.socket_tables} socket tables by design (it has no "
                                "socket_era), so they cannot be switched to another era's",
                                "leave socket_tables out, or use a scheme with a socket_era (l2-routed, "
                                "l2-bridged, shortcut-routing, shortcut-postrouting, vnic)"))
    return issues


def _profile(sc: Scenario, pos: Positions, profiles: dict) -> tuple[Optional[CostProfile], list[Issue]]:
    """The variant's cost profile with its overrides (cached in `profiles`), or its problems."""
    key = (sc.cost_profile, sc.cost_overrides.model_dump_json(),
           json.dumps({n: d.model_dump() for n, d in sc.stages.items()}, sort_keys=True))
    if key in profiles:
        return profiles[key], []
    try:
        base = load_profile(sc.cost_profile)
    except (OSError, ValueError) as e:           # not found, unreadable, bad YAML, not a profile
        return None, [Issue(pos.lookup(("cost_profile",)), ("cost_profile",), str(e).splitlines()[0],
                            "give a built-in profile name (e.g. default) or the path of a profile .yaml")]
    try:
        base = base.with_stages(sc.stages)
    except ValueError as e:                      # a declared stage the profile already has
        name = next(n for n in sc.stages if f"stages.{n}:" in str(e))
        return None, [Issue(pos.lookup(("stages", name)), ("stages", name), str(e).splitlines()[0])]
    o = sc.cost_overrides
    try:
        profiles[key] = base.with_overrides(o.stages, o.host, o.memory_bytes, o.netfilter)
    except ValidationError as e:                 # a value the profile refuses: name it
        return None, [Issue(pos.lookup(path), path, err["msg"],
                            f"give a value >= {err['ctx']['ge']}" if err["type"] == "greater_than_equal" else
                            "give a value the profile accepts (sim/profiles/default.yaml documents each)")
                      for err in e.errors() for path in [("cost_overrides",) + tuple(err["loc"])]]
    except ValueError as e:
        return None, [Issue(pos.lookup(("cost_overrides",)), ("cost_overrides",), str(e).splitlines()[0])]
    return profiles[key], []


def _check(sc: Scenario, pos: Positions, profiles: dict,
           lim: limits.Limits) -> tuple[SchemeRegistry, Optional[CostProfile], list[Issue]]:
    profile, issues = _profile(sc, pos, profiles)
    reg, more = _registry(sc, pos, profile)
    issues += more + _route_issues(sc, pos)
    if not issues:
        issues += _trip_issues(sc, reg, pos) + _capability_issues(sc, reg, pos) + _table_issues(sc, reg, pos)
    if not issues:
        assert profile is not None               # _profile gives no profile only with an issue
        issues += [Issue(pos.lookup(path), path, msg, fix) for path, msg, fix in
                   limits.check_variant(sc, reg, lim)]
    if not issues:
        try:
            Model(sc, registry=reg, profile=profile)
        except (ValueError, KeyError) as e:      # NoRouteError is a ValueError
            issues.append(Issue(pos.lookup(()), (), f"the model cannot be built: {e}"))
    return reg, profile, issues


# -- the front door -----------------------------------------------------------------------

def _remap(pos: Positions, coll: str, origin: list[Optional[int]], fallback: Optional[Where]) -> None:
    """After topology expansion, element j of `coll` came from explicit element origin[j]."""
    old = {k: v for k, v in pos.items() if k[:1] == (coll,) and len(k) > 1}
    for k in old:
        del pos[k]
    if fallback is not None and (coll,) not in pos:
        pos[(coll,)] = fallback
    for j, i in enumerate(origin):
        if i is None:
            if fallback is not None:
                pos[(coll, j)] = fallback
            continue
        for k, v in old.items():
            if k[1] == i:
                pos[(coll, j) + k[2:]] = v


def _expand_topology(d: dict, pos: Positions, lim: limits.Limits) -> list[Issue]:
    topo = d.pop("topology", None)
    if topo is None:
        return []
    try:
        spec = TypeAdapter(topogen.TopologySpec).validate_python(topo)
    except ValidationError as e:
        return _issues(e, d, pos, ("topology",), root=BaseModel)
    n_hosts, _, n_links = topogen.sizes(spec)
    too_big = [hit for hit in (limits.exceeds("hosts the topology generator makes", n_hosts,
                                              "max_hosts", lim),
                               limits.exceeds("links the topology generator makes", n_links,
                                              "max_links", lim)) if hit]
    if too_big:
        return [Issue(pos.lookup(("topology",)), ("topology",), msg, fix) for msg, fix in too_big]
    explicit = {}
    for coll in ("hosts", "switches", "links"):
        v = d.get(coll) or []
        if not isinstance(v, list):
            return [Issue(pos.lookup((coll,)), (coll,), f"{coll} must be a list", "write one '- ...' entry per line")]
        explicit[coll] = v
    out = topogen.expand(spec, explicit["hosts"], explicit["switches"], explicit["links"])
    names = [h.get("name") if isinstance(h, dict) else None for h in explicit["hosts"]]
    host_origin = [names.index(h["name"]) if h.get("name") in names else None for h in out["hosts"]]
    where = pos.lookup(("topology",))
    _remap(pos, "hosts", host_origin, where)
    for coll in ("switches", "links"):
        n_gen = len(out[coll]) - len(explicit[coll])
        _remap(pos, coll, [None] * n_gen + list(range(len(explicit[coll]))), where)
    d.update(out)
    return []


def read_document(path: str | Path, sets: list[str] | tuple = (), seed: Optional[int] = None) -> Document:
    """Read a scenario file with its ``extends:`` chain, apply ``--seed`` and ``--set``, take
    out ``sweep:``; nothing is validated yet (`ScenarioError` for unreadable input)."""
    display = str(path)
    p = Path(path)
    if not p.is_file():
        raise ScenarioError([Issue(Where(display, None), (), "scenario file not found",
                                   "give the path of a .yaml file, e.g. scenarios/rfc2006-schemes.yaml")])
    doc, pos = _read_tree(p.resolve(), display, (p.resolve(),))
    own = read(p, display)[0]
    if not (isinstance(own, dict) and "name" in own):
        doc["name"] = p.stem
    return _document(display, p.stem, doc, pos, sets, seed)


def document_from_mapping(data: dict, sets: list[str] | tuple = (), seed: Optional[int] = None,
                          base_dir: str | Path = ".", display: str = "<scenario>") -> Document:
    """`read_document` for a scenario given as a mapping (the Python API): the same keys,
    ``extends:`` (relative to `base_dir`), ``compare:``, ``sweep:``, ``topology:`` and
    ``--set``-style `sets`.  Problems are reported as ``<scenario>: key.path: message``."""
    if not isinstance(data, dict):
        raise ScenarioError([Issue(Where(display, None), (), "a scenario must be a mapping of keys "
                                   f"(hosts:, flows:, run: ...), not a {type(data).__name__}")])
    doc, pos = copy.deepcopy(data), Positions({(): Where(display, None)})
    ext = doc.pop("extends", None)
    if ext is not None:
        base_path = Path(base_dir) / str(ext)
        if not base_path.is_file():
            raise ScenarioError([Issue(Where(display, None), ("extends",), f"base scenario {ext!r} not found "
                                       f"(looked for {base_path.resolve()})", "extends takes a path relative to "
                                       "base_dir")])
        base, base_pos = _read_tree(base_path.resolve(), str(base_path), (base_path.resolve(),))
        doc = _merge(base, doc, base_pos)
        pos.update(base_pos)
    return _document(display, "scenario", doc, pos, sets, seed)


def _document(display: str, default_name: str, doc: dict, pos: Positions, sets, seed) -> Document:
    """The common tail of reading: ``--seed``, ``--set``, ``sweep:`` taken out."""
    if seed is not None:
        doc.setdefault("run", {})
        if isinstance(doc["run"], dict):
            doc["run"]["seed"] = seed
            pos[("run", "seed")] = Where("--seed", None)
    _apply_sets(doc, pos, list(sets))
    sweep = doc.pop("sweep", None) if "sweep" in doc else None
    if sweep is None and ("sweep",) in pos:          # ``sweep:`` with nothing under it: still a sweep file
        sweep = {}
    return Document(display, str(doc.get("name", default_name)), doc, pos, sweep)


def load(path: str | Path, sets: list[str] | tuple = (), seed: Optional[int] = None) -> Loaded:
    """Read, resolve and validate a scenario file; `ScenarioError` lists every problem.
    A ``sweep:`` block is taken out and kept as `Loaded.sweep`, not applied."""
    return expand(read_document(path, sets, seed))


def limits_of(data: dict, pos: Positions) -> limits.Limits:
    """The document's ``limits:`` block (defaults when there is none); `ScenarioError` if bad."""
    try:
        return limits.Limits.model_validate(data.get("limits") or {})
    except ValidationError as e:
        raise ScenarioError(_issues(e, data, pos, ("limits",), root=limits.Limits)) from None


def _limits(doc: dict, pos: Positions) -> limits.Limits:
    lim = limits_of(doc, pos)
    doc.pop("limits", None)
    return lim


def expand(document: Document, partial: bool = False) -> Loaded:
    """``compare:`` grid -> every variant, validated.  `ScenarioError` lists every problem;
    with `partial`, variants that do not validate are listed in `Loaded.rejected` (cell,
    its problems) and `Loaded.error` (all problems, as raised otherwise) instead."""
    doc = copy.deepcopy(document.data)
    pos = Positions(document.positions)
    display = document.path
    lim = _limits(doc, pos)
    try:
        factors = matrix.factors(doc.pop("compare", None))
    except matrix.CompareError as e:
        path_ = ("compare",) if e.key is None else ("compare", e.key)
        raise ScenarioError([Issue(pos.lookup(path_), path_, str(e))]) from None
    too_many = limits.exceeds("variants of the compare: grid", math.prod(len(f.values) for f in factors),
                              "max_variants", lim)
    if too_many:
        raise ScenarioError([Issue(pos.lookup(("compare",)), ("compare",), *too_many)])
    cells = matrix.grid(factors)
    loaded = Loaded(display, document.name, doc, factors, sweep=document.sweep, positions=document.positions,
                    limits=lim)
    seen: dict[str, tuple[Issue, list]] = {}
    profiles: dict = {}
    for cell in cells:
        d = copy.deepcopy(doc)
        vpos = Positions(pos)
        cell_issues: list[Issue] = []
        ordered = sorted(factors, key=lambda f: f.path[0] != "topology")
        expanded = False
        for f in ordered:
            if f.path[0] != "topology" and not expanded:
                cell_issues += _expand_topology(d, vpos, lim)
                expanded = True
            value = cell.levels[f.name]
            where = pos.lookup(("compare", f.name, f.values.index(value)))
            try:
                for w in keypath.assign(d, f.path, copy.deepcopy(value)):
                    vpos.drop_under(w)
                    vpos[w] = where
            except keypath.KeyPathError as e:
                cell_issues.append(Issue(pos.lookup(("compare", f.name)), ("compare", f.name), str(e),
                                         "compare keys are key paths into the scenario, e.g. hosts.*.scheme"))
        if not expanded:
            cell_issues += _expand_topology(d, vpos, lim)
        sc = None
        if not cell_issues:
            try:
                sc = Scenario.model_validate(d)
            except ValidationError as e:
                cell_issues += _issues(e, d, vpos)
        if sc is not None:
            reg, profile, more = _check(sc, vpos, profiles, lim)
            cell_issues += more
            if not more:
                assert profile is not None       # _check gives no profile only with an issue
                loaded.variants.append(Variant(cell, sc, reg, profile))
        if cell_issues and partial:
            loaded.rejected.append((cell, "\n".join(dict.fromkeys(str(i) for i in cell_issues))))
        for issue in cell_issues:
            text = str(issue)
            if text not in seen:
                seen[text] = (issue, [])
            seen[text][1].append(cell)
    if seen:
        issues = []
        for issue, where_cells in seen.values():
            if len(where_cells) < len(cells):
                c = where_cells[0]
                issue.variant = f"{c.id} ({c.label()})" + (f" and {len(where_cells) - 1} more"
                                                           if len(where_cells) > 1 else "")
            issues.append(issue)
        if not partial:
            raise ScenarioError(issues)
        loaded.error = ScenarioError(issues)
    return loaded
