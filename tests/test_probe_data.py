"""The probe data layer on the bundled demo: numpy views, pairing, caches, derived results."""

import math

import numpy as np
import pytest

from tauformer.data import ByteTokenizer, load_corpus, split_tokens
from tauformer.errors import ConfigError
from workbench.data import demo_workspace
from workbench.data.probes import MAX_PROMPT_TOKENS, default_prompt, js_divergence


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


@pytest.fixture(scope="module")
def prompt(ws):
    return ws.probes.default_prompt("tau")


def test_default_prompt_is_validation_prose(prompt):
    text = load_corpus()
    ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _, val = split_tokens(ids, 0.1)
    val_text = " ".join(bytes(val.tolist()).decode("utf-8", "ignore").split())
    assert 200 <= len(prompt.encode()) <= 256
    assert prompt[:60] in val_text
    assert default_prompt("abcdefghij" * 10) == "abcdefghij"  # no prose: the validation tail itself


def test_probe_views_are_numpy_with_labels(ws, prompt):
    tau = ws.probes.probe("tau", None, prompt)
    dot = ws.probes.probe("dot", None, prompt)
    T = len(prompt.encode())
    assert tau.weights.shape == (4, 3, T, T) and tau.weights.dtype == np.float32
    assert np.allclose(tau.weights.sum(-1), 1, atol=1e-5)
    assert tau.lambda_q.shape == tau.lambda_k.shape == tau.tau_q.shape == (4, 3, T)
    assert tau.temperature.shape == (4, 3) and tau.entropy.shape == (4, 3)
    assert tau.tokens == [ByteTokenizer().token_label(b) for b in prompt.encode()]
    assert dot.lambda_q is None and not dot.has_lambda and dot.kind == "dot"
    assert tau.step == 150 or tau.step == ws.runs.info("tau").steps[-1]
    assert ws.probes.probe("tau", None, prompt) is tau  # cached


def test_long_prompts_are_cut_to_the_limit(ws):
    view = ws.probes.probe("dot", None, "ab" * 600)
    assert view.T == MAX_PROMPT_TOKENS and view.truncated
    with pytest.raises(ConfigError, match="at least 2"):
        ws.probes.probe("dot", None, "a")


def test_pairing_and_compare_steps(ws, prompt):
    assert ws.probes.pair("tau") == "dot" and ws.probes.pair("dot") == "tau"
    a, b = ws.probes.probe_pair("tau", 60, "dot", prompt)
    assert a.step == ws.runs.nearest_step("tau", 60) and b.step == ws.runs.nearest_step("dot", a.step)
    a, b = ws.probes.probe_pair("tau", None, None, prompt)
    assert b is None


def test_js_divergence_properties(ws, prompt):
    a, b = ws.probes.probe_pair("tau", None, "dot", prompt)
    js = ws.probes.js_divergence(a, b)
    assert js.shape == (4, 3) and (js > 0).all() and (js <= math.log(2)).all()
    assert np.allclose(js_divergence(b.weights, a.weights), js, atol=1e-6)
    assert np.allclose(js_divergence(a.weights, a.weights), 0, atol=1e-7)
    # one head by hand, in float64
    p, q = a.weights[2, 1].astype(float), b.weights[2, 1].astype(float)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p, kl_q = (np.where(x > 0, x * np.log(x / m), 0).sum(-1) for x in (p, q))
        expected = float((0.5 * (kl_p + kl_q))[1:].mean())
    assert js[2, 1] == pytest.approx(expected, rel=1e-5)


def test_lambda_samples(ws, prompt):
    on_prompt = ws.probes.lambda_sample("tau", None, "prompt", prompt)
    on_val = ws.probes.lambda_sample("tau", None, "validation", prompt)
    assert on_prompt["lambda_q"].shape == (4, 3, len(prompt))
    assert on_val["lambda_k"].shape == (4, 3, 4 * 256)
    assert ((on_val["lambda_q"] >= 0) & (on_val["lambda_q"] < 1)).all()
    assert ws.probes.lambda_sample("dot", None, "prompt", prompt) is None


def test_spectral_explanation_rebuilds_the_models_lambda(ws, prompt):
    s = ws.probes.spectral("tau", None, prompt, 2, 1, 17)
    assert s["lambda_q_rebuilt"] == pytest.approx(s["lambda_q"], abs=1e-5)
    assert s["lambda_k_rebuilt"] == pytest.approx(s["lambda_k"], abs=1e-5)
    assert s["weights_q"].sum() == pytest.approx(1.0) and s["eigenvalues"].shape == (32,)
    assert s["energy_q"] == pytest.approx(float(np.dot(s["weights_q"], s["eigenvalues"])), rel=1e-5)
    with pytest.raises(ConfigError, match="dot-product"):
        ws.probes.spectral("dot", None, prompt, 0, 0, 0)


def test_whatif_unchanged_reproduces_and_changes_move(ws, prompt):
    same = ws.probes.whatif("tau", None, prompt)
    assert np.array_equal(same["before"].weights, same["after"].weights)
    assert same["val_loss"][0] == same["val_loss"][1] and same["change"] == "no change"
    sharp = ws.probes.whatif("tau", None, prompt, temperature_scale=0.01)
    assert (sharp["after"].entropy < sharp["before"].entropy).all()
    assert sharp["val_loss"][0] == same["val_loss"][0] and sharp["val_loss"][1] != same["val_loss"][1]
    shuffled = ws.probes.whatif("tau", None, prompt, laplacian="shuffle", seed=2)
    assert "shuffled" in shuffled["change"]
    own = ws.probes.whatif("tau", None, prompt, laplacian=f"domain:{ws.domains.names()[0]}")
    assert np.allclose(own["after"].weights, own["before"].weights, atol=1e-6)  # the demo trains on this memory
    with pytest.raises(ConfigError, match="dot-product"):
        ws.probes.whatif("dot", None, prompt)


def test_kv_cache_ratio_is_the_formula(ws):
    kv = ws.probes.kv_cache([("tau", None), ("dot", None)])
    D = kv["head_dim"]
    ratio = kv["bytes"]["tau"] / kv["bytes"]["dot"]
    assert np.allclose(ratio, (D + 1) / (2 * D))
    assert np.allclose(kv["bytes"]["dot"], 2 * 4 * 3 * kv["context"] * D * 4)  # float32 K and V


def test_decode_latency_is_measured_once(ws):
    runs = [("tau", None), ("dot", None)]
    assert ws.probes.decode_latency(runs, contexts=(16, 32), measure=False) is None
    lat = ws.probes.decode_latency(runs, contexts=(16, 32))
    assert lat["ms"]["tau"].shape == (2, lat["repeats"]) and (lat["ms"]["dot"] > 0).all()
    assert ws.probes.decode_latency(runs, contexts=(16, 32), measure=False) is lat


def test_concurrent_probes_of_one_model_do_not_mix(ws):
    """Request threads share cached models; each probe must see only its own forward pass."""
    from concurrent.futures import ThreadPoolExecutor

    from workbench.data import demo_workspace

    prompts = [f"thread {i}: " + "abcdefgh"[i:] * (3 + i) for i in range(6)]
    fresh = demo_workspace()
    with ThreadPoolExecutor(6) as pool:
        views = list(pool.map(lambda p: fresh.probes.probe("tau", None, p), prompts))
        sample = pool.submit(fresh.probes.lambda_sample, "tau", None, "validation", None)
        losses = [pool.submit(fresh.probes.whatif, "tau", None, p, temperature_scale=0.5) for p in prompts[:2]]
        sample.result(), [f.result() for f in losses]
    for prompt, view in zip(prompts, views):
        alone = ws.probes.probe("tau", None, prompt)
        assert view.T == len(prompt) and np.array_equal(view.lambda_q, alone.lambda_q)


def test_single_checkpoint_directories_load_whatever_their_name(tmp_path):
    """A checkpoint given directly is its own run, named ckpt-<step> or not, and loads."""
    import shutil

    from workbench.data import DEMO_DIR
    from workbench.data.runs import RunStore

    shutil.copytree(DEMO_DIR / "dot" / "ckpt-500", tmp_path / "final")
    runs = RunStore([tmp_path / "final", DEMO_DIR / "tau" / "ckpt-1000"])
    assert runs.names() == ["final", "tau"] and not runs.problems
    for name, step in (("final", 500), ("tau", 1000)):
        assert runs.info(name).steps == [step]
        assert runs.load(name)[1].step == step
