"""netns-sim: a discrete-event simulator of Linux network-namespace isolation schemes.

Public API: `sim.run.run(scenario) -> Results`; see `sim.scenario.Scenario` for the input.
"""

__version__ = "0.1.0"
