"""The README and docs/ stay connected and true: every relative link reaches a file (and its heading), and the
README's set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", CODE_BLOCK.sub("", page.read_text()), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(CODE_BLOCK.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no such heading in {linked.name}")
    return broken


def test_every_relative_link_in_the_readme_and_docs_reaches_its_file_and_heading():
    broken = {page.relative_to(ROOT).as_posix(): links for page in PAGES if (links := _broken_links(page))}
    assert broken == {}


def test_every_docs_page_is_linked_from_the_readme_or_another_page():
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page in PAGES
        for target in LINK.findall(page.read_text())
        if not re.match(r"[a-z]+:", target) and target.partition("#")[0]
    }
    orphans = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert orphans == []


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    first_block = CODE_BLOCK.search((ROOT / "README.md").read_text()).group(0).splitlines()[1:-1]
    assert first_block == [
        "scripts/bootstrap.sh && .venv/bin/hpc-classify demo",
        "scripts/bootstrap.sh --test && .venv/bin/python -m pytest",
    ]
    ci_commands = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("scripts/")
    ]
    assert ci_commands == [first_block[1]]


def test_hub_commands_in_the_docs_work_with_the_module_loaded():
    # The module sets HF_HUB_OFFLINE=1 (compute nodes are offline), and then fetch-models only checks the cache
    # and `hf auth login` cannot reach the hub to validate the token: on the login node both need HF_HUB_OFFLINE=0.
    hub_commands = re.compile(
        r"^\s*(?:[A-Z_]+=\S+\s+)*(?:hpc-classify fetch-models|hf auth login)\b.*$", re.MULTILINE
    )
    offline_default = [
        f"{page.relative_to(ROOT).as_posix()}: {line.strip()}"
        for page in PAGES
        for block in CODE_BLOCK.findall(page.read_text())
        for line in hub_commands.findall(block)
        if "HF_HUB_OFFLINE=0" not in line and "--help" not in line
    ]
    assert offline_default == []


def test_no_table_row_is_broken_across_lines():
    """A line right after a table row that does not start with `|` is a row of its own in Markdown (GFM): a
    hard-wrapped cell splits the row, its rest landing in the first column."""
    broken = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        broken += [
            f"{page.name}:{n + 2}: {line[:60]}"
            for n, (row, line) in enumerate(zip(lines, lines[1:], strict=False))
            if row.startswith("|") and line.strip() and not line.startswith("|")
        ]
    assert broken == []
