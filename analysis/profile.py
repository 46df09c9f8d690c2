"""The cost profile a run used, with where each value comes from (for the report's setup).

`describe(res) -> Profile` finds the profile named by ``cost_profile`` in
``scenario.resolved.yaml`` (a name in ``sim/profiles/`` or a YAML path, absolute, relative
to the working directory or to the scenario file) and returns its values per section
(``stages``, ``host``, ``netfilter`` — its ``backends`` as ``backends.NAME`` —,
``memory_bytes``, each size with its ``range`` when it has one) with the comment block above each key — the
``source:`` / ``derivation:`` notes every profile value carries — plus the scenario's
``cost_overrides``.  The file is read as text/YAML; nothing from the simulator is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.yamlload import safe_load

PROFILE_DIR = Path(__file__).resolve().parent.parent / "sim" / "profiles"
SECTIONS = ("stages", "host", "netfilter", "memory_bytes")


@dataclass
class Entry:
    section: str
    key: str
    value: object
    note: str             # the comment block above the key (source, derivation), joined


@dataclass
class Profile:
    name: str
    path: Path | None
    description: str
    header: str           # the file's leading comment (sources cited in full)
    entries: list[Entry] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    calibration: dict | None = None


def _find(name: str, res) -> Path | None:
    p = Path(name)
    # as sim.core.costs.load_profile reads it: a .yaml path or an existing file, else a name in
    # sim/profiles (names may hold dots: amd-epyc-6.18.44)
    path_like = p.suffix in (".yaml", ".yml") or p.is_file()
    cands = [p] if path_like else [PROFILE_DIR / f"{name}.yaml"]
    if path_like and not p.is_absolute():
        for r in res.runs:
            sf = r.metadata.get("scenario_file")
            if sf:
                cands.append(Path(r.metadata.get("cwd", ".")) / Path(sf).parent / p)
                cands.append(Path(sf).parent / p)
    return next((c for c in cands if c.is_file()), None)


def parse(text: str) -> tuple[str, dict[tuple[str, str], str]]:
    """(leading comment, {(section, key): comment block above it})."""
    lines = text.splitlines()
    header = []
    for ln in lines:
        if ln.startswith("#"):
            header.append(ln[1:].strip() if ln.strip() != "#" else "")
        elif ln.strip():
            break
    notes: dict[tuple, str] = {}
    section: str | None = None
    block: list[str] = []
    indent: int | None = None           # of the section's own keys: deeper keys are their values
    for ln in lines:
        top = re.match(r"^([A-Za-z_]\w*):", ln)
        if top:
            section, block, indent = top.group(1), [], None
            continue
        m = re.match(r"^\s+#\s?(.*)$", ln)
        if m:
            block.append(m.group(1).strip())
            continue
        k = re.match(r"^(\s+)([A-Za-z_][\w-]*):", ln)
        if k and section:
            indent = len(k.group(1)) if indent is None else indent
            if len(k.group(1)) == indent:
                notes[(section, k.group(2))] = " ".join(block)
            block = []
        elif not ln.strip():
            continue
    return "\n".join(header).strip(), notes


def describe(res) -> Profile:
    resolved = res.runs[0].resolved
    name = str(resolved.get("cost_profile", "default"))
    overrides = resolved.get("cost_overrides") or {}
    path = _find(name, res)
    if path is None:
        return Profile(name, None, "(profile file not found; values unknown to the report)", "", [], overrides)
    text = path.read_text()
    data = safe_load(text) or {}
    header, notes = parse(text)
    entries = []
    for sec in SECTIONS:
        ranges = (data.get(sec) or {}).get("range") if sec == "memory_bytes" else None
        for key, val in (data.get(sec) or {}).items():
            if ranges is not None:          # a size's range is shown beside its value
                if key == "range":
                    continue
                if isinstance(ranges, dict) and key in ranges:
                    lo, hi = ranges[key]
                    val = f"{val} (range {lo}–{hi})"
            if sec == "netfilter" and key == "backends" and isinstance(val, dict):
                for backend, v in val.items():
                    entries.append(Entry(sec, f"backends.{backend}", v, notes.get((sec, backend), "")))
                continue
            entries.append(Entry(sec, key, val, notes.get((sec, key), "")))
    return Profile(str(data.get("name", name)), path, str(data.get("description", "")).strip(), header, entries,
                   overrides, data.get("calibration"))
