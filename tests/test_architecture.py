"""The package's shape: no import cycle, and no module imports from a layer above its own
(data -> models -> attacks -> pretrain -> finetune -> evaluation -> runs -> report, with errors
and the Lightning plumbing beneath everything and the entry points above)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "robust_ssl"
LAYERS = [("robust_ssl", "robust_ssl.errors"), ("robust_ssl.plumbing",), ("robust_ssl.data",),
          ("robust_ssl.models",), ("robust_ssl.attacks",), ("robust_ssl.pretrain",),
          ("robust_ssl.finetune",), ("robust_ssl.evaluation",), ("robust_ssl.runs",),
          ("robust_ssl.report",),
          ("robust_ssl.cli", "robust_ssl.__main__", "robust_ssl.grid", "robust_ssl.run",
           "robust_ssl.tables")]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports (`from a import b` counts a.b if it is a
    module, else a)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def layer(name: str) -> int:
    ranks = [rank for rank, prefixes in enumerate(LAYERS)
             for prefix in prefixes if name == prefix or name.startswith(prefix + ".")]
    return max(ranks)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def test_every_module_has_a_layer_and_imports_none_above_it():
    wrong = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
             for a, targets in graph().items() for b in targets if layer(b) > layer(a)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    edges = graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += edges[node]
        return False

    cycles = sorted(a for a in edges if reaches(a, a))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_the_check_sees_imports():
    """Guard against a graph that is empty because the parsing broke."""
    edges = graph()
    assert "robust_ssl.evaluation.result" in edges["robust_ssl.report.results"]
    assert "robust_ssl.runs.grid" in edges["robust_ssl.report.results"]
    assert layer("robust_ssl.report.curve") > layer("robust_ssl.runs.grid")
