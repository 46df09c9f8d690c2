"""The scenario front door: YAML files, dicts or pydantic models -> validated variants, with
``FILE:LINE: key.path: message (fix: ...)`` errors for bad input (loader.py is the entry)."""
