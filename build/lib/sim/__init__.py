"""netns-sim: a discrete-event simulator of Linux network-namespace isolation schemes.

Public API: `sim.api` (scenario from a file, a dict or the pydantic models -> DataFrames);
`sim.core.simulate.simulate(scenario) -> Results` is the one place a model is built and run.
"""

__version__ = "0.1.0"
