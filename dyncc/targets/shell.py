"""Shell words for targets that write bash: every value quoted, except words marked :class:`Raw`.

Values come from the spec (model names, env values, paths); quoting them with :func:`shlex.quote`
makes them inert data whatever they contain. ``Raw`` is for the few words a template itself writes
that must expand at run time, such as ``"$HERE/engine/prefill.yaml"``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
from collections.abc import Callable
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


# How templates are compiled; part of the template cache's directory name, because jinja keys its
# bytecode cache on template name and source only.
_TEMPLATE_OPTIONS = dict(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs (as Python keeps .pyc): compiling them is most of a small
    build's render time. Only an optimisation: a cache that cannot be written is skipped."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _template_cache() -> jinja2.BytecodeCache | None:
    """``$DYNCC_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/dyncc`` or ``~/.cache/dyncc``."""
    base = os.environ.get("DYNCC_CACHE_DIR")
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dyncc")
    if not base:
        return None
    key = hashlib.sha256(repr(sorted(_TEMPLATE_OPTIONS.items())).encode()).hexdigest()[:12]
    directory = os.path.join(base, f"templates-jinja{jinja2.__version__}-{key}")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return _TemplateCache(directory)


def _template_source(package: str, name: str) -> tuple[str, str, Callable[[], bool]]:
    # The package-qualified file name keeps cache entries of same-named templates apart.
    text = resources.files(package).joinpath("templates", name).read_text("utf-8")
    return text, f"{package.replace('.', '/')}/templates/{name}", lambda: True


@functools.cache
def template_environment(package: str) -> jinja2.Environment:
    """Jinja for shell templates kept in ``<package>/templates``: strict, no HTML escaping, `q` quotes."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(functools.partial(_template_source, package)),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_template_cache(),
        **_TEMPLATE_OPTIONS,
    )
    env.filters["q"] = quote
    return env
