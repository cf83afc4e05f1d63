"""The one spectrum: every Laplacian form gives the same oriented eigenvectors, on every page."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tauformer.laplacian import chain_laplacian
from tauformer.spectral import laplacian_spectrum, orient_eigenvectors
from workbench.data import demo_workspace
from workbench.data import domain_views as dv

from conftest import random_laplacian


def forms(L: torch.Tensor) -> dict:
    return {"torch": L, "torch sparse": L.to_sparse(), "numpy": L.numpy().astype(np.float64),
            "scipy": sp.csr_matrix(L.numpy().astype(np.float64))}


def test_every_form_gives_the_same_spectrum():
    L = random_laplacian(12, seed=5)
    spectra = {name: laplacian_spectrum(form) for name, form in forms(L).items()}
    ref = spectra["numpy"]
    np.testing.assert_allclose(L.double().numpy() @ ref.eigenvectors, ref.eigenvectors * ref.eigenvalues, atol=1e-7)
    for name, spec in spectra.items():
        np.testing.assert_allclose(spec.eigenvalues, ref.eigenvalues, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(spec.eigenvectors, ref.eigenvectors, atol=1e-6, err_msg=name)


def test_tied_ends_of_a_path_graph_mode_are_oriented_by_the_first():
    # a path graph's odd modes have two ends of equal size and opposite sign: the first one wins,
    # whatever rounding made the other a hair larger
    spec = laplacian_spectrum(chain_laplacian(16))
    fiedler = spec.eigenvectors[:, 1]
    assert abs(abs(fiedler[0]) - abs(fiedler[-1])) < 1e-12 and fiedler[0] > 0 > fiedler[-1]
    nudged = fiedler.copy()
    nudged[-1] *= 1 + 1e-9
    assert orient_eigenvectors(-nudged[:, None])[0, 0] > 0


def test_orientation_makes_the_largest_entry_positive():
    rng = np.random.default_rng(0)
    U = rng.standard_normal((9, 5))
    oriented = orient_eigenvectors(U)
    peaks = oriented[np.argmax(np.abs(oriented), axis=0), np.arange(5)]
    assert np.all(peaks > 0)
    np.testing.assert_allclose(np.abs(oriented), np.abs(U))
    np.testing.assert_allclose(orient_eigenvectors(-U), oriented)


def test_spectral_decomposition_refuses_a_partial_spectrum():
    from tauformer.errors import ShapeError
    from tauformer.spectral import Spectrum, spectral_decomposition

    ends = Spectrum(np.zeros(4), np.eye(8)[:, :4], complete=False)
    with pytest.raises(ShapeError, match="every eigenvector"):
        spectral_decomposition(torch.zeros(8), spectrum=ends)


def test_why_page_and_domain_pages_show_the_demo_eigenvectors_with_the_same_signs(tmp_path):
    # the demo tau run was trained on the demo domain memory: the Why page explains its lambdas
    # with the model's own (float32) Laplacian, the Domain / Spectrum pages draw the file's
    ws = demo_workspace(cache_dir=tmp_path)
    why = ws.probes.spectrum("tau", None)
    drawn = dv.spectrum(ws, "demo")
    np.testing.assert_allclose(why.eigenvalues, drawn["eigenvalues"], atol=1e-5)
    distinct = np.diff(drawn["eigenvalues"]).min()
    assert distinct > 1e-3  # no repeated eigenvalue: every eigenvector is fixed up to its sign
    alignment = np.sum(why.eigenvectors * drawn["eigenvectors"], axis=0)  # [D] cosines of unit columns
    assert np.all(alignment > 0.999)


def test_a_big_sparse_tensor_takes_the_partial_path_like_scipy(monkeypatch):
    import tauformer.spectral as spectral

    L = random_laplacian(40, seed=2).double()
    full = laplacian_spectrum(L)
    monkeypatch.setattr(spectral, "DENSE_MAX", 10)  # 40 nodes count as big: eigsh for both ends
    for form in (L.to_sparse(), L.to_sparse_csr(), sp.csr_matrix(L.numpy())):
        ends = laplacian_spectrum(form, k=4)
        assert not ends.complete and ends.eigenvectors.shape == (40, 8)
        np.testing.assert_allclose(ends.eigenvalues[:4], full.eigenvalues[:4], atol=1e-8)
        np.testing.assert_allclose(ends.eigenvalues[4:], full.eigenvalues[-4:], atol=1e-8)
        np.testing.assert_allclose(ends.eigenvectors[:, 4:], full.eigenvectors[:, -4:], atol=1e-6)
