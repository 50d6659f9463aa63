"""The docs site (mkdocs.yml, docs/) builds with `mkdocs build --strict`, offline: a broken link or anchor, a
page left out of the navigation, or anything the build would fetch fails the suite. The README's links into
it point at pages that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, in_ci


def _mkdocs_missing() -> str | None:
    if importlib.util.find_spec("mkdocs") and importlib.util.find_spec("material"):
        return None
    return "MkDocs with the Material theme is not installed (the docs extra: scripts/setup.sh)"


@pytest.fixture
def mkdocs() -> None:
    reason = _mkdocs_missing()
    if reason and in_ci():
        pytest.fail(f"CI must build the docs: {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)


def _build(site: Path) -> subprocess.CompletedProcess[str]:
    # Any fetch would go to a proxy that is not there, and fail: the build must not need the network.
    offline = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    env = {**os.environ, **offline, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_the_docs_site_builds_strictly_and_offline(mkdocs, tmp_path):
    site = tmp_path / "site"
    proc = _build(site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pages = {p.relative_to(ROOT / "docs").with_suffix("") for p in (ROOT / "docs").glob("*.md")}
    built = {p.parent.relative_to(site) for p in site.rglob("index.html")}
    assert {Path("index") if p == Path("index") else p for p in pages} - {Path("index")} <= built
    html = "".join(p.read_text() for p in site.rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html
    assert 'id="dyn524"' in (site / "error-codes" / "index.html").read_text()  # generated pages are in


@pytest.mark.slow
def test_a_broken_link_fails_the_strict_build(mkdocs, tmp_path):
    """The check can fail: the same site with one page linking to a page that does not exist."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for page in (ROOT / "docs").iterdir():
        (docs / page.name).symlink_to(page)
    (docs / "design.md").unlink()
    (docs / "design.md").write_text((ROOT / "docs" / "design.md").read_text() + "\n[gone](no-such-page.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text().replace("docs_dir: docs", f"docs_dir: {docs}"))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode != 0 and "no-such-page.md" in proc.stderr, proc.stderr


def test_the_readmes_links_resolve():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
