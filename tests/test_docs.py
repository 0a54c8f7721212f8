"""The package documents itself from inside the repository: every cited ``docs/FILE.md#section`` exists, every
link between the README and the docs pages reaches its page and section, the site's nav lists every page, and no
docstring, README or docs sentence sends a reader to a file outside it."""

import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted(path for path in (ROOT / "docs").rglob("*.md") if "benchmarks" not in path.relative_to(ROOT).parts[1:])
SOURCES = sorted((ROOT / "idgi_tf").rglob("*.py")) + [ROOT / "README.md", *PAGES]
CITATION = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a Markdown link or image target
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
OUTSIDE = re.compile(r"REFERENCE|ARCHITECTURE\.md|\.\./shared|seeds/|seed 00\d")


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: pathlib.Path) -> set:
    """The sections of a Markdown page (headings outside code blocks)."""
    text = FENCE.sub("", path.read_text())
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def links(path: pathlib.Path) -> list:
    """``(target file, section or None)`` of each relative link of a Markdown page (outside code blocks)."""
    found = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not a file here
        name, _, section = target.partition("#")
        found.append((path if not name else (path.parent / name), section or None))
    return found


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


def test_every_link_of_the_readme_and_the_docs_reaches_its_page_and_section():
    """What ``mkdocs build --strict`` checks for the site, here for the README too (GitHub renders it)."""
    checked = 0
    for page in [ROOT / "README.md", *PAGES]:
        for target, section in links(page):
            where = (str(page.relative_to(ROOT)), str(target.relative_to(ROOT)) if target.is_relative_to(ROOT)
                     else str(target), section)
            assert target.resolve().exists(), where
            if section is not None:
                assert target.suffix == ".md" and section in anchors(target), where
            checked += 1
    assert checked > 20


def test_the_links_check_finds_a_missing_section_and_skips_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n```\n# not a heading\n[a](gone.md)\n```\n[b](#top) [c](#not-a-heading) "
                    "[d](https://example.org/x.md)\n")
    assert anchors(page) == {"top"}
    assert links(page) == [(page, "top"), (page, "not-a-heading")]


def _nav_pages(entries) -> list:
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_site_nav_lists_every_docs_page_and_every_tutorial():
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    assert all((ROOT / "docs" / page).exists() for page in nav), nav
    own = {str(path.relative_to(ROOT / "docs")) for path in PAGES}
    tutorials = {str(path.relative_to(ROOT / "docs")) for path in (ROOT / "docs" / "tutorials").glob("*.ipynb")}
    assert own | tutorials <= set(nav), sorted((own | tutorials) - set(nav))
    assert len(tutorials) >= 2


def _table_after(text: str, heading: str) -> list:
    """The first Markdown table's lines after ``heading``."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    return lines[start:next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))]


def test_the_readme_s_results_table_is_the_one_in_the_docs():
    """The front page shows one results table; docs/results.md holds it with the rest, so they must agree."""
    heading = "Results on trained networks"
    readme, docs = (ROOT / "README.md").read_text(), (ROOT / "docs" / "results.md").read_text()
    assert len(_table_after(readme, heading)) > 5
    assert _table_after(readme, heading) == _table_after(docs, heading)
