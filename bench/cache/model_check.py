"""The embedding-model check of ``docs/benchmarks-cache.md``: the int8 ONNX model against fp32.

Compares the gateway's local embedder (``caching.embedders.local``) with the reference vectors
of the original fp32 all-MiniLM-L6-v2 weights committed in ``tests/caching/data`` (computed in
numpy by ``python -m bench.cache.reference``), and measures what the optional requirements
(``requirements/embeddings.txt`` and what they pull in) occupy in this virtualenv.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

BASE_DIR = Path(__file__).resolve().parents[2]
REFERENCE = BASE_DIR / "tests" / "caching" / "data" / "minilm_fp32_reference.json"
REQUIREMENTS = BASE_DIR / "requirements" / "embeddings.txt"
BASE_REQUIREMENTS = BASE_DIR / "requirements" / "base.txt"
# What tests/caching/test_local_embedder.py requires of every reference sentence.
TESTED_MIN_COSINE = 0.999


def cosines(model: Any) -> list[float]:
    """Cosine of the local embedder's vector with the fp32 reference, one per reference sentence."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["vectors"]
    mine = model.encode(list(reference))
    return [float(np.dot(vector, expected)) for vector, expected in zip(mine, reference.values(), strict=True)]


def _requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0])
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependencies(name: str) -> list[str]:
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    return [re.split(r"[=<>!~\[ ;(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]


def _closure(names: list[str]) -> set[str]:
    """The installed distributions these requirements install, their dependencies included."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if _normal(name) in seen:
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(_normal(name))
        pending += _dependencies(name)
    return seen


def _size_mb(name: str) -> float:
    dist = metadata.distribution(name)
    size = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            size += path.stat().st_size
    return round(size / 1e6, 1)


def installed_sizes() -> dict[str, float]:
    """MB on disk of each distribution only the optional requirements install (not needed by base.txt)."""
    only = _closure(_requirement_names(REQUIREMENTS)) - _closure(_requirement_names(BASE_REQUIREMENTS))
    return dict(sorted(((name, _size_mb(name)) for name in only), key=lambda item: -item[1]))


def evaluate(model: Any) -> dict[str, Any]:
    """The check's raw results."""
    found = cosines(model)
    return {
        "sentences": len(found),
        "cosine_min": min(found),
        "cosine_max": max(found),
        "tested_min": TESTED_MIN_COSINE,
        "installed_mb": installed_sizes(),
    }


def report(result: dict[str, Any]) -> list[str]:
    """Markdown lines for the page."""
    sizes = result["installed_mb"]
    parts = ", ".join(f"{name} {mb:.0f} MB" for name, mb in sizes.items() if mb >= 1)
    return [
        f"Cosine of the int8 ONNX model's vectors with the fp32 reference: **{result['cosine_min']:.4f}–"
        f"{result['cosine_max']:.4f}** on the {result['sentences']} reference sentences "
        f"(`tests/caching/test_local_embedder.py` requires ≥ {result['tested_min']} for each).",
        "",
        f"The optional requirements (`requirements/embeddings.txt`) and what they pull in beyond "
        f"`requirements/base.txt` occupy **{sum(sizes.values()):.0f} MB** of this virtualenv: {parts}.",
    ]
