"""One door for a Laplacian's size against a model's head dim: one message, whatever the form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tauformer.errors import ShapeError
from tauformer.laplacian import as_laplacian_tensor, chain_laplacian, check_laplacian_size

REPO = Path(__file__).resolve().parents[1]
EXPECTED = "domain memory 'x': Laplacian is 10 x 10 but the model's head_dim is 8; rebuild the domain memory with --dim 8"


@pytest.mark.parametrize("form", ["torch", "torch sparse", "numpy", "scipy"])
def test_every_form_gets_the_same_size_message(form):
    L = chain_laplacian(10)
    given = {"torch": L, "torch sparse": L.to_sparse(), "numpy": L.numpy(), "scipy": sp.csr_matrix(L.numpy())}[form]
    with pytest.raises(ShapeError) as err:
        as_laplacian_tensor(given, 8, name="domain memory 'x'")
    assert str(err.value) == EXPECTED


def test_the_check_passes_the_right_size_and_words_its_callers_advice():
    check_laplacian_size((8, 8), 8)
    with pytest.raises(ShapeError, match=r"^f: the domain memory is 6 x 6 but the model's head_dim is 16 \(why\); do X$"):
        check_laplacian_size((6, 6), 16, name="f", subject="the domain memory", detail=" (why)", remedy="do X")
    assert as_laplacian_tensor(chain_laplacian(4).double().numpy(), 4).dtype == torch.float32


def test_no_other_module_words_the_size_check_itself():
    wording = "but the model's head_dim is"
    found = [str(p.relative_to(REPO)) for folder in ("tauformer", "workbench") for p in (REPO / folder).rglob("*.py")
             if wording in p.read_text(encoding="utf-8")]
    assert found == ["tauformer/laplacian.py"]
