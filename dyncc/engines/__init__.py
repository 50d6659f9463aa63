"""Engines: the programs a worker runs, each a package here that owns what is its own."""
