"""Machine formats of ``dyncc validate`` for CI: GitHub workflow annotations, SARIF 2.1.0, JUnit XML.

Each renderer takes the :class:`dyncc.api.Validation` of every file and returns the whole report as text.
Spec content (keys, values) reaches these reports through diagnostic messages, so every message passes
through :func:`dyncc.diagnostics.printable` first: a control character must neither drive a CI log nor
make the XML invalid.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from dyncc import __version__
from dyncc.codes import CodeInfo, registry
from dyncc.diagnostics import Diagnostic, Severity, format_yaml_path, printable

if TYPE_CHECKING:
    from dyncc.api import Validation

FORMATS = ("github", "sarif", "junit")

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# Used when the installed distribution names no home page (Project-URL) of its own.
FALLBACK_INFORMATION_URI = "https://pypi.org/project/dyncc/"

# What XML 1.0 cannot carry at all, even escaped (printable() has already turned the C0 controls into text).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_GITHUB_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render(fmt: str, results: Sequence[Validation]) -> str:
    """The report of ``results`` in ``fmt`` (one of :data:`FORMATS`), ending with a newline."""
    renderers: dict[str, Callable[[Sequence[Validation]], str]] = {
        "github": render_github,
        "sarif": render_sarif,
        "junit": render_junit,
    }
    return renderers[fmt](results)


def _full_message(diagnostic: Diagnostic) -> str:
    """The message with the YAML path and the hint: what a reader of an annotation needs to fix it."""
    text = f"{diagnostic.message}\nat {format_yaml_path(diagnostic.path)}"
    if diagnostic.hint:
        text += f"\nhint: {diagnostic.hint}"
    return printable(text)


def _relative(file: str) -> str:
    """``file`` relative to the working directory where it lies under it (CI annotates repository paths)."""
    absolute = Path(os.path.abspath(file))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return Path(file).as_posix()


def _file_of(result: Validation, diagnostic: Diagnostic) -> str:
    return diagnostic.location.file if diagnostic.location else result.file


# --- GitHub workflow commands ----------------------------------------------------------------------


def escape_github_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF are percent-encoded (GitHub's rule for data)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_github_property(text: str) -> str:
    """A workflow command's property value: as data, plus ``:`` and ``,`` which delimit properties."""
    return escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(result: Validation, diagnostic: Diagnostic) -> str:
    """``::error file=F,line=L,col=C,title=DYNnnn::message`` for one diagnostic."""
    props = [("file", _relative(_file_of(result, diagnostic)))]
    if diagnostic.location:
        props += [("line", str(diagnostic.location.line)), ("col", str(diagnostic.location.column))]
    props.append(("title", diagnostic.code))
    joined = ",".join(f"{key}={escape_github_property(printable(value))}" for key, value in props)
    command = _GITHUB_COMMAND[diagnostic.severity]
    return f"::{command} {joined}::{escape_github_data(f'{diagnostic.code}: {_full_message(diagnostic)}')}"


def render_github(results: Sequence[Validation]) -> str:
    lines = [github_annotation(r, d) for r in results for d in r.diagnostics]
    valid = sum(r.ok for r in results)
    # A plain line (not a command) so the log says what was checked even when all is well.
    lines.append(f"dyncc: {valid} of {len(results)} spec(s) valid")
    return "\n".join(lines) + "\n"


# --- SARIF 2.1.0 -----------------------------------------------------------------------------------


def _information_uri() -> str:
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("dyncc").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        _, _, url = entry.partition(",")
        if url.strip().startswith("https://"):
            return url.strip()
    return FALLBACK_INFORMATION_URI


def _sarif_rule(info: CodeInfo) -> dict:
    level = _SARIF_LEVEL[info.severity if info.severity in _SARIF_LEVEL else "error"]
    return {
        "id": info.code,
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.explanation},
        "help": {"text": f"{info.title}. {info.explanation}"},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": ["dyncc", _family(info)]},
    }


def _family(info: CodeInfo) -> str:
    try:
        return info.family
    except KeyError:  # a family the registry does not name yet still gets a rule
        return "other"


def _unregistered(code: str, severity: Severity) -> CodeInfo:
    """A rule for a code missing from codes.yaml (a test keeps that from happening; the report must not fail)."""
    return CodeInfo(code, severity, code, f"{code} has no entry in dyncc's code registry.", None)


def _sarif_location(result: Validation, diagnostic: Diagnostic) -> dict:
    physical: dict = {
        "artifactLocation": {"uri": quote(_relative(_file_of(result, diagnostic))), "uriBaseId": "SRCROOT"}
    }
    if diagnostic.location:
        physical["region"] = {"startLine": diagnostic.location.line, "startColumn": diagnostic.location.column}
    location: dict = {"physicalLocation": physical}
    if diagnostic.path:
        location["logicalLocations"] = [{"fullyQualifiedName": printable(format_yaml_path(diagnostic.path))}]
    return location


def sarif_report(results: Sequence[Validation]) -> dict:
    """One SARIF run: every registered code as a rule, one result per diagnostic."""
    rules = dict(registry())
    for r in results:
        for d in r.diagnostics:
            rules.setdefault(d.code, _unregistered(d.code, d.severity))
    order = sorted(rules)
    index = {code: i for i, code in enumerate(order)}
    sarif_results = [
        {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": _full_message(d)},
            "locations": [_sarif_location(r, d)],
        }
        for r in results
        for d in r.diagnostics
    ]
    root = Path.cwd().as_uri().rstrip("/") + "/"
    run = {
        "tool": {
            "driver": {
                "name": "dyncc",
                "version": __version__,
                "informationUri": _information_uri(),
                "rules": [_sarif_rule(rules[code]) for code in order],
            }
        },
        "originalUriBaseIds": {"SRCROOT": {"uri": root}},
        "artifacts": [{"location": {"uri": quote(_relative(r.file)), "uriBaseId": "SRCROOT"}} for r in results],
        "results": sarif_results,
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(results: Sequence[Validation]) -> str:
    return json.dumps(sarif_report(results), indent=2) + "\n"


# --- JUnit XML -------------------------------------------------------------------------------------


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", printable(text))


def _junit_suite(result: Validation) -> ET.Element:
    errors = [d for d in result.diagnostics if d.is_error]
    name = _xml(result.file)
    suite = ET.Element("testsuite", name=name, tests="1", failures=str(len(errors)), errors="0", skipped="0", time="0")
    case = ET.SubElement(suite, "testcase", classname="dyncc.validate", name=name, file=name, time="0")
    for d in errors:
        where = f"{d.location}: " if d.location else ""
        failure = ET.SubElement(case, "failure", type=d.code, message=_xml(f"{d.code}: {d.message}"))
        failure.text = _xml(f"{where}{d.code}: {_full_message(d)}")
    notes = [d for d in result.diagnostics if not d.is_error]
    if notes:
        # Warnings do not fail the case; they go where JUnit viewers show a passing case's output.
        out = ET.SubElement(case, "system-out")
        out.text = _xml("\n".join(f"{d.severity} {d.code}: {_full_message(d)}" for d in notes))
    return suite


def junit_tree(results: Sequence[Validation]) -> ET.Element:
    failures = sum(1 for r in results for d in r.diagnostics if d.is_error)
    root = ET.Element("testsuites", name="dyncc validate", tests=str(len(results)), failures=str(failures))
    root.extend(_junit_suite(r) for r in results)
    return root


def render_junit(results: Sequence[Validation]) -> str:
    tree = junit_tree(results)
    ET.indent(tree)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(tree, encoding="unicode") + "\n"
