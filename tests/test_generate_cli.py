"""`python -m tauformer generate` refuses bad sampling flags before it loads anything."""

from __future__ import annotations

import pytest

from tauformer.__main__ import main


@pytest.mark.parametrize("flag, value", [
    ("--top-k", "0"), ("--top-k", "-3"), ("--max-new-tokens", "-5"), ("--max-new-tokens", "0"),
    ("--temperature", "-1"), ("--temperature", "nan"), ("--temperature", "inf"), ("--top-k", "2.5"),
])
def test_a_bad_sampling_flag_exits_2_with_one_line_naming_it(flag, value, tmp_path, capsys):
    missing = tmp_path / "no-such-run"  # never reached: the flag is refused first
    with pytest.raises(SystemExit) as exc:
        main(["generate", str(missing), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert flag in err and value in err and "no-such-run" not in err


def test_temperature_0_and_top_k_1_are_accepted():
    from tauformer.__main__ import build_parser

    args = build_parser().parse_args(["generate", "run", "--temperature", "0", "--top-k", "1",
                                      "--max-new-tokens", "1"])
    assert (args.temperature, args.top_k, args.max_new_tokens) == (0.0, 1, 1)
