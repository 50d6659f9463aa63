"""SLA-driven topology choice and estimates from AIConfigurator (run in a subprocess; see runner.py)."""
