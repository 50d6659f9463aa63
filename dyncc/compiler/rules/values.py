"""Values that end up in processes and files (DYN113, DYN115-118): secrets, arguments that look like
options, sizes Linux refuses to exec, control characters, local model paths."""

from __future__ import annotations

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
# A last word that makes the variable name a place or a measure, not the secret itself: HF_TOKEN_PATH
# names a file, MAX_TOKENS_LIMIT a number, SECRET_NAME a Kubernetes Secret.
_REFERENCE_WORDS = frozenset(
    {"PATH", "FILE", "DIR", "NAME", "ENV", "VAR", "REF", "MOUNT", "SIZE", "LEN", "LENGTH", "LIMIT", "COUNT",
     "NUM", "MAX", "MIN", "TTL", "TIMEOUT", "ENABLE", "ENABLED", "DISABLE", "DISABLED"}
)  # fmt: skip
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Shapes real credentials have, so that a secret under an innocent name is caught too. Each is a token's
# own format (prefix and alphabet), never randomness alone: model ids (nvidia/Llama-4-Maverick-17B-128E-
# Instruct-FP8), revisions, digests and cache paths (models--org--name/snapshots/<40 hex>) look random too.
_NOT_AFTER = r"(?<![A-Za-z0-9_./-])"
SECRET_VALUE_SHAPES = (
    ("a Hugging Face token", re.compile(_NOT_AFTER + r"hf_[A-Za-z0-9]{30,}(?![A-Za-z0-9])")),
    ("an OpenAI/Anthropic-style API key", re.compile(_NOT_AFTER + r"sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(_NOT_AFTER + r"(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("an AWS access key id", re.compile(_NOT_AFTER + r"(AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])")),
    ("a Slack token", re.compile(_NOT_AFTER + r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("an NGC/NVIDIA API key", re.compile(_NOT_AFTER + r"nvapi-[A-Za-z0-9_-]{30,}")),
    ("a JSON Web Token", re.compile(_NOT_AFTER + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a URL with a password", re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^/\s:@]+:[^/\s@]+@")),
)
# Values that cannot be a secret whatever the name says: empty, numbers, switches, a reference to another
# variable (${HF_TOKEN}), a path to a file that holds the secret.
_NOT_A_SECRET_VALUE = re.compile(
    r"^(|[-+]?[0-9][0-9_.]*|true|false|yes|no|on|off|none|null|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|[/~.][^\s]*)$",
    re.IGNORECASE,
)


def secret_words(name: str) -> set[str]:
    """The words of an env name that say it holds a secret (none when its last word makes it a reference)."""
    words = [w.upper() for w in _NAME_WORDS.findall(name)]
    if words and words[-1] in _REFERENCE_WORDS:
        return set()
    return set(words) & SECRET_WORDS


def secret_shape(value: str) -> str | None:
    """What kind of credential ``value`` looks like, by the shapes real tokens have, or None."""
    for what, shape in SECRET_VALUE_SHAPES:
        if shape.search(value):
            return what
    return None


def secret_finding(name: str, value: str) -> str | None:
    """Why the variable ``name=value`` holds a secret, or None: a credential's shape anywhere, or a name that
    says secret over a value that could be one (not a number, switch, path or variable reference)."""
    shape = secret_shape(value)
    if shape:
        return f"its value looks like {shape}"
    words = secret_words(name)
    if words and not _NOT_A_SECRET_VALUE.match(value.strip()):
        return f"its name says {'/'.join(sorted(words))}"
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
            why = secret_finding(name, value)
            if why:
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
