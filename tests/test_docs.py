"""The code's (and the README's) citations of docs/platforms.md point at headings that exist, and
nothing cites the old PLATFORMS.md, a file that was never in the repository."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "platforms.md"
CITING = ("connector", "adapters", "mappings", "tests/fakes")
CITATION = re.compile(r"docs/platforms\.md#([A-Za-z0-9_-]+)")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKC", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor, numbered as GitHub numbers repeats (-1, -2, ...); fenced code skipped."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        slug = github_slug(heading.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _python_files(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py"))


def test_slugs_follow_github():
    assert github_slug("Shopify webhooks") == "shopify-webhooks"
    assert github_slug("ShopifyAPI Python package") == "shopifyapi-python-package"
    assert github_slug("wc-api-python") == "wc-api-python"
    assert github_slug("Money, time & `dates`") == "money-time--dates"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### A b\n") == {"a", "a-1", "a-b"}


def test_every_cited_anchor_is_a_heading_of_docs_platforms():
    known = anchors(DOC.read_text(encoding="utf-8"))
    cited: dict[str, list[str]] = {}
    readme = [ROOT / "README.md"] if (ROOT / "README.md").exists() else []
    for path in [*_python_files(*CITING), *readme]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for anchor in CITATION.findall(line):
                cited.setdefault(anchor, []).append(f"{path.relative_to(ROOT)}:{number}")
    assert cited, "no code cites docs/platforms.md any more: is CITATION still right?"
    missing = {anchor: where for anchor, where in cited.items() if anchor not in known}
    assert not missing, f"cited anchors with no heading in docs/platforms.md: {missing}"


def test_the_doc_links_only_to_its_own_headings():
    text = DOC.read_text(encoding="utf-8")
    missing = set(re.findall(r"\]\(#([^)]+)\)", text)) - anchors(text)
    assert not missing, f"links in docs/platforms.md to headings it does not have: {sorted(missing)}"


def test_no_code_cites_platforms_md():
    old = re.compile(r"(?<![\w/])PLATFORMS\.md")
    citing = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _python_files("connector", "adapters", "mappings", "tests", "bench", "scripts")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if old.search(line) and path != Path(__file__).resolve()
    ]
    assert not citing, f"these still cite PLATFORMS.md, which is not in the repository: {citing}"
