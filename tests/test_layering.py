"""The dependency direction of DESIGN.md: tauformer never pulls in the app's libraries, only
workbench/data imports tauformer, and workbench has no import cycles.

The static rules read the source with an AST walk (tests/import_graph.py), so a lazy import
inside a function counts as much as one at the top of a module; each rule is also run on a
planted package to show that it can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from import_graph import cycles, import_graph, module_files, package_sites

ROOT = Path(__file__).resolve().parents[1]
APP_STACK = ("dash", "plotly")
DATA_LAYER = "workbench.data"
VIEWS = "workbench.views"

# Cycles inside workbench/data that are known and being taken apart; the rest of workbench is
# strict. When one is gone the test says so: remove it here (an empty set switches the data
# layer's check fully on). Only cycles wholly inside workbench.data may be listed.
KNOWN_DATA_CYCLES: set[frozenset[str]] = set()


def _top(name: str) -> str:
    return name.split(".")[0]


def app_stack_imports(root: Path, package: str) -> list[str]:
    """'module:line imports X' for every import of dash or plotly in ``package``, lazy ones too."""
    return [f"{s.module}:{s.line} imports {s.imported}" for s in package_sites(root, package)
            if _top(s.imported) in APP_STACK]


def tauformer_imports(root: Path, package: str, *, allowed: str | None = None, within: str | None = None) -> list[str]:
    """'module:line imports X' for every import of tauformer by a module of ``package`` (only those
    under ``within`` when given) that is not ``allowed`` or inside it."""
    def inside(module, prefix):
        return prefix is not None and (module == prefix or module.startswith(prefix + "."))

    return [f"{s.module}:{s.line} imports {s.imported}" for s in package_sites(root, package)
            if _top(s.imported) == "tauformer" and not inside(s.module, allowed)
            and (within is None or inside(s.module, within))]


def unexpected_cycles(root: Path, package: str, known=frozenset()) -> tuple[list, list]:
    """(cycles not in ``known``, ``known`` cycles no longer there), as sorted module lists."""
    found = set(cycles(import_graph(root, package)))
    return sorted(sorted(c) for c in found - set(known)), sorted(sorted(c) for c in set(known) - found)


# --------------------------------------------------------------------------- the rules
@pytest.fixture(scope="module")
def loaded_by_every_tauformer_module():
    """The modules in sys.modules after importing every module of tauformer/, in a fresh interpreter."""
    modules = sorted(module_files(ROOT, "tauformer"))
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("forbidden", APP_STACK)
def test_core_package_does_not_import_the_app_stack(forbidden, loaded_by_every_tauformer_module):
    bad = sorted(m for m in loaded_by_every_tauformer_module if m == forbidden or m.startswith(forbidden + "."))
    assert bad == []


def test_every_tauformer_module_is_imported_by_the_check(loaded_by_every_tauformer_module):
    modules = module_files(ROOT, "tauformer")
    assert {"tauformer", "tauformer.model", "tauformer.__main__", "tauformer.domain.cli"} <= set(modules)
    assert set(modules) <= set(loaded_by_every_tauformer_module)


def test_no_tauformer_module_names_dash_or_plotly_even_lazily():
    assert app_stack_imports(ROOT, "tauformer") == []


def test_only_the_data_layer_imports_tauformer():
    assert tauformer_imports(ROOT, "workbench", allowed=DATA_LAYER) == []


def test_no_view_imports_tauformer():
    assert any(name.startswith(VIEWS + ".") for name in module_files(ROOT, "workbench"))
    assert tauformer_imports(ROOT, "workbench", within=VIEWS) == []


def test_workbench_import_graph_has_no_cycles():
    assert all(all(m.startswith(DATA_LAYER + ".") or m == DATA_LAYER for m in c) for c in KNOWN_DATA_CYCLES)
    new, gone = unexpected_cycles(ROOT, "workbench", KNOWN_DATA_CYCLES)
    assert new == [], f"import cycles in workbench: {new}"
    assert gone == [], f"these known data-layer cycles are gone: remove them from KNOWN_DATA_CYCLES: {gone}"


# ------------------------------------------------------- each rule can fail (planted code)
@pytest.fixture
def planted(tmp_path):
    """A package ``pkg`` (a planted 'workbench') and ``core`` (a planted 'tauformer') with one
    violation of each rule, most of them lazy imports inside functions."""
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "def later():\n    from pkg import b\n    return b\n",
        "pkg/b.py": "from . import a\n",
        "pkg/c.py": "import importlib\n\ndef later():\n    return importlib.import_module('pkg.d')\n",
        "pkg/d.py": "from pkg.c import later\n",
        "pkg/e.py": "from pkg.sub import helper\n",
        "pkg/sub/__init__.py": "def helper():\n    from ..e import helper\n",
        "pkg/data/__init__.py": "from tauformer.errors import TauformerError\n",
        "pkg/views/__init__.py": "",
        "pkg/views/page.py": "class Page:\n    def build(self):\n        import tauformer.model\n",
        "pkg/other.py": "if True:\n    from tauformer import __version__\n",
        "core/__init__.py": "",
        "core/model.py": "import json\n",
        "core/deep/__init__.py": "",
        "core/deep/plot.py": "def draw():\n    import plotly.graph_objects as go\n    from dash import html\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_app_stack_rule_finds_a_lazy_import_deep_in_the_package(planted):
    assert app_stack_imports(planted, "core") == ["core.deep.plot:2 imports plotly.graph_objects",
                                                 "core.deep.plot:3 imports dash"]


def test_the_tauformer_rules_find_imports_outside_the_data_layer(planted):
    assert tauformer_imports(planted, "pkg", allowed="pkg.data") == [
        "pkg.other:2 imports tauformer", "pkg.views.page:3 imports tauformer.model"]
    assert tauformer_imports(planted, "pkg", within="pkg.views") == ["pkg.views.page:3 imports tauformer.model"]


def test_the_cycle_rule_finds_lazy_and_import_module_cycles_and_stale_known_ones(planted):
    found = cycles(import_graph(planted, "pkg"))
    assert found == [frozenset({"pkg.a", "pkg.b"}), frozenset({"pkg.c", "pkg.d"}), frozenset({"pkg.e", "pkg.sub"})]
    known = {frozenset({"pkg.a", "pkg.b"}), frozenset({"pkg.x", "pkg.y"})}
    assert unexpected_cycles(planted, "pkg", known) == ([["pkg.c", "pkg.d"], ["pkg.e", "pkg.sub"]],
                                                        [["pkg.x", "pkg.y"]])


def test_from_a_package_import_a_name_is_an_edge_to_the_package_not_to_a_module(planted):
    graph = import_graph(planted, "pkg")
    assert graph["pkg.e"] == {"pkg.sub"} and graph["pkg.b"] == {"pkg.a"} and graph["pkg.data"] == set()


# ------------------------------------------------- the views name what they are handed
def unannotated_workspaces(root: Path) -> list[str]:
    """'module:line function' for every function under ``root`` whose ``workspace`` parameter
    is not annotated ``Workspace``."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                if arg.arg == "workspace" and not (isinstance(arg.annotation, ast.Name)
                                                   and arg.annotation.id == "Workspace"):
                    found.append(f"{path.relative_to(root).as_posix()}:{node.lineno} {node.name}")
    return found


def test_every_view_function_annotates_its_workspace():
    assert unannotated_workspaces(ROOT / "workbench" / "views") == []


def test_the_annotation_rule_finds_a_bare_workspace(tmp_path):
    (tmp_path / "page.py").write_text("def layout(workspace, **query):\n    pass\n\n"
                                      "def ok(workspace: Workspace):\n    pass\n")
    assert unannotated_workspaces(tmp_path) == ["page.py:1 layout"]
