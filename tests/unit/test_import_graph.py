"""No import circle in fixadapter/: read from the source (ast), so a circle hidden in a function body counts.

Imports under `if TYPE_CHECKING:` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fixadapter"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(path: Path, modules: set[str], typing_too: bool = False) -> set[str]:
    """The fixadapter modules `path` imports when it runs (at import time or in a function), and with
    `typing_too` those it imports for type checking only."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node) and not typing_too:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name in modules and name != module_name(path)}


def import_graph(typing_too: bool = False) -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imported(path, modules, typing_too) for path in paths}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that each reach the others through imports, each sorted."""
    reach = {node: reachable(graph, node) for node in graph}
    found: list[list[str]] = []
    for node in sorted(graph):
        if node in reach[node] and not any(node in circle for circle in found):
            found.append(sorted(other for other in reach[node] if node in reach[other]))
    return found


def test_the_cycle_finder_finds_a_circle_through_a_function_body_import(tmp_path: Path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_fixadapter_imports_itself_through_others():
    graph = import_graph()
    assert "fixadapter.engine.orders" in graph
    circles = [circle for circle in cycles(graph) if not _packages_only(circle)]
    assert circles == [], f"import circles: {circles}"


def test_no_module_of_fixadapter_needs_itself_even_for_its_type_hints():
    """A module that needs, for its hints, one that builds it knows it through a protocol instead
    (engine/ports.py, sim/openapi/front.py)."""
    graph = import_graph(typing_too=True)
    circles = [circle for circle in cycles(graph) if not _packages_only(circle)]
    assert circles == [], f"import circles through type hints: {circles}"


def _packages_only(circle: list[str]) -> bool:
    """A package's __init__ importing its own modules is no circle of code (none here does more)."""
    return all((PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists() for name in circle)


def test_the_engine_has_no_circle_even_in_its_type_hints():
    """engine/orders.py uses the reconciler, the in-flight watch and the sweep; they know it only through
    the protocols of engine/ports.py."""
    graph = import_graph(typing_too=True)
    engine = {
        name: {t for t in targets if t.startswith("fixadapter.engine")} for name, targets in graph.items()
    }
    engine = {name: targets for name, targets in engine.items() if name.startswith("fixadapter.engine.")}
    assert "fixadapter.engine.reconciler" in engine["fixadapter.engine.orders"]
    assert cycles(engine) == []


def test_the_engine_and_the_model_know_no_connector_of_their_own():
    """The engine and the model are connector-neutral: nothing of theirs imports a connector, even for type
    hints, and FIX's session kinds (QUOTE/TRADE) stay inside the FIX connector."""
    graph = import_graph(typing_too=True)
    neutral = [name for name in graph if name.startswith(("fixadapter.engine.", "fixadapter.model."))]
    reaching = {
        name: sorted(t for t in graph[name] if t.startswith("fixadapter.connectors.fix")) for name in neutral
    }
    assert {name: found for name, found in reaching.items() if found} == {}
    mentioning = [
        path.relative_to(PACKAGE).as_posix()
        for folder in ("engine", "model")
        for path in sorted((PACKAGE / folder).glob("*.py"))
        if "SessionKind" in path.read_text(encoding="utf-8")
    ]
    assert mentioning == []
