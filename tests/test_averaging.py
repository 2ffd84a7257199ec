"""Weight averaging of checkpoints (``resemotenet average``) and the batch-norm re-estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resemotenet.config import PreprocessSpec
from resemotenet.engine.averaging import recompute_bn
from resemotenet.labels import EMOTIONS7
from resemotenet.models import create_model, load_model, save_model
from resemotenet.models.checkpoint import average_states, load_checkpoint, make_meta
from resemotenet.utils.errors import CheckpointError, ConfigError

SPEC = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))


def _save(path, seed, name="resemotenet_s", spec=SPEC):
    torch.manual_seed(seed)
    model = create_model(name, num_classes=7, in_chans=1)
    for m in model.modules():  # distinct running statistics per file
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.num_batches_tracked.fill_(seed + 1)
    meta = make_meta(name, {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7)
    return save_model(path, model.eval(), meta), model.state_dict()


def test_average_is_the_mean_of_the_weights(tmp_path):
    paths, states = zip(*[_save(tmp_path / f"m{i}.pt", i) for i in range(3)])
    avg, meta = average_states(list(paths))
    for k, v in avg.items():
        if v.is_floating_point():
            assert torch.allclose(v, sum(s[k] for s in states) / 3, atol=1e-6), k
        else:
            assert torch.equal(v, states[-1][k])  # counters come from the last file
    assert meta["averaged_from"] == [str(p) for p in paths]
    assert not torch.allclose(avg["fc4.weight"], states[0]["fc4.weight"])


def test_average_refuses_one_file_and_mismatched_models(tmp_path):
    a, _ = _save(tmp_path / "a.pt", 0)
    with pytest.raises(ConfigError, match="at least 2"):
        average_states([a])
    other = PreprocessSpec(size=64, channels=1, mean=(0.5,), std=(0.25,))
    b, _ = _save(tmp_path / "b.pt", 1, spec=other)
    with pytest.raises(CheckpointError, match="differ"):
        average_states([a, b])


def test_recompute_bn_matches_the_statistics_of_the_data(tmp_path):
    torch.manual_seed(0)
    model = create_model("resemotenet_s", num_classes=7, in_chans=1).eval()
    images = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)
    assert recompute_bn(model, images, SPEC, batch_size=20) == 40  # equal batches: exact mean
    assert not model.training
    x = (torch.as_tensor(images).float().div(255).unsqueeze(1) - 0.5) / 0.25
    with torch.no_grad():  # the first batch norm sees conv1's output over all images
        y = model.conv1(x)
    assert torch.allclose(model.bn1.running_mean, y.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(model.bn1.running_var, y.var((0, 2, 3)), rtol=5e-2)  # within-batch variances


def test_cli_average_with_bn_reestimate(tmp_path, fer2013_csv, capsys):
    from resemotenet.cli import main

    a, _ = _save(tmp_path / "a.pt", 0)
    b, _ = _save(tmp_path / "b.pt", 1)
    out = tmp_path / "avg.safetensors"
    assert main(["average", str(a), str(b), "-o", str(out), "--bn-data", f"fer2013:{fer2013_csv}"]) == 0
    assert "re-estimated on 140 training images" in capsys.readouterr().out
    _, meta, _ = load_checkpoint(out)
    assert meta["bn_recomputed_on"] == 140 and len(meta["averaged_from"]) == 2
    model = load_model(out)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 1, 48, 48))).all()
    assert main(["average", str(a), str(b), "-o", str(out)]) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err
    assert main(["average", str(a), str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.pt")]) == 2
    assert "not found" in capsys.readouterr().err
