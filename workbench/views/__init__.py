"""One module per page. Each exposes PAGE (path, name, order, description),
``layout(workspace, **query)`` and ``register_callbacks(app, workspace)``.
"""

PAGE_MODULES = (
    "workbench.views.home",
    "workbench.views.domain",
    "workbench.views.spectrum",
)
