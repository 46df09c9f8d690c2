"""The command line: ``netns-sim`` / ``python -m sim``.  The only argparse in `sim/`.

Subcommands: ``run``, ``validate``, ``schemes``, ``describe``.  Exit codes: 0 success,
1 the simulation failed (a bug: the traceback is shown), 2 bad input (scenario errors,
existing output without --force, --force on a path netns-sim did not create, unknown
scheme; one line per problem, no traceback, nothing written), 130 interrupted (Ctrl-C or
SIGTERM, also during start-up; the 'interrupted: ...' line says what is on disk, see
`sim.signals`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import sim
from sim import longlived, signals
from sim.frontdoor import outpath
from sim.signals import Interrupted

if TYPE_CHECKING:
    from sim.frontdoor.loader import Document

# Imports are lazy (inside the commands) so that ``--version`` and ``--help`` load no
# scenario machinery, and ``validate`` no result-writing code: tests/test_cli_imports.py.

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# -- run ----------------------------------------------------------------------------------

def _label(levels: dict, point_id: str) -> str:
    """``p00003-r0 scheme=vnic namespaces=10``: factor names shortened to their last key."""
    return " ".join([point_id] + [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in levels.items()])


class _RunProgress:
    """Two bars on a terminal: variants done, and simulated time of the current one."""

    def __init__(self, points) -> None:
        from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
        self.points = points
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[what]}"),
                            TimeElapsedColumn(), transient=False)
        self.overall: Optional[TaskID] = None   # both set by start(), which the runner calls first
        self.task: Optional[TaskID] = None
        self.current = -1

    # the runner's progress interface (sim.sweep.progress)
    def start(self, total: int, skipped: int) -> None:
        self.bar.start()
        self.overall = self.bar.add_task("variants", total=total, what="")
        self.task = self.bar.add_task("", total=1, what="")

    def update(self, done: int, running: int, failed: int) -> None:
        assert self.overall is not None
        self.bar.update(self.overall, completed=done + failed, what=f"{done + failed}/{len(self.points)} done")

    def stop(self) -> None:
        self.bar.stop()

    # InlineExecutor's per-point callback
    def point(self, index: int, now_ns: float, until_ns: float, packets: int) -> None:
        assert self.task is not None
        if index != self.current:
            self.current = index
            p = self.points[index]
            self.bar.reset(self.task, total=until_ns / 1e6, description=_label(p.levels, p.id)[:70], what="")
        self.bar.update(self.task, completed=now_ns / 1e6,
                        what=f"{now_ns / 1e6:.2f}/{until_ns / 1e6:.2f} ms simulated, {packets} packets")


def _refuse_sweep(doc: Document) -> str:
    """`run` does not run a file's ``sweep:`` block (nor silently only its base scenario)."""
    return (f"{doc.sweep_where}: sweep: {doc.path} declares a sweep (points x replications), which "
            f"netns-sim run does not run (fix: use netns-sim sweep {doc.path})")


def cmd_run(args) -> int:
    """Every variant of the ``compare:`` grid, once, in this process: a one-replication study
    (`sim.sweep.runner.run_study`) written into a temporary directory renamed into place."""
    from sim.frontdoor.loader import ScenarioError, read_document
    from sim.results.results_io import TargetExists
    from sim.sweep.runner import StudyFailed, run_atomic
    from sim.sweep.spec import SweepError, expand_document
    try:
        doc = read_document(args.scenario, args.set or [], seed=args.seed)
        if doc.sweep is not None:
            _err(_refuse_sweep(doc))
            return EXIT_BAD_INPUT
        exp = expand_document(doc, partial=False)
    except (ScenarioError, SweepError) as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / exp.name
    if bad := outpath.problem(out):
        _err(bad)
        return EXIT_BAD_INPUT
    t0 = time.perf_counter()
    longlived.freeze()                          # imports and validation done: no garbage-collector walks
    try:
        progress = _RunProgress(exp.points) if not args.quiet and sys.stderr.isatty() else None
        report = run_atomic(exp, out, force=args.force, progress=progress)
    except TargetExists as e:
        _err(f"error: {e}")
        return EXIT_BAD_INPUT
    except StudyFailed as e:
        for f in e.report.failed:
            _err(f"variant {f.get('id')} ({_label(f.get('levels') or {}, '')}) failed:\n"
                 f"{f.get('traceback') or f['error']}")
        _err(f"the simulation failed: nothing written to {out}")
        return EXIT_FAILED
    except (KeyboardInterrupt, Interrupted):
        _err(signals.message())
        return EXIT_INTERRUPTED
    except OSError as e:
        if e.errno not in outpath.FULL_DISK:
            raise
        _err(outpath.write_failed(out, e))
        return EXIT_FAILED
    if not args.quiet:
        print(f"wrote {out}: {len(exp.points)} variant(s), {report.records} packet rows, "
              f"{time.perf_counter() - t0:.1f} s")
    return EXIT_OK


# -- validate -----------------------------------------------------------------------------

def cmd_validate(args) -> int:
    from sim.frontdoor.loader import ScenarioError, expand, read_document
    try:
        doc = read_document(args.scenario, args.set or [], seed=args.seed)
        if doc.sweep is not None:
            return _validate_sweep(args, doc)
        loaded = expand(doc)
    except ScenarioError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    if args.print:
        print(loaded.resolved_yaml(), end="")
    elif not args.quiet:
        print(f"{args.scenario}: OK, {len(loaded.variants)} variant(s)")
    return EXIT_OK


def _validate_sweep(args, doc: Document) -> int:
    """A file with a ``sweep:`` block: every point of the sweep (--print: the base scenario,
    with the block)."""
    from sim.frontdoor.loader import ScenarioError, expand
    from sim.sweep.spec import SweepError
    from sim.sweep.spec import expand as expand_sweep
    try:
        exp = expand_sweep(args.scenario, args.set or [], args.seed)
        base = expand(doc) if args.print else None
    except (ScenarioError, SweepError) as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    if exp.rejected:
        bad: dict[str, list[dict]] = {}
        for r in exp.rejected:
            if r.replication == 0:
                for line in r.error.splitlines():
                    bad.setdefault(line, []).append(r.levels)
        for line, points in bad.items():
            eg = ", ".join(f"{k}={v}" for k, v in points[0].items())
            _err(f"{line} [in {len(points)} sweep point(s), e.g. {eg}]")
        _err(f"{args.scenario}: {len(exp.rejected) // exp.spec.replications} of "
             f"{(len(exp.points) + len(exp.rejected)) // exp.spec.replications} sweep point(s) do not validate")
        return EXIT_BAD_INPUT
    if args.print:
        assert base is not None                  # expanded above when args.print
        print(base.resolved_yaml(), end="")
    elif not args.quiet:
        n, reps = len(exp.points) // exp.spec.replications, exp.spec.replications
        print(f"{args.scenario}: OK, sweep of {n} point(s) x {reps} replication(s) = {len(exp.points)} run(s) "
              f"(run it with netns-sim sweep {args.scenario})")
    return EXIT_OK


# -- schemes and describe -----------------------------------------------------------------

def _registry_for(scenario: str | None):
    if scenario:
        from sim.frontdoor.loader import load
        loaded = load(scenario)
        return loaded.variants[0].registry
    from sim.core.schemes import builtin_registry
    return builtin_registry()


def _scheme_info(s) -> dict:
    spec = s.spec
    return {"name": s.name, "description": spec.description,
            "passes": {trip: len(passes) for trip, passes in spec.trips.items()},
            "capabilities": [c for c, ok in spec.capabilities.model_dump().items() if ok],
            "lacks": [c for c, ok in spec.capabilities.model_dump().items() if not ok],
            "socket_tables": spec.socket_tables,
            "socket_era": spec.socket_era,
            "addresses_per_container": spec.addresses_per_container,
            "devices_per_container": spec.devices_per_container}


def _console():
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else 200)


def cmd_schemes(args) -> int:
    from sim.frontdoor.loader import ScenarioError
    try:
        reg = _registry_for(args.scenario)
    except ScenarioError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    infos = [_scheme_info(reg.get(n)) for n in reg.names()]
    if args.format == "json":
        print(json.dumps(infos, indent=2))
        return EXIT_OK
    from rich.table import Table

    from sim.core.trips import ENDPOINT_TRIPS, REQUIRED_TRIPS
    shown = REQUIRED_TRIPS + ("multicast",)
    t = Table(title="isolation schemes (passes per trip through one host, '-': the scheme has no such trip; "
                    "endpoint trips: `netns-sim describe`)")
    t.add_column("scheme")
    for trip in shown:
        t.add_column(trip, justify="right")
    t.add_column("endpoint trips")
    t.add_column("socket tables")
    t.add_column("addr/dev per container", justify="right")
    t.add_column("capabilities")
    for i in infos:
        lacks = [trip for trip in ENDPOINT_TRIPS if trip not in i["passes"]]
        t.add_row(i["name"], *[str(i["passes"].get(trip, "-")) for trip in shown],
                  "all" if not lacks else "lacks " + ", ".join(lacks),
                  i["socket_tables"] + (f" ({i['socket_era']})" if i["socket_era"] else ""),
                  f"{i['addresses_per_container']}/{i['devices_per_container']}",
                  ", ".join(i["capabilities"]) or "-")
    _console().print(t)
    return EXIT_OK


def cmd_describe(args) -> int:
    from sim.core.costs import load_profile
    from sim.core.stages import STAGE_NAMES
    from sim.frontdoor.loader import ScenarioError, load
    try:
        reg = _registry_for(args.scenario)
        scheme = reg.get(args.scheme)
        profile = load_profile(args.profile)
        if args.scenario:                        # the file's declared stages too (docs/stages.md)
            profile = profile.with_stages(load(args.scenario).variants[0].scenario.stages)
    except ScenarioError as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    except KeyError as e:
        _err(f"error: {e.args[0]}")
        return EXIT_BAD_INPUT
    except (FileNotFoundError, ValueError) as e:
        _err(f"error: {e}")
        return EXIT_BAD_INPUT
    info = _scheme_info(scheme)
    if args.format == "json":
        info["trips"] = {trip: [p.model_dump() for p in passes] for trip, passes in scheme.spec.trips.items()}
        info["stage_costs"] = {n: c.model_dump() for n, c in profile.stages.items()}
        info["memory_per_namespace"] = dict(scheme.spec.memory_per_namespace)
        info["via_root"] = None if scheme.spec.via_root is None else scheme.spec.via_root.model_dump()
        print(json.dumps(info, indent=2))
        return EXIT_OK
    from rich.table import Table

    stage_info = reg.stages.info                 # built-in and declared stages
    con = _console()
    con.print(f"[bold]{scheme.name}[/bold]: {info['description']}")
    con.print(f"capabilities: {', '.join(info['capabilities']) or 'none'}; "
              f"lacks: {', '.join(info['lacks']) or 'nothing'}")
    era = (f" (era {info['socket_era']}; a host may choose the other: hosts[].socket_tables)"
           if info["socket_era"] else "")
    con.print(f"socket tables: {info['socket_tables']}{era}; per container: {info['addresses_per_container']} "
              f"address(es), {info['devices_per_container']} device(s)")
    from sim.core.memory import PER_CPU, UNITS
    sizes = profile.memory_bytes

    def unit_bytes(unit: str) -> str:
        parts = UNITS.get(unit, ((unit, 1),))
        fixed = sum(k * getattr(sizes, f) for f, k in parts if f not in PER_CPU)
        per_cpu = sum(k * getattr(sizes, f) for f, k in parts if f in PER_CPU)
        return f"{fixed:,} B" + (f" + {per_cpu:,} B per CPU" if per_cpu else "")
    mem = ", ".join(f"{k} x{v:g} ({unit_bytes(k)})" for k, v in scheme.spec.memory_per_namespace.items())
    con.print(f"memory per namespace: {mem or 'nothing'}, plus socket tables (profile {profile.name}; "
              "sim/core/memory.py)")
    for trip, passes in scheme.spec.trips.items():
        t = Table(title=f"{trip}: {len(passes)} pass(es)", title_justify="left")
        for col in ("pass", "ns", "queue", "stage", "base_ns", "per_byte_ns", "per_entry_ns", "per entry of"):
            t.add_column(col)
        total = 0.0
        for k, p in enumerate(passes, 1):
            extra = [f"{key}: {w}" for key in ("wire_copy", "root_copy", "loop_copy") for w in getattr(p, key) or []]
            for j, token in enumerate(p.stages + extra):
                name = token.split(": ", 1)[-1].rstrip("*").split(":", 1)[0]
                c = profile.stages[name]
                total += c.base_ns
                kind = stage_info[name].entry_kind
                t.add_row(str(k) if j == 0 else "", p.ns + (" fanout" if p.fanout else "") if j == 0 else "",
                          p.queue if j == 0 else "", token, f"{c.base_ns:g}", f"{c.per_byte_ns:g}",
                          f"{c.per_entry_ns:g}", "" if kind == "none" else kind)
        t.caption = f"sum of base costs: {total:g} ns (per-byte, per-entry and queueing extra)"
        con.print(t)
    via = scheme.spec.via_root
    con.print("to and from other schemes' containers on a mixed host (via_root, docs/mixed-hosts.md): "
              + ("none: same-scheme flows only" if via is None else
                 f"sends {len(via.send)} pass(es) up to the root's {via.decision} route, receives by {via.by}: "
                 + ", ".join(via.receive) + (f", then {len(via.then)} pass(es)" if via.then else "")))
    assert STAGE_NAMES
    return EXIT_OK


# -- report -------------------------------------------------------------------------------

def cmd_report(args) -> int:
    import matplotlib  # matplotlib only when a report is asked for; no display needed
    matplotlib.use("Agg")
    from analysis.report import write
    if not Path(args.results).is_dir():
        _err(f"error: {args.results}: no such result directory")
        return EXIT_BAD_INPUT
    longlived.freeze()
    try:
        html_path, md_path = write(args.results, args.out, svg=args.svg, reruns=not args.no_reruns)
    except (FileNotFoundError, FileExistsError) as e:
        _err(f"error: {e}")
        return EXIT_BAD_INPUT
    print(f"report: {html_path}\nmarkdown: {md_path}")
    return EXIT_OK


# -- parser -------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netns-sim", description="Simulate Linux network-namespace isolation "
                                "schemes (the 2006 '[RFC] network namespaces' debate) from scenario files.")
    p.add_argument("--version", action="version", version=f"netns-sim {sim.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def scenario_args(sp):
        sp.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file, e.g. scenarios/rfc2006-schemes.yaml")
        sp.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                        help="override a value after extends: and before validation (repeatable); the value is "
                             "parsed as YAML; '*' selects every list element, e.g. --set hosts.*.cores=4")
        sp.add_argument("--seed", type=int, help="set run.seed")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")

    r = sub.add_parser("run", help="run a scenario and write a result directory",
                       description="Run every variant of SCENARIO once, in this process, and write DIR "
                                   "atomically in the same layout as netns-sim sweep: packets/ (Parquet dataset), "
                                   "points.csv, summary.csv, memory.csv, cores.csv, flows.csv, "
                                   "scenario.resolved.yaml, metadata.json, sweep.json.  A progress bar is shown "
                                   "on a terminal.  A file with a sweep: "
                                   "block is refused (exit 2): run it with netns-sim sweep.  Absurd sizes (engine "
                                   "events, memory, variants, hosts) are refused at validation; raise the limits "
                                   "with a limits: block in the scenario or --set limits.max_events=1e10 (README).")
    scenario_args(r)
    r.add_argument("--out", metavar="DIR", help="result directory (default: results/<scenario name>)")
    r.add_argument("--force", action="store_true", help="replace an existing result directory (atomically)")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a scenario without running it",
                       description="Load and validate SCENARIO (every variant, or every point of its sweep: block); "
                                   "print problems as FILE:LINE: key.path: message; exit 2 if there are any.  "
                                   "Size limits (limits: block, e.g. --set limits.max_events=1e10) are checked too.")
    scenario_args(v)
    v.add_argument("--print", action="store_true", help="print the resolved scenario (defaults filled in)")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schemes", help="list the isolation schemes",
                       description="The built-in isolation schemes with their passes per trip and capabilities.")
    s.add_argument("--format", choices=("table", "json"), default="table")
    s.add_argument("--scenario", metavar="FILE", help="also list the schemes defined in this scenario file")
    s.set_defaults(func=cmd_schemes)

    d = sub.add_parser("describe", help="show one scheme's passes and stages with their default costs",
                       description="Show SCHEME's passes and stages per trip, with the stage costs of a cost profile.")
    d.add_argument("scheme", metavar="SCHEME")
    d.add_argument("--profile", default="default", help="cost profile name or YAML path (default: default)")
    d.add_argument("--scenario", metavar="FILE", help="look SCHEME up among this scenario file's schemes too")
    d.add_argument("--format", choices=("table", "json"), default="table")
    d.set_defaults(func=cmd_describe)

    from sim.sweep import cli as sweep_cli  # the logic lives in sim/sweep/
    sw = sub.add_parser("sweep", help="run a scenario's sweep: block (points x replications) in parallel",
                        description="Run every point of SCENARIO's sweep: block on a local process pool or a Dask "
                                    "cluster; resumable; writes a partitioned Parquet dataset and summary.csv "
                                    "(mean and 95%% CI over replications).")
    sweep_cli.add_arguments(sw)
    sw.set_defaults(func=sweep_cli.cmd_sweep)

    rp = sub.add_parser("report", help="write the design-review report (HTML + Markdown) of a result directory",
                        description="Write one self-contained HTML file (figures embedded) and its Markdown twin "
                                    "from RESULTS_DIR (a result directory, or a directory of several), with the "
                                    "figures as PNG beside them (and SVG with --svg).")
    rp.add_argument("results", metavar="RESULTS_DIR")
    rp.add_argument("--out", metavar="FILE", help="HTML file to write (default: RESULTS_DIR/report.html); the "
                                                   "Markdown goes beside it as .md")
    rp.add_argument("--svg", action="store_true", help="also save every figure as SVG (vector) beside its PNG")
    rp.add_argument("--no-reruns", action="store_true",
                    help="do not re-run the reference variants at the cost ranges' corners for the claims' latency "
                         "parts (their robustness then says it was not evaluated)")
    rp.set_defaults(func=cmd_report)

    # Kernel calibration lives in sim.calibrate, which parses its own options (see `--help`).
    for name, summary in EXTERNAL_COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return p


EXTERNAL_COMMANDS = {
    "calibrate": "measure real namespace setups (root, iproute2) and fit a cost profile to them",
    "validate-real": "compare a profile's predictions with real namespace setups, held-out setups included",
}


def run_external(command: str, argv: list[str]) -> int:
    from sim.calibrate.__main__ import calibrate_main, validate_main
    return {"calibrate": calibrate_main, "validate-real": validate_main}[command](argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in EXTERNAL_COMMANDS:
        return run_external(argv[0], argv[1:])
    with signals.handled():           # SIGINT/SIGTERM -> Interrupted from here on (sim.signals)
        try:
            args = parser().parse_args(argv)
            return args.func(args)
        except (KeyboardInterrupt, Interrupted):
            _err(signals.message())
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return EXIT_OK


if __name__ == "__main__":
    longlived.own_process()                 # ``python -m sim.cli``, like the command (sim.signals.entry)
    sys.exit(main())
