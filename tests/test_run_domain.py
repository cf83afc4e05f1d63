"""Each tau run is linked to the loaded domain memory its checkpoint's fingerprint names."""

from __future__ import annotations

from pathlib import Path

from tauformer.checkpoint import checkpoint_dir, save_checkpoint
from workbench.data import DEMO_DIR, Workspace, demo_workspace
from workbench.data.run_domain import domain_link

from conftest import tiny_model


def test_the_demo_tau_run_is_linked_to_the_demo_domain_memory(tmp_path):
    ws = demo_workspace(cache_dir=tmp_path)
    link = domain_link(ws, "tau")
    fingerprint = ws.domains.load("demo").fingerprint
    assert link.laplacian == "domain" and link.fingerprint == fingerprint
    assert link.domain == "demo" and link.matches("demo") and not link.matches("other")
    assert link.recorded_name == "pydoc-topics"
    assert domain_link(ws, "dot").laplacian is None and domain_link(ws, "dot").domain is None


def test_the_link_is_by_fingerprint_not_name(tmp_path):
    # the demo runs with no domain memory loaded, then with the demo's under another name
    alone = Workspace(runs=[DEMO_DIR], domains=[], cache_dir=tmp_path / "a")
    link = domain_link(alone, "tau")
    assert link.laplacian == "domain" and link.fingerprint and link.domain is None
    renamed = tmp_path / "mine.safetensors"
    renamed.symlink_to(Path(DEMO_DIR) / "domain" / "domain.safetensors")
    other = Workspace(runs=[DEMO_DIR], domains=[renamed], cache_dir=tmp_path / "b")
    assert domain_link(other, "tau").domain == "mine"


def test_a_run_trained_with_the_chain_links_to_no_domain_memory(tmp_path):
    run = tmp_path / "chain-run"
    save_checkpoint(checkpoint_dir(run, 1), tiny_model(), step=1, domain={"laplacian": "chain"})
    ws = Workspace(runs=[run], domains=[Path(DEMO_DIR) / "domain"], cache_dir=tmp_path / "cache")
    link = domain_link(ws, "chain-run")
    assert link.laplacian == "chain" and link.fingerprint is None and link.domain is None
    assert not link.matches("demo")


def test_the_notice_lines_of_the_why_spectrum_and_whatif_pages(tmp_path):
    from workbench.views.domain_notice import choice_notice, mismatch, picker_notice

    ws = demo_workspace(cache_dir=tmp_path / "demo")
    assert mismatch(ws, "tau", None, "demo") is None and mismatch(ws, "dot", None, "demo") is None
    assert picker_notice(ws, "tau", None, "demo") == ("", None, True)
    assert choice_notice(ws, "tau", None, "domain:demo") == ("", True)
    assert choice_notice(ws, "tau", None, "chain") == ("", True)  # an ablation chosen on purpose
    alone = Workspace(runs=[DEMO_DIR], domains=[], cache_dir=tmp_path / "alone")
    text = mismatch(alone, "tau", None, "elsewhere")
    assert text.startswith("tau was trained with a domain memory that is not loaded (pydoc-topics, fingerprint ")
    assert picker_notice(alone, "tau", None, "elsewhere")[1:] == (None, True)  # nothing to offer
    run = tmp_path / "chain-run"
    save_checkpoint(checkpoint_dir(run, 1), tiny_model(), step=1, domain={"laplacian": "chain"})
    chain = Workspace(runs=[run], domains=[Path(DEMO_DIR) / "domain"], cache_dir=tmp_path / "chain")
    assert mismatch(chain, "chain-run", None, "demo") == "chain-run was trained with the chain Laplacian, not a domain memory."
    assert choice_notice(chain, "chain-run", None, "domain:demo")[1] is False
