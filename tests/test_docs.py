"""The package documents itself from inside the repository: every cited ``docs/FILE.md#section`` exists, and no
docstring or README sentence sends a reader to a file outside it."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "idgi_tf").rglob("*.py")) + [ROOT / "README.md"]
CITATION = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")
OUTSIDE = re.compile(r"REFERENCE|ARCHITECTURE\.md|\.\./shared|seeds/|seed 00\d")


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: pathlib.Path) -> set:
    return {github_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def test_github_anchor_by_hand():
    assert github_anchor(" Vanishing gradient (our rule)") == "vanishing-gradient-our-rule"
    assert github_anchor("The model zoo, in pixel space") == "the-model-zoo-in-pixel-space"


def test_every_cited_docs_section_exists():
    cited = [(source.relative_to(ROOT), match.group(1), match.group(2))
             for source in SOURCES for match in CITATION.finditer(source.read_text())]
    assert len(cited) > 15
    for source, name, section in cited:
        target = ROOT / "docs" / name
        assert target.exists(), (str(source), name)
        assert section is None or section in anchors(target), (str(source), name, section)


def test_nothing_points_outside_the_repository():
    found = [(str(source.relative_to(ROOT)), number, line.strip())
             for source in SOURCES for number, line in enumerate(source.read_text().splitlines(), 1)
             if OUTSIDE.search(line)]
    assert not found, found
