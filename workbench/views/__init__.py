"""One module per page. Each exposes PAGE (id, path, name, order, description, and optionally
``requires``: "runs", "domain" or "studies"), ``layout(workspace, **query)`` and
``register_callbacks(app, workspace)``; each figure card's recipe (keys -> figure) is
registered in :mod:`workbench.views.cards` when the module is imported; optionally
``bench_cases(workspace)`` and ``warm_up(workspace)``.

:func:`page_modules` is the one list of pages: the app, the batch export and the bench all
take theirs from it (and :func:`pages_with_data` for the pages a workspace has data for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import importlib
from types import ModuleType

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE_MODULES = (
    "workbench.views.home",
    "workbench.views.domain",
    "workbench.views.spectrum",
    "workbench.views.heads",
    "workbench.views.attention",
    "workbench.views.why",
    "workbench.views.whatif",
    "workbench.views.lens",
    "workbench.views.ablation",
    "workbench.views.training",
    "workbench.views.runs",
    "workbench.views.study",
    "workbench.views.memory",
)


def page_modules() -> list[ModuleType]:
    """Every page module of PAGE_MODULES, imported, in page order (``PAGE["order"]``, as the
    navigation shows them; importing a module registers its cards' recipes)."""
    modules = [importlib.import_module(path) for path in PAGE_MODULES]
    return sorted(modules, key=lambda module: module.PAGE["order"])


def pages_with_data(workspace: Workspace) -> list[ModuleType]:
    """The page modules, in page order, whose PAGE the workspace has data for."""
    return [module for module in page_modules() if page_has_data(module.PAGE, workspace)]


def page_has_data(page: dict, workspace: Workspace) -> bool:
    """Whether the workspace holds what the page shows (its runs, domain memories or studies)."""
    need = page.get("requires")
    if need == "runs":
        return bool(workspace.runs.names())
    if need == "domain":
        return bool(workspace.domains.names())
    if need == "studies":
        return bool(workspace.studies.names())
    return True
