"""The tools over the API: commands that use the library (:mod:`dyncc.api`) and that a build never imports.

- :mod:`.importer` / :mod:`.import_input`: ``dyncc import`` (a Kubernetes deployment back to a spec).
- :mod:`.lsp`: the language server. :mod:`.views`: ``graph`` and ``explain``. :mod:`.diff`, :mod:`.migrate`.
- :mod:`.sla`: ``init --from-sla`` and ``estimate`` (AIConfigurator through :mod:`dyncc.aic`).
- :mod:`.sweep`, :mod:`.twin`: sweeps and the timed twin's report. :mod:`.formats`: ``validate``'s CI formats.
- :mod:`.golden`: the golden tree's files. :mod:`.lifecycle`: ``up``/``down``/``status``/``logs``/``bench``.

Nothing below this package imports it (tests/test_layers.py); tests/test_import_cost.py checks a build
leaves it unimported.
"""
