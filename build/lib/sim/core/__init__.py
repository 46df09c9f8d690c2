"""The model core: the engine, hosts and their passes, schemes, costs, memory, topology,
traffic, records, and `simulate()` (simulate.py), the one place a model is built and run.
Components talk to the model only through `interfaces.ModelServices`."""
