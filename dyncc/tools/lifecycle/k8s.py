"""`dyncc up -t k8s`: a thin wrapper over kubectl, for where a kubeconfig names a reachable cluster.

It runs what a user would: ``kubectl apply -k DIR``, ``kubectl wait --for=condition=Ready
dynamographdeployment/NAME`` (the Dynamo operator sets that condition once every component is ready), and
``kubectl port-forward svc/NAME-frontend`` (the Service the operator makes for the frontend, port 8000) for
the smoke test. Before applying anything it checks that kubectl is installed, that a kubeconfig exists,
and that its API server answers (DYN586 otherwise: nothing is applied). Ctrl-C, a failed wait or a failed
smoke test delete what was applied (``kubectl delete -k DIR``); ``--detach`` leaves it. Every later call
names the context `up` used, so `status` and `down` reach the same cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import yaml

from dyncc.api import BuildResult
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.k8s.pods import FRONTEND_HTTP_PORT
from dyncc.tools.lifecycle import facts, run
from dyncc.tools.lifecycle.state import DeploymentState, K8sRun, now, read_state, update_state, write_state

Echo = Callable[[str], None]
CHECK_TIMEOUT_S = 10  # kubectl --request-timeout of the reachability check
WAIT_STEP_S = 15  # one `kubectl wait`; progress is shown between steps
COMMAND_TIMEOUT_S = 120


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise DiagnosticError(
            [Diagnostic("DYN586", "kubectl is not installed", hint="install kubectl and a kubeconfig for the cluster")]
        )
    return path


def kubeconfig_files() -> list[Path]:
    """The kubeconfig files kubectl would read: $KUBECONFIG's list, else ~/.kube/config; those that exist."""
    listed = os.environ.get("KUBECONFIG")
    paths = [Path(p) for p in listed.split(os.pathsep) if p] if listed else [Path.home() / ".kube" / "config"]
    return [p for p in paths if p.is_file()]


def dgd_identity(directory: Path) -> tuple[str, str | None, str]:
    """(DGD name, namespace or None, frontend Service name) as the built manifest has them."""
    with open(directory / "dynamographdeployment.yaml", encoding="utf-8") as stream:
        dgd = yaml.safe_load(stream)
    meta = dgd["metadata"]
    spec = dgd.get("spec") or {}
    frontends = [c["name"] for c in spec.get("components") or [] if c.get("type") == "frontend"]
    frontends += [name for name, s in (spec.get("services") or {}).items() if s.get("componentType") == "frontend"]
    frontend = (frontends or ["frontend"])[0].lower()
    return meta["name"], meta.get("namespace"), f"{meta['name']}-{frontend}"


def commands(directory: Path, context: str | None, timeout_s: int, local_port: int = 0) -> dict[str, list[str]]:
    """Every kubectl command `up`, `status` and `down` run for the deployment built in ``directory``."""
    name, namespace, service = dgd_identity(directory)
    base = [kubectl(), *(["--context", context] if context else [])]
    ns = ["-n", namespace] if namespace else []
    return {
        "apply": [*base, "apply", "-k", str(directory)],
        "wait": [
            *base,
            *ns,
            "wait",
            "--for=condition=Ready",
            f"dynamographdeployment/{name}",
            f"--timeout={timeout_s}s",
        ],
        "conditions": [*base, *ns, "get", f"dynamographdeployment/{name}", "-o", "jsonpath={.status.conditions}"],
        "port-forward": [
            *base,
            *ns,
            "port-forward",
            "--address",
            "127.0.0.1",
            f"svc/{service}",
            f"{local_port}:{FRONTEND_HTTP_PORT}",
        ],  # fmt: skip
        "status": [*base, "get", "-k", str(directory)],
        "delete": [*base, "delete", "-k", str(directory), "--wait=true", f"--timeout={COMMAND_TIMEOUT_S}s"],
    }


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"no answer within {timeout:g} s")


def reachable_context() -> str | None:
    """kubectl's current context once its API server has answered; DYN586 when there is no cluster to use."""
    tool = kubectl()
    if not kubeconfig_files():
        where = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN586",
                    f"no kubeconfig ({where} does not exist): no Kubernetes cluster to deploy to",
                    hint="point KUBECONFIG at the cluster's kubeconfig, or use `dyncc build -t k8s` and apply it "
                    "where a cluster is reachable",
                )
            ]
        )
    current = _run([tool, "config", "current-context"], CHECK_TIMEOUT_S)
    context = current.stdout.strip() or None
    probe = _run([tool, "version", f"--request-timeout={CHECK_TIMEOUT_S}s", "-o", "json"], CHECK_TIMEOUT_S + 5)
    if probe.returncode != 0:
        said = [line for line in (probe.stderr or probe.stdout).splitlines() if line.strip()]
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN586",
                    f"no Kubernetes API server answers for context {context or '(none)'}: "
                    f"{(said[-1] if said else 'kubectl failed')[-400:]}",
                    hint="check `kubectl cluster-info` and the kubeconfig's server; nothing was applied",
                )
            ]
        )
    return context


def _failed(step: str, proc: subprocess.CompletedProcess[str]) -> Diagnostic:
    said = (proc.stderr or proc.stdout).strip()[-500:]
    return Diagnostic(
        "DYN587",
        f"kubectl {step} failed: {said}",
        hint="the message is kubectl's; the Dynamo operator must be installed",
    )


def up(result: BuildResult, timeout: float, *, smoke: bool, detach: bool, echo: Echo) -> int:
    (output,) = result.outputs
    directory, compilation = output.directory.resolve(), result.compilation
    context = reachable_context()  # before anything is applied
    name, namespace, _ = dgd_identity(directory)
    state = facts.new_state(compilation, "k8s", directory, facts.components(compilation, None, None))
    state = state.model_copy(update={"k8s": K8sRun(name=name, namespace=namespace, context=context)})
    kc = commands(directory, context, WAIT_STEP_S)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            echo(f"dyncc up: {signal.Signals(signum).name}, deleting the deployment")

    previous = {s: signal.signal(s, on_signal) for s in run.STOP_SIGNALS}
    applied = keep = False
    try:
        write_state(state)
        echo(f"dyncc up: kubectl apply -k {directory} (context {context or 'default'})")
        applied = True
        proc = _run(kc["apply"])
        if proc.returncode != 0:
            raise DiagnosticError([_failed("apply", proc)])
        if not _wait_ready(kc, name, timeout, echo, stopping):
            return 0
        echo(f"dyncc up: DynamoGraphDeployment {name} is Ready")
        if not stopping.is_set():
            with _port_forward(kc["port-forward"]) as url:
                state = update_state(state, url=url)
                from dyncc.tools.lifecycle.local import smoke_test

                if not smoke_test(url, compilation.plan.served_name, echo):
                    return 1
                if detach:
                    keep = True
                    echo(f"dyncc up: detached; `dyncc down {directory}` deletes it (kubectl delete -k)")
                    return 0
                if smoke:
                    return 0
                echo(f"dyncc up: serving {compilation.plan.served_name} at {url}/v1 (port-forward; Ctrl-C deletes it)")
                while not stopping.is_set():
                    stopping.wait(1)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if applied and not keep:
            for problem in delete(state, echo, "dyncc up"):
                echo(problem.render())


def _wait_ready(kc: dict[str, list[str]], name: str, timeout: float, echo: Echo, stopping: threading.Event) -> bool:
    """True once Ready; False when interrupted; DYN595 after ``timeout`` s, DYN587 when kubectl fails."""
    started = time.monotonic()
    while not stopping.is_set():
        proc = _run(kc["wait"], WAIT_STEP_S + 30)
        if proc.returncode == 0:
            return True
        if "timed out" not in proc.stderr and proc.returncode != 124:
            raise DiagnosticError([_failed("wait", proc)])
        conditions = _run(kc["conditions"], 30).stdout.strip()[-300:]
        waited = time.monotonic() - started
        if waited >= timeout:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN595",
                        f"DynamoGraphDeployment {name} was not Ready after {timeout:g} s: {conditions}; it is deleted",
                        hint="raise --timeout; `kubectl describe dynamographdeployment` and the pods' events say why",
                    )
                ]
            )
        echo(f"dyncc up: waiting for {name} to be Ready ({waited:.0f} s): {conditions or 'no conditions yet'}")
    return False


class _port_forward:  # noqa: N801 - used as a context manager, named for what it does
    """``kubectl port-forward`` on a free loopback port, stopped on exit; yields the local URL."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.process: subprocess.Popen[str] | None = None
        self.url: str | None = None
        self._started = threading.Event()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:  # "Forwarding from 127.0.0.1:PORT -> 8000"
            if line.startswith("Forwarding from 127.0.0.1:") and self.url is None:
                self.url = "http://127.0.0.1:" + line.split("127.0.0.1:", 1)[1].split()[0]
                self._started.set()
        self._started.set()

    def __enter__(self) -> str:
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._started.wait(30)
        if self.url is None:
            self.__exit__()
            raise DiagnosticError(
                [Diagnostic("DYN587", "kubectl port-forward to the frontend did not start", hint="kubectl get svc")]
            )
        return self.url

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


def delete(state: DeploymentState, echo: Echo, who: str = "dyncc down") -> list[Diagnostic]:
    assert state.k8s is not None
    kc = commands(Path(state.directory), state.k8s.context, WAIT_STEP_S)
    echo(f"{who}: kubectl delete -k {state.directory}")
    proc = _run(kc["delete"], COMMAND_TIMEOUT_S + 30)
    if proc.returncode != 0 and "NotFound" not in proc.stderr:
        return [_failed("delete", proc)]
    update_state(read_state(state.directory), ended_at=now())
    return []


def status_text(state: DeploymentState) -> tuple[bool, str]:
    """(Ready, kubectl's listing of the deployment's objects and its conditions)."""
    assert state.k8s is not None
    kc = commands(Path(state.directory), state.k8s.context, 1)
    listing = _run(kc["status"], 60)
    ready = _run(kc["wait"], 30).returncode == 0
    return ready, (listing.stdout or listing.stderr).strip()
