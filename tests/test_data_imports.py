"""workbench/data has no import cycles, counting imports inside functions too."""

import ast
from pathlib import Path

PACKAGE = "workbench.data"
ROOT = Path(__file__).resolve().parents[1] / "workbench" / "data"


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of the package that ``path`` imports anywhere; ``from . import x`` also
    counts as importing the package itself (``__init__``), as Python runs it first."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
            elif node.level == 0 and node.module and (node.module + ".").startswith(PACKAGE + "."):
                base = node.module[len(PACKAGE) + 1:] or None
            else:
                continue
            if base:
                found.add(base.split(".")[0])
            else:
                found |= {a.name for a in node.names if a.name in modules} | {"__init__"}
        elif isinstance(node, ast.Import):
            found |= {a.name[len(PACKAGE) + 1:].split(".")[0] for a in node.names
                      if a.name.startswith(PACKAGE + ".")}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in ROOT.glob("*.py")}
    return {m: _imports(ROOT / f"{m}.py", modules) - {m} for m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_workbench_data_imports_no_cycle():
    graph = import_graph()
    assert {"probes", "item_layout", "workspace", "identity"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
