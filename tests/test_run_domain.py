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
