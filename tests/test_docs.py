"""The documentation holds together: every relative link in the README and docs/ leads to a file and heading
that exist, every `connector …` command and option it shows is one the CLI has, every script and bench it
names is there, and the README stays a page or two. The code's citations of docs/platforms.md point at
headings that exist, and nothing cites the old PLATFORMS.md, a file that was never in the repository."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "platforms.md"
CITING = ("connector", "adapters", "mappings", "tests/fakes")
CITATION = re.compile(r"docs/platforms\.md#([A-Za-z0-9_-]+)")


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # what a reader follows links through


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
    for path in [*_python_files(*CITING), *PAGES]:
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


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _prose_and_code(markdown: str) -> tuple[list[str], list[str]]:
    """(lines outside fenced blocks, pieces of code: each fenced line and each inline `span`)."""
    prose, code, fenced = [], [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            code.append(line)
        else:
            prose.append(line)
            code.extend(CODE_SPAN.findall(line))
    return prose, code


def broken_links(page: Path) -> list[str]:
    prose, _ = _prose_and_code(page.read_text(encoding="utf-8"))
    broken = []
    for line in prose:
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
                broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_every_relative_link_of_the_readme_and_docs_leads_somewhere():
    assert len(PAGES) > 10, "the docs/ pages are missing"
    broken = [problem for page in PAGES for problem in broken_links(page)]
    assert not broken, broken


def test_a_broken_link_is_caught(tmp_path):
    (tmp_path / "there.md").write_text("# Here\n")
    page = tmp_path / "page.md"
    page.write_text("[a](there.md#here) [b](gone.md) [c](there.md#nowhere) [d](https://x.test) `[e](no.md)`\n")
    assert broken_links(page) == ["page.md: gone.md (no such file)", "page.md: there.md#nowhere (no such heading)"]


# A command line that runs the CLI (not `createdb connector`, not the package `connector.web`).
COMMAND = re.compile(r"^\s*(?:\$\s+)?(?:[\w./-]*/)?connector\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*))?")


def unknown_commands(code: list[str]) -> list[str]:
    """Every `connector COMMAND [SUBCOMMAND] [--option…]` shown that the CLI does not have."""
    import click

    from connector.cli import main

    wrong = []
    for piece in code:
        for part in re.split(r"\||&&|;", piece):
            found = COMMAND.match(part)
            if found is None:
                continue
            name, sub = found.groups()
            command = main.commands.get(name)
            if command is None:
                wrong.append(f"connector {name}")
                continue
            if isinstance(command, click.Group):
                command = command.commands.get(sub or "")
                if command is None:
                    wrong.append(f"connector {name} {sub or ''}".strip())
                    continue
            known = {o for p in [*command.params, *main.params] for o in p.opts} | {"--help"}
            wrong += [
                f"connector {name}: {o}" for o in re.findall(r"--[a-z][a-z-]*", part[found.end() :]) if o not in known
            ]
    return wrong


def test_every_connector_command_the_docs_show_exists():
    code = [piece for page in PAGES for piece in _prose_and_code(page.read_text(encoding="utf-8"))[1]]
    assert any("connector run" in piece for piece in code), "no command found: is COMMAND still right?"
    assert not unknown_commands(code), unknown_commands(code)


def test_a_made_up_command_or_option_is_caught():
    assert unknown_commands(["connector run --port 5001", ".venv/bin/connector user add X --role admin"]) == []
    assert unknown_commands(["createdb -O connector connector", "the connector connects"]) == []
    assert unknown_commands(["connector launch", "connector run --colour red", "connector db downgrade"]) == [
        "connector launch",
        "connector run: --colour",
        "connector db downgrade",
    ]


def test_every_script_and_bench_the_docs_name_exists():
    named = {
        path
        for page in PAGES
        for piece in _prose_and_code(page.read_text(encoding="utf-8"))[1]
        for path in re.findall(r"(?<![\w/.])((?:scripts|bench|\.ci)/[\w./-]*\w)", piece)
    }
    assert named, "no script named: is the pattern still right?"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing


def test_the_readme_is_a_page_or_two_and_links_every_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count("\n") < 300
    unlinked = [p.name for p in PAGES[1:] if f"](docs/{p.name})" not in readme]
    assert not unlinked, f"docs/ pages the README does not link: {unlinked}"
