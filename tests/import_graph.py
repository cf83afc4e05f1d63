"""A static import graph of a package, read from its source with ``ast`` (nothing is imported).

Every ``import`` statement counts wherever it stands -- at module level, inside a function
(a lazy import), a class or an ``if`` -- and so does ``importlib.import_module("literal")``:
a lazy import runs as soon as its function is called, so it can close a cycle like any other.
``from X import name`` is an edge to the module ``X.name`` when that is a module of the
package, else to ``X``; relative imports are resolved against the importing module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImportSite:
    """One imported module name, where it is imported and whether at module level."""

    module: str
    imported: str
    line: int
    lazy: bool


def module_files(root: Path, package: str) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under ``root/package`` (packages as their name)."""
    found = {}
    for path in sorted((Path(root) / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_sites(module: str, source: str, *, is_package: bool = False, known=()) -> list[ImportSite]:
    """Every module name ``source`` imports (absolute, dotted), with its line; ``known`` lists the
    package's modules so that ``from X import name`` can tell a submodule from an attribute."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    here = module.split(".") if is_package else module.split(".")[:-1]
    sites = []

    def add(name, node):
        sites.append(ImportSite(module, name, node.lineno, id(node) not in top_level))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                source_module = ".".join(base + ([node.module] if node.module else []))
            else:
                source_module = node.module or ""
            for alias in node.names:
                submodule = f"{source_module}.{alias.name}"
                add(submodule if submodule in known else source_module, node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            add(node.args[0].value, node)
    return sites


def package_sites(root: Path, package: str) -> list[ImportSite]:
    """The import sites of every module of ``package`` under ``root``."""
    files = module_files(root, package)
    sites = []
    for name, path in files.items():
        sites += import_sites(name, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py",
                              known=files)
    return sites


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """{module: the package's modules it imports} (imports of other packages left out)."""
    files = module_files(root, package)
    graph = {name: set() for name in files}
    for site in package_sites(root, package):
        if site.imported in files and site.imported != site.module:
            graph[site.module].add(site.imported)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (each holds a cycle), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(start):  # Tarjan's algorithm, iterative (no recursion limit on deep graphs)
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=sorted)
