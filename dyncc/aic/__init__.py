"""The AIConfigurator adaptor: its process (:mod:`.runner`, run in its own interpreter by ``_aic_worker.py``)
and the mapping between its rows and dyncc's pools (:mod:`.mapping`). The timed twin (a build) and the
``init --from-sla``/``estimate`` tools (:mod:`dyncc.tools.sla`) use it."""
