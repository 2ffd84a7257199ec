"""One CLI vocabulary: ``--model`` is always weights, ``--arch`` an architecture, ``--data NAME:PATH``
a dataset, ``-o/--output`` where results go, ``--limit`` how many samples; old spellings still work
for one release and say what to write instead."""

from __future__ import annotations

import argparse

import pytest

from resemotenet.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


@pytest.mark.parametrize("command", ["eval", "export", "quantize", "calibrate", "predict", "demo", "serve", "train"])
def test_model_means_weights(command):
    p = _subparsers()[command]
    assert "--model" in _flags(p)
    help_of_model = next(a.help for a in p._actions if "--model" in a.option_strings)
    assert "architecture" not in (help_of_model or "").split(";")[0]


def test_no_command_spells_a_concept_another_way():
    banned = {
        "--checkpoint",
        "--check-data",
        "--check-size",
        "--calibration",
        "--calibration-size",
        "--bn-data",
        "--bn-size",
        "--output-dir",
    }
    for name, p in _subparsers().items():
        assert not (_flags(p) & banned), (name, _flags(p) & banned)
        if "--output" in _flags(p):
            assert "-o" in _flags(p), name
        positional = [a.metavar or a.dest for a in p._actions if not a.option_strings and a.dest != "help"]
        assert not [x for x in positional if x in ("checkpoint", "checkpoints")], name


def test_train_takes_arch_and_model_is_weights(tmp_path, fer2013_csv, tiny_checkpoint, capsys):
    from resemotenet.cli.train import _model_flag

    args = argparse.Namespace(command="train", model=str(tiny_checkpoint), arch=None, init_from=None)
    _model_flag(args)
    assert args.init_from == str(tiny_checkpoint) and args.arch is None
    args = argparse.Namespace(command="train", model="resemotenet_t", arch=None, init_from=None)
    _model_flag(args)
    assert args.arch == "resemotenet_t" and args.init_from is None
    assert "use --arch resemotenet_t" in capsys.readouterr().err


def test_old_spellings_work_and_say_so(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(tiny_checkpoint), "--output-dir", str(out)]) == 0
    assert (out / "results.jsonl").is_file()
    assert "--output-dir is deprecated" in capsys.readouterr().err


def test_positional_and_option_model_agree(tmp_path, tiny_checkpoint, fer2013_csv, capsys):
    data = f"fer2013:{fer2013_csv}"
    assert main(["eval", "--model", str(tiny_checkpoint), "--data", data]) == 0
    assert main(["eval", str(tiny_checkpoint), "--data", data]) == 0
    capsys.readouterr()
    assert main(["eval", str(tiny_checkpoint), "--model", "fast", "--data", data]) == 2
    assert "two models given" in capsys.readouterr().err
    assert main(["eval", "--data", data]) == 2
    assert "no model given" in capsys.readouterr().err


def test_every_help_page_renders():
    for name, p in _subparsers().items():
        text = p.format_help()
        assert text.startswith("usage: resemotenet " + name), name
