"""The package's layers, as docs/architecture.md draws them: every import (at module level or inside a function)
goes to the same layer or one below; the inference side never imports the training side; no import circles, neither
between modules nor between packages.

Read from the source with ``ast``: nothing is imported, so a lazy import inside a function counts as much as one at
the top of the file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "maskwatch"

# bottom to top; a module may import its own layer and the ones below it
LAYERS: list[tuple[str, set[str]]] = [
    ("ground", {"__init__", "labels", "errors", "paths", "io", "progress", "interrupts"}),
    ("data, runtime", {"data", "runtime"}),
    ("detect", {"detect"}),
    ("evaluate", {"evaluate"}),
    ("store, monitor", {"store", "monitor"}),
    ("serve, scale", {"serve", "scale"}),
    ("models", {"models"}),
    ("synth", {"synth"}),
    ("train", {"train"}),
    ("compare", {"compare"}),
    ("cli", {"cli", "__main__"}),
]
INFERENCE = {"data", "runtime", "detect", "evaluate", "store", "monitor", "serve", "scale"}
TRAINING = {"models", "synth", "train", "compare"}
LAYER_OF = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _part(module: str) -> str:
    """The top-level piece of a module: ``maskwatch.detect.run`` -> ``detect``, ``maskwatch`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str) -> set[str]:
    """The maskwatch modules ``module`` imports anywhere in its file (``from a import b`` counts ``a.b`` when ``b`` is
    a module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # maskwatch.detect.pipeline.Pipeline -> maskwatch.detect.pipeline
                name = name.rpartition(".")[0]
            if name.startswith("maskwatch") and name != module:
                found.add(name)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_piece_has_a_layer():
    unknown = sorted({_part(m) for m in MODULES} - set(LAYER_OF))
    assert not unknown, f"add these to LAYERS (and docs/architecture.md): {unknown}"


def test_imports_go_down_the_layers_only():
    upward = [
        f"{m} ({LAYERS[LAYER_OF[_part(m)]][0]}) imports {t} ({LAYERS[LAYER_OF[_part(t)]][0]})"
        for m, targets in GRAPH.items()
        for t in sorted(targets)
        if LAYER_OF[_part(t)] > LAYER_OF[_part(m)]
    ]
    assert not upward, "\n".join(upward)


def test_inference_side_imports_nothing_of_the_training_side():
    crossing = [
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _part(m) in INFERENCE
        for t in sorted(targets)
        if _part(t) in TRAINING
    ]
    assert not crossing, "\n".join(crossing)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph``, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` that only names its modules lazily is no edge of a circle of the modules themselves:
    drop edges from a module to its own package (``detect.run`` -> ``detect``)."""
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def test_no_circle_between_modules():
    assert _cycle(_without_packages(GRAPH)) is None, " -> ".join(_cycle(_without_packages(GRAPH)) or [])


def test_no_circle_between_packages():
    packages: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        packages.setdefault(_part(m), set()).update(_part(t) for t in targets if _part(t) != _part(m))
    assert _cycle(packages) is None, " -> ".join(_cycle(packages) or [])


@pytest.mark.parametrize(
    ("graph", "circle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"a.x"}, "a.x": {"a"}}, False),  # a package and its own module: dropped by _without_packages
    ],
)
def test_the_circle_finder_finds_circles(graph, circle):
    assert (_cycle(_without_packages(graph)) is not None) == circle


def test_the_import_reader_sees_lazy_imports():
    """The reader sees imports inside functions (cli imports its commands' modules there)."""
    assert any(t.startswith("maskwatch.train") for m, ts in GRAPH.items() if m.startswith("maskwatch.cli") for t in ts)


def test_no_source_module_is_huge():
    """About 500 lines at most, unless the module truly is one thing (listed, with the reason)."""
    one_thing = {
        "maskwatch.train.trainer": "the training run: one _Run object, its epochs, checkpoints, resume and report",
        "maskwatch.synth.draw": "the procedural mask drawing: one geometry, its styles and placements",
    }
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 520}
    assert set(long) <= set(one_thing), {m: n for m, n in long.items() if m not in one_thing}
