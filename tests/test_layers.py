"""The request path only calls downward (README, "Layers").

``serving`` → ``routing`` / ``caching`` / ``billing`` / ``providers`` / ``tenants`` → the config kernel
(``gateway_platform/config/``). A module below ``serving`` that imported it would climb back into the
request path: these tests read every import statement (function-level ones included) and fail with the
offending lines. Only the ASGI wiring (``gateway_platform/asgi.py``), which mounts the consumers,
imports ``serving``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BELOW_SERVING = ("routing", "caching", "billing", "providers", "tenants", "gateway_platform")
WIRING = {Path("gateway_platform/asgi.py")}
KERNEL = Path("gateway_platform/config")


def imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, imported module, only for type checking) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            typing_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in typing_only
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, id(node) in typing_only


def modules_of(*apps: str) -> list[Path]:
    return sorted(
        path.relative_to(BASE_DIR)
        for app in apps
        for path in (BASE_DIR / app).rglob("*.py")
        if "migrations" not in path.parts
    )


def top_package(module: str) -> str:
    return module.partition(".")[0]


def test_the_scan_reads_imports():
    # Guards the scan: if it found no imports, the tests below could not fail.
    found = {module for _, module, _ in imports(BASE_DIR / "gateway_platform" / "asgi.py")}
    assert "serving.consumers.chat" in found
    assert len(modules_of(*BELOW_SERVING)) > 100


def test_no_module_below_serving_imports_it():
    climbs = [
        f"{path}:{line} imports {module}"
        for path in modules_of(*BELOW_SERVING)
        if path not in WIRING
        for line, module, _ in imports(BASE_DIR / path)
        if top_package(module) == "serving"
    ]
    assert climbs == [], "the request path is imported from below it:\n" + "\n".join(climbs)


def test_the_config_kernel_imports_no_app_at_run_time():
    apps_above = {"serving", *BELOW_SERVING} - {"gateway_platform"}
    climbs = [
        f"{path}:{line} imports {module}"
        for path in modules_of(str(KERNEL))
        for line, module, typing_only in imports(BASE_DIR / path)
        if top_package(module) in apps_above and not typing_only
    ]
    assert climbs == [], "the config kernel imports an app:\n" + "\n".join(climbs)
