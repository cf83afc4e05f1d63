"""One module per page. Each exposes PAGE (path, name, order, description),
``layout(workspace, **query)`` and ``register_callbacks(app, workspace)``.
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
    "workbench.views.memory",
)
