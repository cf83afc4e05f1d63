"""The domain-build benchmark's summary when the spectrum summary has no spectral gap."""

from bench_support import parse

from tauformer.bench import domain as bench_domain
from tauformer import spectral
from tauformer.domain import spectrum


def test_summary_says_na_when_the_gap_is_not_computed(monkeypatch):
    # the real trigger is D > SUMMARY_EIGSH_MAX (8192) or ARPACK not converging: slow; lowering
    # the thresholds sends a D = 8 Laplacian down the same None path
    monkeypatch.setattr(spectral, "DENSE_MAX", 2)
    monkeypatch.setattr(spectrum, "SUMMARY_EIGSH_MAX", 2)
    args = parse(bench_domain, ["--items", "400", "--features", "8", "--topics", "4"])
    result = bench_domain.run(args, lambda *a: None)
    first = result["summary"][0]
    assert "spectral gap n/a" in first
    assert result["params"]["dim"] == 8


def test_format_gap_prints_a_number_when_computed():
    assert bench_domain.format_gap(0.123456) == "0.1235"
    assert bench_domain.format_gap(None).startswith("n/a")
