"""The documentation site (mkdocs.yml) covers every public module and is navigable from home.

`make docs` (run by `make test`) builds the site with ``mkdocs build --strict``, which fails
on a broken link, anchor or API reference; these tests check what a build cannot know.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_public_api import PUBLIC_MODULES  # tests/ is on sys.path (no __init__.py)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_api_reference_documents_every_public_module() -> None:
    documented = {
        name
        for page in (DOCS / "reference").glob("*.md")
        for name in _DIRECTIVE.findall(page.read_text())
    }
    missing = sorted(set(PUBLIC_MODULES) - documented)
    assert missing == [], f"add a '::: module' entry to a page of docs/reference/ for {missing}"


def test_home_links_to_what_a_newcomer_looks_for_first() -> None:
    links = set(_LINK.findall((DOCS / "index.md").read_text()))
    assert "prefork.md#gunicorn" in links  # the gunicorn recipe
    assert "jobs.md#the-decorator" in links  # the jobs options
    assert "reference/otelkit.md#otelkit.configure" in links  # the configure() reference


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    listed = set(re.findall(r"^\s*-\s+(?:[^:#\n]+:\s+)?([\w/.-]+\.md)\s*$", nav, re.MULTILINE))
    pages = {str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")}
    assert pages - listed == set()
