"""Every page in docs/ names the command that regenerates it, and that command exists.

A page names ``python -m bench.<module>`` (an importable module of ``bench/``, runnable with
``-m``) or ``make <target>`` (a target of the Makefile) in backticks; every command it names that
way must exist, so a renamed benchmark cannot leave a page pointing at nothing.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DOCS = BASE_DIR / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
PYTHON_COMMAND = re.compile(r"`(?:\.venv/bin/)?python -m (bench(?:\.[a-z_]+)+)")
MAKE_COMMAND = re.compile(r"`make (bench[a-z-]*)")
MAKE_TARGET = re.compile(r"^([a-z][a-z0-9-]*):", re.MULTILINE)


def runnable_module(name: str) -> bool:
    """``python -m NAME`` works: a module, or a package with ``__main__``."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return True
    return importlib.util.find_spec(f"{name}.__main__") is not None


def test_the_scan_sees_every_page_and_both_kinds_of_command() -> None:
    assert {"benchmarks.md", "benchmarks-billing.md", "scaling.md"} <= set(PAGES)
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    assert "bench.gateway" in PYTHON_COMMAND.findall(text)
    assert "bench" in MAKE_COMMAND.findall(text)


def test_runnable_module_tells_modules_from_missing_ones() -> None:
    assert runnable_module("bench.billing") and runnable_module("bench.gateway")
    assert not runnable_module("bench.no_such_benchmark")


@pytest.mark.parametrize("page", PAGES)
def test_every_docs_page_names_a_command_that_exists(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    modules = sorted(set(PYTHON_COMMAND.findall(text)))
    targets = sorted(set(MAKE_COMMAND.findall(text)))
    assert modules or targets, f"{page} names no generating command (`python -m bench.…` or `make bench…`)"
    assert [m for m in modules if not runnable_module(m)] == [], f"{page} names a module that does not run"
    makefile_targets = set(MAKE_TARGET.findall((BASE_DIR / "Makefile").read_text(encoding="utf-8")))
    assert [t for t in targets if t not in makefile_targets] == [], f"{page} names a missing make target"


SECTION = re.compile(r"<!-- ([a-z0-9-]+):start -->(.*?)<!-- \1:end -->", re.DOTALL)
RAW = re.compile(r"[Rr]aw results: `(docs/results/[A-Za-z0-9_.-]+\.json)`")
PROVENANCE = re.compile(
    r"_Generated from the run at commit `([0-9a-f]{7,40}(?:\+dirty)?)` on (\d{4}-\d\d-\d\d \d\d:\d\d UTC)"
)


def generated_sections() -> list[tuple[str, str, str]]:
    """(page, section, text) of every generated section that names its raw results."""
    found = []
    for page in PAGES:
        for name, text in SECTION.findall((DOCS / page).read_text(encoding="utf-8")):
            if RAW.search(text):
                found.append((page, name, text))
    return found


def test_the_generated_sections_are_found() -> None:
    names = {(page, name) for page, name, _ in generated_sections()}
    assert {("benchmarks.md", "gateway-overhead"), ("benchmarks-billing.md", "billing")} <= names


@pytest.mark.parametrize(
    ("page", "section", "text"), generated_sections(), ids=[f"{p}:{s}" for p, s, _ in generated_sections()]
)
def test_a_generated_section_comes_from_its_committed_raw_results(page: str, section: str, text: str) -> None:
    provenance = PROVENANCE.search(text)
    assert provenance, f"{page} section {section} has no provenance line: re-run its command"
    raw = json.loads((BASE_DIR / RAW.search(text).group(1)).read_text(encoding="utf-8"))  # type: ignore[union-attr]
    assert (raw["provenance"]["commit"], raw["provenance"]["ran_at"]) == provenance.groups()
