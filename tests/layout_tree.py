"""Searching a Dash layout tree in tests."""


def find(component, wanted: str):
    """The component with id ``wanted`` in a layout tree, or None."""
    if getattr(component, "id", None) == wanted:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found = find(child, wanted)
            if found is not None:
                return found
    return None
