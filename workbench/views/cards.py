"""Which keys each figure card depends on and how the server builds its figure from them.

A page registers one :class:`Recipe` per builder: the cards it fills (in output order), the
keys it reads (each a page component: the run picker, the prompt store, a layer dropdown...)
and the builder, ``build(workspace, *key values)``, the function the page callback calls.
The same recipe then serves

- the page: :func:`register_page_callback` wires the builder to the key components;
- the card's Export button: ``views.common.register_export`` gives each card a callback that
  reads the same key components (:func:`export_states`) when the button is pressed and
  rebuilds the figure on the server -- the browser's copy of a figure is never rendered (it
  could point Chromium at ``file://`` or ``http://`` sources);
- the batch export (``python -m workbench export``): :func:`build_for_state` fills the keys
  from the export's own state (``Key.batch`` or the key's default where the state is silent);
- the CSV export: a card whose numbers the generic walk of :mod:`workbench.export_csv` would
  mislabel names its own ``table(fig) -> {column: values}`` in ``tables``.

Keys are small JSON values (names, steps, indices, prompt text); builders validate them as
the page callbacks always have, so a key the browser changed only picks another figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dash import Input, Output, State

if TYPE_CHECKING:
    from workbench.data import Workspace

FIGURE = "figure"


@dataclass(frozen=True)
class Key:
    """One input of a figure: its name, the component holding it on the page, its batch value.

    ``component`` None means the key is not on the page (the app uses ``default``);
    ``batch(workspace, state)`` computes the batch export's value when given, else the
    batch export uses ``state[name]`` when present, else ``default``.
    """

    name: str
    component: str | None
    prop: str = "value"
    default: Any = None
    batch: Callable[[Any, dict], Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Recipe:
    """How one builder fills one or more figure cards of a page.

    ``build(workspace, *values)`` returns the figure of each card in ``cards`` (a single
    figure when there is one card and no ``extra``), then one value per ``extra`` output
    (component id, property) such as a facts table or a note. ``tables`` pairs a card with the
    function that reads its CSV table off its figure (cards not named there use the generic walk).
    """

    page: str
    cards: tuple[str, ...]
    keys: tuple[Key, ...]
    build: Callable = field(compare=False)
    extra: tuple[tuple[str, str], ...] = ()
    in_batch: bool = True
    tables: tuple[tuple[str, Callable], ...] = field(default=(), compare=False)

    def outputs(self, workspace: Workspace, values: dict) -> tuple:
        """Every output of the builder for key ``values`` (a dict by key name), as a tuple."""
        result = self.build(workspace, *[values.get(k.name, k.default) for k in self.keys])
        return result if isinstance(result, tuple) else (result,)

    def figure(self, workspace: Workspace, card: str, values: dict):
        """The figure of ``card`` for key ``values``."""
        return self.outputs(workspace, values)[self.cards.index(card)]

    def table(self, card: str) -> Callable | None:
        """``card``'s own CSV table function, or None (the generic walk)."""
        return dict(self.tables).get(card)


RECIPES: dict[str, Recipe] = {}
"""card id -> its recipe (filled when the page modules are imported)."""


def recipe(page: str, cards, build: Callable, keys, *, extra=(), in_batch: bool = True,
           tables: Mapping[str, Callable] | None = None) -> Recipe:
    """Register (or re-register, on a module reload) the recipe of ``cards`` and return it.

    ``tables`` maps a card to ``table(fig) -> {column: values}``, its CSV when the generic walk
    over the figure's traces would mislabel the numbers.
    """
    made = Recipe(page, (cards,) if isinstance(cards, str) else tuple(cards), tuple(keys), build,
                  tuple(tuple(e) for e in extra), in_batch, tuple((tables or {}).items()))
    unknown = [card for card, _ in made.tables if card not in made.cards]
    if unknown:
        raise ValueError(f"tables name cards {unknown} that the recipe does not fill {list(made.cards)}")
    for card in made.cards:
        known = RECIPES.get(card)
        if known is not None and known.page != page:
            raise ValueError(f"card {card!r} already belongs to page {known.page!r}")
        RECIPES[card] = made
    return made


def page_recipes(page: str) -> list[Recipe]:
    """The recipes of one page, in registration order, each once."""
    seen = []
    for made in RECIPES.values():
        if made.page == page and made not in seen:
            seen.append(made)
    return seen


def figure_output(card: str) -> Output:
    return Output({"type": "figure", "id": card}, FIGURE)


def page_keys(made: Recipe) -> list[Key]:
    """The keys read from page components (others take their defaults in the app)."""
    return [k for k in made.keys if k.component is not None]


def register_page_callback(app, workspace: Workspace, made: Recipe, *, prevent_initial_call: bool = False) -> None:
    """The page callback of a recipe: its key components in, its cards' figures (and extras) out."""
    keys = page_keys(made)

    def callback(*values):
        given = app_values(made, values)
        return made.build(workspace, *[given[k.name] for k in made.keys])

    callback.__name__ = getattr(made.build, "__name__", "build")
    outputs = [figure_output(c) for c in made.cards] + [Output(c, p) for c, p in made.extra]
    app.callback(*outputs, *[Input(k.component, k.prop) for k in keys],
                 prevent_initial_call=prevent_initial_call)(callback)


def app_values(made: Recipe, page_values) -> dict:
    """Key values by name from the page components' values (in :func:`page_keys` order)."""
    given = dict(zip([k.name for k in page_keys(made)], page_values))
    return {k.name: given.get(k.name, k.default) for k in made.keys}


def batch_values(made: Recipe, workspace: Workspace, state: dict) -> dict:
    """Key values by name for the batch export's ``state``."""
    values = {}
    for k in made.keys:
        if k.batch is not None:
            values[k.name] = k.batch(workspace, state)
        else:
            values[k.name] = state.get(k.name, k.default)
    return values


def build_for_state(workspace: Workspace, page: str, state: dict) -> dict:
    """{card: (figure, key values)} of every batch card of ``page`` for the export ``state``."""
    out = {}
    for made in page_recipes(page):
        if not made.in_batch:
            continue
        values = batch_values(made, workspace, state)
        outputs = made.outputs(workspace, values)
        for card, fig in zip(made.cards, outputs):
            out[card] = (fig, values)
    return out


def export_states(card: str) -> list[State]:
    """The States an export callback of ``card`` reads: its recipe's key components."""
    return [State(k.component, k.prop) for k in page_keys(RECIPES[card])]


# ------------------------------------------------------------- naming and placeholders
STEM_KEYS = (("run", "{}"), ("step", "step{}"), ("layer", "L{}"), ("head", "H{}"))
TITLE_KEYS = ("run", "step", "compare", "layer", "head", "token", "domain", "eig")


def is_placeholder(fig) -> bool:
    """Whether ``fig`` is an empty-state message (``fig_empty``) rather than a figure of data."""
    meta = getattr(fig.layout, "meta", None) if fig is not None else None
    return fig is None or (isinstance(meta, dict) and bool(meta.get("empty")))


def placeholder_text(fig) -> str:
    """The message of a placeholder figure."""
    texts = [a.text for a in fig.layout.annotations if a.text] if fig is not None else []
    return texts[0] if texts else "no data"


def file_stem(card: str, values: dict) -> str:
    """``card`` followed by the run, step, layer and head the figure shows (those it has keys for)."""
    parts = [card]
    for name, pattern in STEM_KEYS:
        value = values.get(name)
        if name in values and value not in (None, "", "all"):
            parts.append(pattern.format(value))
    return "_".join(parts)


def export_file_name(card: str, values: dict, fmt: str) -> str:
    """The file name of ``card``'s figure for key ``values`` as ``fmt``, e.g.
    ``attn-tokens_tau_step400_L1_H2.pdf``: the Export button's download and the batch export's
    file (:func:`file_stem` made safe by :func:`workbench.export.file_name`)."""
    from workbench.export import file_name

    return file_name(file_stem(card, values), fmt)


def export_title(card: str, fig, values: dict) -> str:
    """A document title: the figure's screen title (or the card id) and the keys that pick it."""
    from workbench.export import figure_title

    keys = ", ".join(f"{name} {values[name]}" for name in TITLE_KEYS
                     if values.get(name) not in (None, "") and not str(values[name]).startswith("__"))
    title = figure_title(fig, card)
    return f"{title} ({keys})" if keys else title
