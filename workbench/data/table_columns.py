"""Which columns of an uploaded table are the items' text and label (not features).

From the command line ``domain build --text-column text --label-column label`` says it; an
upload has no such flags, so they are detected: a string column named like a text (text,
document, sentence...) or a label (label, class, topic...), else by content -- the string
column with the longest values is the text, a string column with few distinct values the
label. An integer column named exactly like a label is a label too, never a feature.
"""

from __future__ import annotations

from pathlib import Path

TEXT_NAMES = ("text", "texts", "document", "doc", "content", "sentence", "body", "passage",
              "abstract", "description", "title", "caption", "prompt", "name")
LABEL_NAMES = ("label", "labels", "class", "category", "topic", "tag", "target", "genre", "group", "y")


def _frame(path: Path, suffix: str):
    import pandas as pd

    return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)


def _is_text(series) -> bool:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    sample = series.dropna().head(50)
    return len(sample) > 0 and all(isinstance(v, str) for v in sample)


def pick_columns(df) -> dict:
    """``{"text_column": name or None, "label_column": name or None}`` for a DataFrame."""
    import pandas as pd

    names = {str(c).strip().lower(): c for c in df.columns}
    strings = [c for c in df.columns if _is_text(df[c])]
    text = next((names[n] for n in TEXT_NAMES if n in names and names[n] in strings), None)
    label = next((names[n] for n in LABEL_NAMES if n in names and names[n] in strings and names[n] != text), None)
    if label is None:  # an integer class column named "label" is a label, not a feature
        label = next((names[n] for n in LABEL_NAMES if n in names and pd.api.types.is_integer_dtype(df[names[n]])
                      and not pd.api.types.is_bool_dtype(df[names[n]])), None)
    rest = [c for c in strings if c not in (text, label)]
    if label is None:  # by content: short strings with few distinct values
        label = next((c for c in rest if label_like(df[c], len(df))), None)
        rest = [c for c in rest if c != label]
    if text is None and rest:  # by content: the longest strings
        lengths = {c: df[c].dropna().astype(str).str.len().mean() for c in rest}
        text = max(rest, key=lambda c: (lengths[c], -list(df.columns).index(c)))
    return {"text_column": None if text is None else str(text), "label_column": None if label is None else str(label)}


def label_like(series, n: int) -> bool:
    """Short strings with few distinct values (a class), rather than free text."""
    values = series.dropna().astype(str)
    return len(values) > 0 and values.str.len().mean() < 24 and values.nunique() <= max(2, n // 5)


def table_columns(path, suffix: str) -> dict:
    """Keyword arguments for ``load_embedding`` naming the text / label columns of a table upload
    (empty for other formats, or when the table has no such column)."""
    if suffix not in (".csv", ".parquet"):
        return {}
    try:
        df = _frame(Path(path), suffix)
    except Exception:  # unreadable: load_embedding reports it with the file's name
        return {}
    return {k: v for k, v in pick_columns(df).items() if v is not None}
