"""One module per page. Each exposes PAGE (id, path, name, order, description, and optionally
``requires``: "runs", "domain" or "studies"), ``layout(workspace, **query)`` and
``register_callbacks(app, workspace)``; each figure card's recipe (keys -> figure) is
registered in :mod:`workbench.views.cards` when the module is imported; optionally
``bench_cases(workspace)`` and ``warm_up(workspace)``.
"""

PAGE_MODULES = (
    "workbench.views.home",
    "workbench.views.domain",
    "workbench.views.spectrum",
    "workbench.views.heads",
    "workbench.views.attention",
    "workbench.views.why",
    "workbench.views.whatif",
    "workbench.views.training",
    "workbench.views.study",
    "workbench.views.memory",
)


def page_has_data(page: dict, workspace) -> bool:
    """Whether the workspace holds what the page shows (its runs, domain memories or studies)."""
    need = page.get("requires")
    if need == "runs":
        return bool(workspace.runs.names())
    if need == "domain":
        return bool(workspace.domains.names())
    if need == "studies":
        return bool(workspace.studies.names())
    return True
