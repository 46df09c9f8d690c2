# %% [markdown]
# # netns-sim from Python
#
# A notebook-style script (each `# %%` is a cell; it runs as is with `python`, in VS Code /
# Jupytext as a notebook, or pasted cell by cell into Jupyter). The tests execute it
# (tests/test_api.py), so every call here works.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import sim.api as ns
from analysis.figures import figure
from sim.frontdoor.scenario import FlowSpec, HostSpec, RunSpec, Scenario

# %% [markdown]
# ## A scenario as a dict: the same keys as a YAML file
# `topology:` generates hosts and links, `compare:` makes a grid of variants, `--set`-style
# overrides go in `sets`.

# %%
scenario = {
    "name": "notebook",
    "topology": {"generator": "star", "n_hosts": 2, "host": {"cores": 2, "namespaces": 10}},
    "flows": [{"name": "in", "src": "h0:wire", "dst": "h0:ns*", "rate_pps": 100_000},
              {"name": "across", "src": "h0:ns0", "dst": "h1:ns1", "rate_pps": 50_000}],
    "run": {"duration_ns": 2e6, "warmup_ns": 2e5},
    "compare": {"hosts.*.scheme": ["host", "l2-routed", "l2-bridged"]},
}
res = ns.run(scenario, sets=["flows.0.rate_pps=150000"])
print(res.path)            # a result directory like `netns-sim run` writes: `netns-sim report` reads it

# %% [markdown]
# ## DataFrames

# %%
p50 = (res.summary.query("metric == 'latency_p50_ns'")
       .pivot_table(index="hosts.*.scheme", columns="trip", values="value"))
print(p50)
packets = res.packets(["latency_ns", "n_passes"])
print(packets.groupby(["hosts.*.scheme", "trip"])["n_passes"].max())
print(res.memory.groupby(["scheme", "namespaces"])["bytes"].sum().unstack())

# %% [markdown]
# ## Figures, inline in a notebook (the report's figures, by name)

# %%
fig = figure(res, "latency_cdf")
fig2, ax = plt.subplots()
p50.plot.bar(ax=ax, ylabel="p50 latency (ns)")

# %% [markdown]
# ## A scenario from the pydantic models, and `extends:`
# `ns.simulate` runs one validated `Scenario` in memory, without writing files.

# %%
model = Scenario(hosts=[HostSpec(name="h0", scheme="l2-routed", namespaces=4)],
                 flows=[FlowSpec(src="h0:wire", dst="h0:ns1", rate_pps=50_000)],
                 run=RunSpec(duration_ns=1e6, warmup_ns=1e5))
one = ns.simulate(model)
print(one.summary.query("metric in ['sent', 'delivered', 'latency_mean_ns']")[["trip", "metric", "value"]])
print(ns.run(model).summary["metric"].nunique(), "metrics from the same model written as a result")

# `extends:` a YAML file (a path relative to base_dir); the dict's keys merge over it
base_dir = Path(tempfile.mkdtemp())
(base_dir / "base.yaml").write_text("hosts: [{name: h0, cores: 2, namespaces: 8}]\n"
                                    "flows: [{src: h0:wire, dst: h0:ns*, rate_pps: 1.0e5}]\n"
                                    "run: {duration_ns: 1.0e6, warmup_ns: 1.0e5}\n")
extended = ns.run({"extends": "base.yaml", "compare": {"hosts.*.namespaces": [8, 800]}}, base_dir=base_dir)
print(extended.summary.query("metric == 'latency_p50_ns'")[["hosts.*.namespaces", "value"]])

# %% [markdown]
# ## Bad input is an exception with the command line's message

# %%
try:
    ns.run({**scenario, "flows": [{"src": "h0:wire", "dst": "h0:ns1", "rate_pps": -5}]})
except ns.ScenarioError as e:
    print(e)
