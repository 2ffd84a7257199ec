"""The public API and the small commands: every advertised name resolves; `info` lists models."""

from __future__ import annotations

import pytest

import resemotenet
from resemotenet.cli import build_parser, main


@pytest.mark.parametrize("name", [n for n in resemotenet.__all__ if n != "__version__"])
def test_every_public_name_resolves(name):
    assert getattr(resemotenet, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        resemotenet.no_such_thing  # noqa: B018


def test_info_lists_models_with_parameter_counts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "resemotenet                    80,238,599 parameters" in out
    assert "resemotenet_s_plain" in out and "fer2013" in out


def test_every_subcommand_is_registered():
    from resemotenet.cli import COMMANDS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: resemotenet" in capsys.readouterr().out
