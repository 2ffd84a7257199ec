"""The site loop in the service: fine-tune jobs run as a child process, promote and rollback swap
the served model without a restart, and refuse what cannot be served in its place."""

from __future__ import annotations

import sys
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'resemotenet[serve]'")
httpx = pytest.importorskip("httpx", reason="httpx is not installed (part of the test extra)")

from resemotenet.inference.sources import demo_image  # noqa: E402
from resemotenet.models.checkpoint import load_checkpoint, load_model, save_model  # noqa: E402
from resemotenet.serve.server import ServerThread  # noqa: E402
from resemotenet.serve.settings import ServeSettings  # noqa: E402
from resemotenet.serve.site import FinetuneJob  # noqa: E402

PHOTO = demo_image().read_bytes()


def _run_folder(review, name, model="fast", **card_changes):
    """A finished fine-tune's folder as ``resemotenet finetune`` leaves it."""
    m = load_model(model)
    card = m.card.with_(**card_changes)
    (review / "runs" / name).mkdir(parents=True)
    save_model(review / "runs" / name / "model.safetensors", m, card.to_meta())
    (review / "runs" / name / "report.json").write_text(
        '{"date": "2026-12-07", "parts": {}, "held_out": {"verdict": "better", "all": {"faces": 10}}}'
    )


@pytest.fixture
def site(tmp_path):
    review = tmp_path / "review"
    _run_folder(review, "ft-good", temperature=3.5)
    _run_folder(review, "ft-other-labels", labels=("a", "b", "c", "d", "e", "f", "g"))
    settings = ServeSettings(port=0, model="fast", review=str(review))
    with ServerThread(settings) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        yield c, review


def test_promote_swaps_the_model_and_rollback_restores_it(site):
    c, review = site
    runs = c.get("/v1/finetune").json()
    assert {r["name"] for r in runs["runs"]} == {"ft-good", "ft-other-labels"} and not runs["can_roll_back"]
    before = c.get("/v1/models").json()["models"][0]
    r = c.post("/v1/models/promote", json={"name": "ft-good"})
    assert r.status_code == 200, r.text
    assert r.json()["served"] == "runs/ft-good/model.safetensors" and "/" not in r.json()["previous"]
    after = c.get("/v1/models").json()["models"][0]
    assert after["temperature"] == pytest.approx(3.5) and before["temperature"] != pytest.approx(3.5)
    assert c.post("/v1/predict", content=PHOTO).status_code == 200  # served by the promoted model
    assert (review / "served.json").is_file()
    assert c.post("/v1/models/rollback").json()["served"] == "fast"
    assert c.get("/v1/models").json()["models"][0]["temperature"] == pytest.approx(before["temperature"])
    r = c.post("/v1/models/rollback")
    assert r.status_code == 409 and "nothing to roll back" in r.json()["error"]


def test_promote_refuses_other_labels_and_unknown_names(site):
    c, _ = site
    r = c.post("/v1/models/promote", json={"name": "ft-other-labels"})
    assert r.status_code == 422 and "labels" in r.json()["error"]
    for name in ("../../etc", "nope"):
        r = c.post("/v1/models/promote", json={"name": name})
        assert r.status_code == 404 and "\n" not in r.json()["error"]


def test_finetune_job_reports_progress_and_the_reason_it_failed(tmp_path):
    script = "import sys\nfor i in range(1, 4):\n    print(f'epoch {i}/3 train_loss 1.0', flush=True)\n"
    ok = FinetuneJob("a", [sys.executable, "-c", script], tmp_path / "a.log")
    bad = FinetuneJob(
        "b", [sys.executable, "-c", "import sys; print('error: too few faces'); sys.exit(2)"], tmp_path / "b.log"
    )
    for job in (ok, bad):
        deadline = time.time() + 30
        while job.state == "running" and time.time() < deadline:
            time.sleep(0.05)
    assert ok.to_dict()["state"] == "done" and ok.epoch == 3 and ok.epochs == 3
    assert bad.state == "failed" and bad.error == "error: too few faces"
    assert "epoch 3/3" in (tmp_path / "a.log").read_text()


def test_the_promoted_card_is_the_one_on_disk(site):
    c, review = site
    c.post("/v1/models/promote", json={"name": "ft-good"})
    on_disk = load_checkpoint(review / "runs" / "ft-good" / "model.safetensors").card
    assert c.get("/v1/models").json()["models"][0]["labels"] == list(on_disk.labels)
