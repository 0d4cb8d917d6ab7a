"""The package's imports point one way: surfaces -> scheduler and registry -> the job and its pieces -> basics.

A module may import from its own layer or a lower one, never a higher one, and no import
circles. CONTRIBUTING.md's code map follows these layers; a new module needs a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rediscron"

LAYERS: dict[str, int] = {
    # Basics: names, time, errors, text, the script loader.
    **dict.fromkeys(
        [
            "__version__",
            "keys",
            "clock",
            "errors",
            "limits",
            "text",
            "schedule",
            "scripts",
            "logs",
            "wake",
            "connection",
            "imports",
            "stats",
            "testing",
            "words",
            "audit",
            "alerts",
        ],
        0,
    ),
    # A job's fields and their checks, its history; the registry's scripts, the lock, the events.
    **dict.fromkeys(["options", "fields", "definition", "history", "store", "lock", "events", "preview"], 1),
    # The stored record, the write path, and building runs.
    **dict.fromkeys(["record", "writes", "runs", "template", "backfill"], 2),
    **dict.fromkeys(["cronjob", "job"], 3),
    # What works on jobs: the registry, planning a slot, building a fire.
    **dict.fromkeys(["registry", "catchup", "enqueue"], 4),
    "registration": 5,
    # The scheduler's parts, and the readers of the registry.
    **dict.fromkeys(["leadership", "presence", "dispatch", "lookahead", "passes", "runner"], 5),
    **dict.fromkeys(["sync", "view", "status", "metrics"], 5),
    "scheduler": 6,
    "worker": 7,
    # Surfaces.
    **dict.fromkeys(["cli", "cli.base", "cli.edit", "cli.run", "cli.schedules", "cli.watch", "core", "__main__"], 7),
    **dict.fromkeys(["cli.web", "cli.worker", "cli.preview", "cli.changes"], 7),
    "__init__": 7,
    # The web page: its reads (data), its routes (app), its factories (web).
    **dict.fromkeys(["web.auth", "web.data", "web.app", "web"], 7),
}


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    parts = relative.parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        directory = path.parent.relative_to(PACKAGE).parts
        package = ".".join(directory)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                if node.module:
                    found.add(".".join([*base, node.module]))
                else:
                    found.update(".".join([*base, alias.name]) for alias in node.names)
        graph[name] = {target for target in found if target != name}
    return graph


def test_every_module_has_a_layer() -> None:
    assert set(imports()) == set(LAYERS)


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{module} (layer {LAYERS[module]}) imports {target} (layer {LAYERS[target]})"
        for module, targets in imports().items()
        for target in targets
        if target in LAYERS and LAYERS[target] > LAYERS[module]
    ]
    assert not upward


def test_no_import_circles() -> None:
    graph = {module: {t for t in targets if t in LAYERS} for module, targets in imports().items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not circles


def test_the_code_map_names_every_module() -> None:
    """CONTRIBUTING.md's map is where a newcomer looks first: a module it does not name is lost."""
    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text()
    unnamed = [
        path.name
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name not in ("__main__.py", "__version__.py") and f"`{path.name}`" not in text
    ]
    assert unnamed == []
