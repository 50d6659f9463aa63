"""Running what dyncc builds: `dyncc up` on this machine, on Slurm and on Kubernetes, and `status`, `logs`,
`down` and `bench` (the SLA gate) for a deployment `up` started, found by its directory.

- :mod:`.state`: the state file (``<dir>/run/up.json``) that says what runs and how to find exactly it.
- :mod:`.local`, :mod:`.slurm`, :mod:`.k8s`: start, wait, smoke-test, stop, per target.
- :mod:`.logs`: the log files, and following them. :mod:`.gate`: the benchmark and its verdict.
- :mod:`.api`: the functions the commands (:mod:`.commands`) call.
"""
