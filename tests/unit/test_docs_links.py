"""docs/ reads as one site: every local link in the Markdown pages resolves, anchors included,
and docs/index.md links every page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.glob("*.md"), ROOT / "README.md"])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE = re.compile(r"`[^`\n]*`")


def links(page: Path) -> list[str]:
    """The link targets of a Markdown page, outside code blocks and code spans."""
    text = CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    return LINK.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def resolves(page: Path, target: str) -> bool:
    """Whether a local link of ``page`` names an existing file (and heading, for Markdown)."""
    path, _, fragment = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.exists():
        return False
    return not fragment or resolved.suffix != ".md" or fragment in anchors(resolved)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_local_links_resolve(page: Path) -> None:
    local = [target for target in links(page) if not re.match(r"[a-z]+:", target)]
    broken = [target for target in local if not resolves(page, target)]
    assert broken == [], f"{page.relative_to(ROOT)}: broken links {broken}"


def test_the_index_links_every_page_and_the_readme_links_the_index() -> None:
    index = DOCS / "index.md"
    linked = {(DOCS / target.partition("#")[0]).resolve() for target in links(index)}
    pages = {path.resolve() for path in DOCS.iterdir() if path.is_file() and path != index}
    assert pages - linked == set(), "docs/index.md does not link these pages"
    assert "docs/index.md" in links(ROOT / "README.md")
