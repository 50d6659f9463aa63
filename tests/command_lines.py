"""Every Dynamo command line in a build's output, read back from the files dyncc wrote: the local launch
script, the Slurm job and its step script, the compose file and the Kubernetes manifests.

Each is a `CommandLine`: which file, which component (frontend, worker = dynamo.trtllm, mocker) and the
argv after `-m dynamo.<module>`, as the shell or the container runtime would pass it. Shell variables
("$HERE/engine/x.yaml") stay as written: they are values, never flags.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

COMPONENTS = {"dynamo.frontend": "frontend", "dynamo.trtllm": "worker", "dynamo.mocker": "mocker"}
SHELL_FILES = ("*.sh", "*.sbatch")
YAML_FILES = ("*.yaml", "*.yml")
_END_OF_COMMAND = re.compile(r"^(?:;|&&?|\|\|?|\d*[<>].*)$")  # control operators and redirections


@dataclasses.dataclass(frozen=True)
class CommandLine:
    where: str  # "local/launch.sh:152"
    component: str
    argv: tuple[str, ...]


def _module_argv(words: list[str]) -> tuple[str, list[str]] | None:
    """(component, argv) when `words` run `python -m dynamo.<x>` (behind env, wrappers, srun...)."""
    for at in range(len(words) - 1):
        if words[at] == "-m" and words[at + 1] in COMPONENTS:
            argv = []
            for word in words[at + 2 :]:
                if _END_OF_COMMAND.match(word):
                    break
                argv.append(word)
            return COMPONENTS[words[at + 1]], argv
    return None


def _shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with backslash-continued lines joined."""
    start, parts = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        start = start or number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        yield start, " ".join([*parts, line])
        start, parts = 0, []
    if parts:
        yield start, " ".join(parts)


def shell_command_lines(text: str, where: str) -> Iterator[CommandLine]:
    """Command lines of a shell script."""
    for number, line in _shell_lines(text):
        if "dynamo." not in line or line.lstrip().startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # a line of a here-document or a multi-line string: not a command
            continue
        found = _module_argv(words)
        if found:
            yield CommandLine(f"{where}:{number}", found[0], tuple(found[1]))


def _containers(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, mapping) for every mapping with a command or args (compose services, k8s containers)."""
    if isinstance(node, dict):
        if isinstance(node.get("command"), (list, str)) or isinstance(node.get("args"), list):
            yield path, node
        for key, value in node.items():
            yield from _containers(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            name = value.get("name", index) if isinstance(value, dict) else index
            yield from _containers(value, f"{path}/{name}")


def yaml_command_lines(text: str, where: str) -> Iterator[CommandLine]:
    """Command lines of compose services and Kubernetes containers: command + args, or a `sh -c` script."""
    for document in yaml.safe_load_all(text):
        for path, container in _containers(document):
            command = container.get("command") or []
            words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
            words += [str(w) for w in container.get("args") or []]
            at = f"{where}:{path}"
            if len(words) >= 3 and Path(words[0]).name in ("sh", "bash") and words[1] == "-c":
                yield from shell_command_lines(words[2], at)
                continue
            found = _module_argv(words)
            if found:
                yield CommandLine(at, found[0], tuple(found[1]))


def build_command_lines(out: Path) -> list[CommandLine]:
    """Every command line under a `dyncc build -o OUT` tree, in file order."""
    lines: list[CommandLine] = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        where = str(path.relative_to(out))
        if any(path.match(g) for g in SHELL_FILES):
            lines += shell_command_lines(path.read_text(), where)
        elif any(path.match(g) for g in YAML_FILES) and "engine" not in path.parts:
            lines += yaml_command_lines(path.read_text(), where)
    return lines


def plan_worker_args(
    plan: Any,
    pool: Any,
    model: str = "/model",
    engine_dir: str = "/engine",
    data_dir: str = "/data",
    bootstrap: int | None = None,
    revision: str | None = None,
) -> list[str]:
    """A pool's worker arguments (after `-m <module>`) as a target putting its files at these paths writes
    them: the plan's command line with its slots filled in."""

    def slot(s: Any) -> str | None:
        return {
            "model": model,
            "local_model": model,
            "engine_file": f"{engine_dir}/{s.name}",
            "data_file": f"{data_dir}/{s.name}",
            "bootstrap_port": None if bootstrap is None else str(bootstrap),
            "revision": revision,
        }[s.kind]

    return [str(w) for w in plan.worker_args(pool, slot)]
