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
import stat
from collections.abc import Callable
from importlib import resources
from typing import Any

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
_TEMPLATE_OPTIONS: dict[str, Any] = dict(
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False
)


def _private(st: os.stat_result, kind: Callable[[int], bool]) -> bool:
    """Of the expected kind (from lstat/fstat: never through a symlink), owned by us, closed to others."""
    return kind(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs (as Python keeps .pyc): compiling them is most of a small
    build's render time. Only an optimisation: a cache that cannot be written is skipped.

    Loading a cached template runs its code, so an entry is used only when nobody else could have
    written it: the directory and the file must be ours and closed to group and others (else the entry
    is ignored and the template compiled afresh). The key covers the template's source and jinja's
    version, not just its name, so an entry is never used for other source."""

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> jinja2.bccache.Bucket:
        key = hashlib.sha256(
            f"{jinja2.__version__}\0{name}\0{filename}\0".encode() + source.encode("utf-8", "surrogatepass")
        ).hexdigest()
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            fd = os.open(self._get_cache_filename(bucket), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return  # missing, a symlink, or unreadable: compile instead
        with os.fdopen(fd, "rb") as f:
            if _private(os.fstat(fd), stat.S_ISREG) and _private(os.lstat(self.directory), stat.S_ISDIR):
                bucket.load_bytecode(f)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)  # a private temporary file (mode 0600), renamed into place
        except OSError:
            pass


def _template_cache() -> jinja2.BytecodeCache | None:
    """``$DYNCC_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/dyncc`` or ``~/.cache/dyncc``.

    No cache (and no error) unless the directory is ours alone: owned by us, mode 0700, inside a base
    directory that only we can write to (else another user could swap it)."""
    base = os.environ.get("DYNCC_CACHE_DIR")
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dyncc")
    if not base:
        return None
    key = hashlib.sha256(repr(sorted(_TEMPLATE_OPTIONS.items())).encode()).hexdigest()[:12]
    directory = os.path.join(base, f"templates-jinja{jinja2.__version__}-{key}")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        base_stat, dir_stat = os.stat(base), os.lstat(directory)
    except OSError:
        return None
    base_ours = base_stat.st_uid == os.geteuid() and not base_stat.st_mode & 0o022
    if not (base_ours and _private(dir_stat, stat.S_ISDIR)):
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
