"""The ``bnnas`` console entry: every command listed and helpful, one-line errors, one definition per shared flag."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bnnas.cli.bench as bench_cli
import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.cli.main import COMMANDS, build_parser, main
from bnnas.errors import BNNASError
from conftest import one_line_error as _one_line_error

ROOT = Path(__file__).resolve().parents[1]
PARSED = [c for c in COMMANDS if c != "det"]  # det hands every argument to mim
HELP_ARGV = [[c] for c in PARSED if c != "correlate"] + [["correlate"], ["correlate", "rank"],
                                                         ["correlate", "early-bird"], ["det"]]


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices


def _all_parsers() -> dict[str, argparse.ArgumentParser]:
    top = _subparsers(build_parser())
    out = {name: p for name, p in top.items() if name not in ("correlate", "det")}
    out.update({f"correlate {n}": p for n, p in _subparsers(top["correlate"]).items()})
    return out


def test_help_lists_every_command_on_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, summary) in COMMANDS.items():
        assert any(l.split() and l.split()[0] == name and l.rstrip().endswith(summary) for l in out.splitlines()), name
    assert "bnnas [-h] [--version] COMMAND" in out


@pytest.mark.parametrize("argv", HELP_ARGV, ids=[" ".join(a) for a in HELP_ARGV])
def test_every_command_has_help(argv, capsys):
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage:" in out or "train" in out
    assert "(default: None)" not in out and "built-in digits" not in out


def test_bad_number_is_one_line_in_process(capsys, tmp_path):
    cases = [(["search", "--epochs", "0"], "argument --epochs: must be >= 1"),
             (["retrain", "--arch", "bnnas-spos", "--batch-size", "-1"], "argument --batch-size"),
             (["verify", "--arch", "x.json", "--seeds", "0"], "argument --seeds"),
             (["correlate", "--k", "1"], "bnnas correlate rank --help"),
             (["correlate", "early-bird", "--proxy-epochs", "0"], "argument --proxy-epochs"),
             (["bias", "--budgets", "5,0"], "argument --budgets"),
             (["bench", "--workers", "-1"], "argument --workers"),
             (["demo-data", "--num-train", "0"], "argument --num-train"),
             (["det-complexity", "cfg.py", "--size", "0"], "argument --size"),
             (["search", "--threads", "x"], "not an integer")]
    for argv, needle in cases:
        rc = main([*argv, "--work-dir", str(tmp_path / "w")] if argv[0] not in ("bench", "demo-data",
                                                                                 "det-complexity") else argv)
        _one_line_error(rc, capsys.readouterr().err, needle)
    assert not (tmp_path / "w").exists()
    _one_line_error(main(["nope"]), capsys.readouterr().err, "invalid choice: 'nope'")


@pytest.mark.slow
def test_bad_number_is_one_line_through_python_m_bnnas(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bnnas", "search", "--batch-size", "0", "--work-dir",
                        str(tmp_path / "w")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    line = _one_line_error(r.returncode, r.stderr, "argument --batch-size: must be >= 1 (got 0)")
    assert "bnnas search --help" in line and r.stdout == ""
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("argv,dest,value", [
    (["correlate", "rank", "--bn-epochs", "3"], "epochs", 3),
    (["correlate", "rank", "--epochs", "3"], "epochs", 3),
    (["correlate", "rank", "--supernet-batch", "16"], "batch_size", 16),
    (["correlate", "rank", "--supernet-lr", "0.1"], "lr", 0.1),
])
def test_old_spellings_parse_to_the_shared_dest(argv, dest, value):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert not hasattr(args, "bn_epochs") and not hasattr(args, "supernet_batch") and not hasattr(args, "supernet_lr")


def test_old_spellings_are_hidden_and_errors_name_the_spelling_used(capsys):
    rank = _all_parsers()["correlate rank"]
    text = rank.format_help()
    assert "--epochs" in text and "--bn-epochs" not in text and "--supernet-batch" not in text
    assert rank.parse_args([]).epochs == 10 and rank.parse_args([]).batch_size is None  # the primary's defaults
    _one_line_error(main(["correlate", "--bn-epochs", "0"]), capsys.readouterr().err, "argument --bn-epochs")


def test_shared_flags_have_one_definition():
    """Every command that has a shared flag spells and types it the same way."""
    specs = {name: flags._SPECS[name] for name in flags.NAMES}
    own = {("bench", "--device")}  # bench takes auto|cpu|cuda: cuda on a machine without one prints skipped rows
    for cmd, p in _all_parsers().items():
        by_option = {o: a for a in p._actions for o in a.option_strings}
        for name, (option, spec) in specs.items():
            if option in by_option and (cmd, option) not in own:
                a = by_option[option]
                assert a.dest == name.replace("-", "_"), (cmd, option)
                assert a.type is spec.get("type"), (cmd, option)
    have = lambda option: {c for c, p in _all_parsers().items()  # noqa: E731
                           if any(option in a.option_strings for a in p._actions)}
    assert {"search", "retrain", "verify", "correlate rank", "correlate early-bird", "bias"} <= have("--threads")
    assert {"search", "retrain", "verify", "correlate rank", "correlate early-bird", "bias"} <= have("--data")


def test_default_study_and_help_passthrough():
    assert cli.with_default_command([], "rank") == ["rank"]
    assert cli.with_default_command(["--k", "3"], "rank") == ["rank", "--k", "3"]
    assert cli.with_default_command(["bias", "--k"], "rank") == ["bias", "--k"]
    assert cli.with_default_command(["--help"], "rank") == ["--help"]


def test_bench_runs_bench_run_py(capsys):
    import torch

    n = torch.get_num_threads()
    try:
        assert main(["bench", "--quick", "--rows", "3"]) == 0
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    assert out.startswith("command: bnnas") and re.search(r"^\| 3 \|.*\| EA [\d.]+ ms", out, re.M), out
    _one_line_error(main(["bench", "--rows", "9"]), capsys.readouterr().err, "unknown rows 9")


def test_bench_outside_a_checkout_is_one_clear_error(monkeypatch, tmp_path):
    assert bench_cli.bench_script() == ROOT / "bench" / "run.py"
    monkeypatch.setattr(bench_cli, "__file__", str(tmp_path / "site-packages" / "bnnas" / "cli" / "bench.py"))
    with pytest.raises(BNNASError, match="source checkout"):
        bench_cli.bench_script()


@pytest.mark.parametrize("tool", ["search", "retrain", "export_backbone", "verify", "stability", "correlation",
                                  "bias", "make_coco_demo", "det_complexity", "det"])
def test_tools_are_thin_wrappers(tool):
    text = (ROOT / "tools" / f"{tool}.py").read_text()
    assert "sys.path" not in text and "from bnnas.cli." in text and len(text.splitlines()) <= 20
