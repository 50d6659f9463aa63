"""Values that end up in processes and files (DYN113, DYN115-118): secrets, arguments that look like
options, sizes Linux refuses to exec, control characters, local model paths."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic

# Words of an env name that say it holds a secret, wherever they sit in the name (HF_TOKEN_VALUE,
# GITHUB_PAT, dbPassword): the name is split on `_`, `-` and lower-to-upper case changes.
SECRET_WORDS = frozenset(
    {"TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "PASS", "PWD", "PASSPHRASE",
     "KEY", "KEYS", "APIKEY", "CREDENTIAL", "CREDENTIALS", "CREDS", "PAT", "AUTH", "PRIVATE", "COOKIE"}
)  # fmt: skip
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Shapes of well-known credentials, so that a secret under an innocent name is caught too.
SECRET_VALUE_SHAPES = (
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("an OpenAI/Anthropic-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a URL with a password", re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^/\s:@]+:[^/\s@]+@")),
)
_HIGH_ENTROPY_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def secret_words(name: str) -> set[str]:
    return {w.upper() for w in _NAME_WORDS.findall(name)} & SECRET_WORDS


def _entropy_bits_per_char(text: str) -> float:
    counts = {c: text.count(c) for c in set(text)}
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_shape(value: str) -> str | None:
    """What kind of credential ``value`` looks like, or None."""
    for what, shape in SECRET_VALUE_SHAPES:
        if shape.search(value):
            return what
    for run in _HIGH_ENTROPY_CANDIDATE.findall(value):
        mixed = sum(bool(re.search(cls, run)) for cls in ("[a-z]", "[A-Z]", "[0-9]")) >= 3
        # Random 32+ character keys over ~64 symbols carry > 4.5 bits per character; words and paths far less.
        if mixed and _entropy_bits_per_char(run) > 4.5:
            return "a long random string (an API key?)"
    return None


_SECRET_HINT = (
    "pass secrets by reference: k8s.hf_token_secret (a Secret), or the job's environment "
    "(exported before launch.sh / sbatch)"
)


@rule("DYN113", "secrets-by-reference")
def secrets_only_by_reference(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Secrets never sit in the spec: it is committed, and its values land in scripts and manifests."""
    for p in graph.pools():
        for name, value in p.spec.env.items():
            words, shape = secret_words(name), secret_shape(value)
            if words or shape:
                why = f"its name says {'/'.join(sorted(words))}" if words else f"its value looks like {shape}"
                yield finding(
                    f"env {name} looks like a secret ({why}); its value would be written into generated files",
                    p.path + ("env", name),
                    _SECRET_HINT,
                )
    model = graph.spec.model
    for field in ("path", "served_name"):
        value = getattr(model, field)
        shape = secret_shape(value) if value else None
        if shape:
            yield finding(
                f"model.{field} holds what looks like {shape}; it would be written into generated files",
                ("model", field),
                "name the model without credentials; give the token by reference (k8s.hf_token_secret, or "
                "HF_TOKEN exported before launch)",
            )


@rule("DYN115", "name-not-an-option")
def names_not_options(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Values passed as command-line arguments do not start with `-` (the worker would read an option)."""
    model = graph.spec.model
    for field in ("path", "served_name"):
        value = getattr(model, field)
        if value and value.startswith("-"):
            yield finding(
                f"model.{field} {value[:40]!r} starts with '-': the worker's argument parser would read it as "
                f"an option, not as the value of {'--model-path' if field == 'path' else '--served-model-name'}",
                ("model", field),
                "use a name that starts with a letter or digit (a local path can start with ./)",
            )


@rule("DYN118", "relative-model-path-exists")
def relative_model_path_exists(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A model.path written as a relative or home path (./, ../, ~) names a directory beside the spec."""
    path = graph.spec.model.path
    if graph.facts.local_dir is None and path.startswith(("./", "../", "~")):
        yield finding(
            f"model.path {path[:80]!r} looks like a local path, but there is no such directory "
            + (
                "(`~` is not expanded: no shell reads the spec)"
                if path.startswith("~")
                else "relative to the spec file"
            ),
            ("model", "path"),
            "relative paths are read from the spec file's directory and written absolute; give an existing "
            "directory, an absolute path, or a Hugging Face id (org/name)",
        )


# Linux refuses (E2BIG) any single argument or environment string over MAX_ARG_STRLEN (32 pages), and
# all of them together over ARG_MAX (usually 2 MiB, shared with the environment the worker inherits).
MAX_ARG_STRLEN = 131_072
MAX_WORKER_ARGS_BYTES = 1_048_576


def _arg_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1  # + the terminating NUL


@rule("DYN116", "arguments-fit-exec")
def arguments_fit_exec(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Each worker's arguments and environment fit what Linux passes to a new process."""
    model = graph.spec.model
    words = {("model", "path"): model.path, ("model", "served_name"): model.name}
    for path, word in words.items():
        if _arg_bytes(word) > MAX_ARG_STRLEN:
            yield finding(
                f"{'.'.join(path)} is {_arg_bytes(word)} bytes: Linux refuses a single argument over "
                f"{MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN), so no worker could start",
                path if path[1] == "path" or model.served_name else ("model", "path"),
                "shorten it",
            )
    shared = sum(_arg_bytes(w) for w in words.values())
    for p in graph.pools():
        env_bytes = 0
        for name, value in p.spec.env.items():
            size = _arg_bytes(f"{name}={value}")
            env_bytes += size
            if size > MAX_ARG_STRLEN:
                yield finding(
                    f"env {name} is {size} bytes: Linux refuses an environment string over {MAX_ARG_STRLEN} bytes",
                    p.path + ("env", name),
                    "pass large data as a file, not an environment variable",
                )
        if shared + env_bytes > MAX_WORKER_ARGS_BYTES:
            yield finding(
                f"a {p.role} worker's arguments and environment take {shared + env_bytes} bytes; dyncc keeps them "
                f"under {MAX_WORKER_ARGS_BYTES} (Linux's ARG_MAX, usually 2 MiB, also holds the inherited environment)",
                p.path + ("env",),
                "pass large data as a file, not environment variables",
            )


# C0 controls but tab and newline (both legitimate in an environment value), DEL and C1 controls: NUL
# cannot be passed at all (exec strings end at NUL), the others rewrite the terminal of whoever prints
# the value (ESC sequences) or are lost or changed in YAML and manifests.
_ENV_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@rule("DYN117", "env-value-printable")
def env_values_printable(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Environment values hold no NUL, escape or other control characters (tab and newline are fine)."""
    for p in graph.pools():
        for name, value in p.spec.env.items():
            found = _ENV_CONTROL.search(value)
            if found:
                yield finding(
                    f"env {name} holds the control character U+{ord(found.group()):04X} at offset {found.start()}"
                    + (": no process can receive a NUL in its environment" if found.group() == "\0" else ""),
                    p.path + ("env", name),
                    "remove control characters from the value (tab and newline are allowed)",
                )
