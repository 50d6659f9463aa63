"""Shell words for targets that write bash: every value quoted, except words marked :class:`Raw`.

Values come from the spec (model names, env values, paths); quoting them with :func:`shlex.quote`
makes them inert data whatever they contain. ``Raw`` is for the few words a template itself writes
that must expand at run time, such as ``"$HERE/engine/prefill.yaml"``.
"""

from __future__ import annotations

import functools
import shlex
from importlib import resources

import jinja2


class Raw(str):
    """A shell word written as is because it must expand (never built from spec values)."""


def quote(word: object) -> str:
    return str(word) if isinstance(word, Raw) else shlex.quote(str(word))


def shell_words(words: list) -> str:
    return " ".join(quote(w) for w in words)


def ready_probe_text() -> str:
    """The readiness probe (``ready_probe.py``) generated scripts run; shipped beside them as ``ready.py``."""
    return resources.files(__package__).joinpath("ready_probe.py").read_text("utf-8")


@functools.lru_cache(maxsize=None)
def template_environment(package: str) -> jinja2.Environment:
    """Jinja for shell templates kept in ``<package>/templates``: strict, no HTML escaping, `q` quotes."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files(package).joinpath("templates", name).read_text("utf-8")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = quote
    return env
