"""Start-up stays light: building the command line, and predicting on a still image with the
default torch model, import none of the heavy optional packages they do not use (checked in a
fresh interpreter through sys.modules, so the result does not depend on timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("matplotlib", "onnx", "onnxruntime", "onnxscript", "openvino", "fastapi", "uvicorn", "ray")
ASTRONAUT = Path(__file__).resolve().parents[1] / "src" / "resemotenet" / "assets" / "astronaut.jpg"


def imported_after(code: str, timeout: float = 120) -> set[str]:
    """Top-level packages among HEAVY that are in sys.modules after ``code`` runs in a new interpreter."""
    probe = (
        f"import sys, json\n{code}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_cli_is_light():
    assert imported_after("import resemotenet.cli") == set()


def test_building_the_parser_and_help_are_light():
    assert imported_after("from resemotenet.cli import build_parser\nbuild_parser().format_help()") == set()


def test_importing_the_backends_loads_no_runtime():
    assert imported_after("import resemotenet.inference.backends") == set()


def test_the_probe_sees_an_import():  # the check above can fail: it sees a package that was imported
    pytest.importorskip("onnx", exc_type=ImportError)
    assert "onnx" in imported_after("import onnx")


def test_predicting_a_still_image_imports_only_what_it_uses(tmp_path):
    out = tmp_path / "r.jsonl"
    code = (
        "from resemotenet.cli import main\n"
        f"rc = main(['predict', {str(ASTRONAUT)!r}, '-o', {str(out)!r}])\n"
        "assert rc == 0, rc"
    )
    # onnxruntime is allowed: the default CenterFace detector runs on it when it is installed
    assert imported_after(code, timeout=300) - {"onnxruntime"} == set()
    assert out.read_text().strip()
