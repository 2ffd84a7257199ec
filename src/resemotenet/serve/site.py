"""The site loop inside the service: fine-tune on the reviewed faces, read the before/after,
promote the result on a click, roll back.

The fine-tune runs as ``resemotenet finetune`` in a child process (the service needs no
training code, and a crash or kill of the fine-tune cannot take the service down): its output
folder is ``DIR/runs/<name>/`` of the review folder, written to a temporary folder and renamed
by the command itself, so a run folder either holds a finished model and ``report.json`` or
does not exist. Promote swaps the served Predictor between two requests (no restart) after
checking that the new model has the same labels and input; the previous one is kept for
``rollback``. ``DIR/served.json`` records what is served and what was served before.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..card import ModelCard
from ..inference.backends import read_card
from ..utils.errors import ResEmoteNetError
from ..utils.io import atomic_write_text
from .errors import Conflict, NotFound, Unprocessable

RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
WEIGHTS, REPORT = "model.safetensors", "report.json"


class FinetuneJob:
    """One ``resemotenet finetune`` child process and its progress (epochs done of total)."""

    def __init__(self, name: str, cmd: list[str], log: Path):
        self.name, self.cmd, self.log = name, cmd, log
        self.state, self.epoch, self.epochs, self.error = "running", 0, 0, None
        self.started, self.ended = time.time(), None
        self._proc = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        threading.Thread(target=self._follow, name=f"finetune-{name}", daemon=True).start()

    def _follow(self) -> None:
        lines = []
        with open(self.log, "a") as log:
            for line in self._proc.stdout:  # type: ignore[union-attr]
                log.write(line)
                log.flush()
                lines.append(line.rstrip())
                m = re.match(r"epoch (\d+)/(\d+)", line)
                if m:
                    self.epoch, self.epochs = int(m.group(1)), int(m.group(2))
        code = self._proc.wait()
        self.ended = time.time()
        if code == 0:
            self.state = "done"
        else:
            self.state = "failed"
            self.error = next((x for x in reversed(lines) if x.strip()), f"exit code {code}")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "error": self.error,
            "started": self.started,
            "ended": self.ended,
        }


class SiteLoop:
    """Fine-tune jobs, their reports, promote and rollback for one service with review on."""

    def __init__(self, service: Any):
        self.service = service
        self.root = Path(service.review.root)
        self.runs = self.root / "runs"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, FinetuneJob] = {}
        self.served = str(service.settings.model)
        self.previous: list[tuple[str, Any]] = []  # (weights, Predictor) served before, newest last
        self._lock = threading.Lock()

    # ---- fine-tune ------------------------------------------------------------------------------
    def start(self, epochs: int | None = None, layers: str | None = None) -> dict[str, Any]:
        """Start a fine-tune of the served model on the labelled faces (one at a time)."""
        with self._lock:
            if any(j.state == "running" for j in self.jobs.values()):
                raise Conflict("a fine-tune is already running; wait for it or stop it")
            name = self._new_name()
            folder = self.runs / f"{name}.data"  # a snapshot: labels given meanwhile wait for the next run
            self.service.review.materialize_folder(folder)  # a folder: dataset with groups.csv
            cmd = [sys.executable, "-m", "resemotenet", "finetune", self.served, "--data", f"folder:{folder}"]
            cmd += ["-o", str(self.runs / name)]
            if epochs is not None:
                cmd += ["--epochs", str(int(epochs))]
            if layers is not None:
                cmd += ["--layers", str(layers)]
            job = FinetuneJob(name, cmd, self.runs / f"{name}.log")
            self.jobs[name] = job
            return job.to_dict()

    def _new_name(self) -> str:
        """ft-DATE-TIME, with -2, -3 ... when a run of that second exists (a fast failure, clicked again)."""
        base = name = time.strftime("ft-%Y%m%d-%H%M%S")
        n = 1
        while name in self.jobs or any((self.runs / f"{name}{end}").exists() for end in ("", ".data", ".log")):
            n += 1
            name = f"{base}-{n}"
        return name

    def job(self, name: str) -> FinetuneJob:
        if name not in self.jobs:
            raise NotFound(f"no fine-tune {name!r}")
        return self.jobs[name]

    def reports(self) -> list[dict[str, Any]]:
        """Every finished run in DIR/runs with its before/after (names relative to the folder)."""
        out = []
        for rep in sorted(self.runs.glob(f"*/{REPORT}")):
            try:
                report = json.loads(rep.read_text())
            except (OSError, ValueError):
                continue
            held = report.get("held_out", {})
            out.append(
                {
                    "name": rep.parent.name,
                    "weights": f"runs/{rep.parent.name}/{WEIGHTS}",
                    "date": report.get("date"),
                    "parts": report.get("parts"),
                    "held_out": {
                        k: held.get(k) for k in ("all", "uncertain", "confident", "site_estimate") if k in held
                    },
                    "verdict": held.get("verdict"),
                    "note": held.get("note"),
                    "regression_on_confident": held.get("regression_on_confident"),
                    "served": self.served.endswith(f"runs/{rep.parent.name}/{WEIGHTS}"),
                }
            )
        return out

    # ---- promote / rollback ---------------------------------------------------------------------
    def promote(self, name: str) -> dict[str, Any]:
        """Serve ``DIR/runs/<name>/model.safetensors`` from the next request on."""
        if not RUN_NAME.match(name or ""):
            raise NotFound(f"no fine-tuned model {name!r}")
        path = self.runs / name / WEIGHTS
        if not path.is_file():
            raise NotFound(f"no fine-tuned model {name!r} (runs/{name}/{WEIGHTS})")
        try:
            card = read_card(path)
        except ResEmoteNetError as exc:
            raise Unprocessable(f"runs/{name}/{WEIGHTS}: {exc}") from None
        _check_compatible(card, self.service.predictor.card, name)
        with self._lock:
            old = self.service.swap_model(str(path))
            self.previous.append((self.served, old))
            self.served = str(path)
            self._record()
        return {"served": f"runs/{name}/{WEIGHTS}", "previous": _shown(self.previous[-1][0], self.root)}

    def rollback(self) -> dict[str, Any]:
        """Serve the model served before the last promote again."""
        with self._lock:
            if not self.previous:
                raise Conflict("nothing to roll back to: no model was promoted since the service started")
            weights, predictor = self.previous.pop()
            self.service.swap_model(weights, predictor)
            self.served = weights
            self._record()
        return {"served": _shown(weights, self.root)}

    def shown(self) -> str:
        """The served weights as a page may show them (relative to the review folder)."""
        return _shown(self.served, self.root)

    def _record(self) -> None:
        state = {"served": _shown(self.served, self.root), "previous": [_shown(w, self.root) for w, _ in self.previous]}
        atomic_write_text(self.root / "served.json", json.dumps(state, indent=1))

    def stop_all(self) -> None:
        for j in self.jobs.values():
            j.stop()


def _check_compatible(new: ModelCard, served: ModelCard, name: str) -> None:
    if tuple(new.labels) != tuple(served.labels):
        raise Unprocessable(
            f"runs/{name}: labels {list(new.labels)} differ from the served model's {list(served.labels)}"
        )
    if new.preprocess.channels != served.preprocess.channels:
        raise Unprocessable(
            f"runs/{name}: takes {new.preprocess.channels}-channel input, the served model {served.preprocess.channels}"
        )


def _shown(weights: str, root: Path) -> str:
    """A weights path as a page may show it: relative to the review folder, or a shipped name."""
    try:
        return Path(weights).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return weights if os.sep not in weights and "/" not in weights else Path(weights).name
