"""What happens at the end of an epoch: logging to results.csv, checkpoints, early stopping,
and a progress line. Only rank 0 runs the ones that write."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_text


class CSVLogger:
    """One row per epoch in ``results.csv`` (rewritten atomically, so a stop never truncates it)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path.is_file():
            self.rows = list(csv.DictReader(path.open()))

    def truncate(self, epochs: int) -> None:
        """Keep the rows of the first ``epochs`` epochs only (rewritten on the next ``log``)."""
        self.rows = [r for r in self.rows if int(r["epoch"]) < epochs]

    def log(self, row: dict[str, Any]) -> None:
        self.rows = [r for r in self.rows if int(r["epoch"]) < int(row["epoch"])] + [row]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r.get(k, "") for k in row})
        atomic_write_text(self.path, buf.getvalue())


class EarlyStopping:
    """Stop when the validation metric has not improved for ``patience`` epochs (0 = never)."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best = float("-inf")
        self.bad_epochs = 0

    def update(self, value: float) -> bool:
        """Record ``value``; return True when it is a new best."""
        if value > self.best:
            self.best, self.bad_epochs = value, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, d: dict[str, float]) -> None:
        self.best, self.bad_epochs = float(d["best"]), int(d["bad_epochs"])


class Progress:
    """The training loop's bar (tqdm on a terminal): step count, images/s and the running loss."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        from ..utils.progress import progress

        self.total, self.step = total, 0
        self.bar = progress(total=total, desc=desc, unit="step", enabled=enabled)
        self.items, self.start = 0, time.perf_counter()

    def update(self, step: int, items: int, **info: float) -> None:
        self.items += items
        self.bar.update(step - self.step)
        self.step = step
        rate = self.items / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix({"img/s": f"{rate:,.0f}", **{k: f"{v:.4f}" for k, v in info.items()}}, refresh=False)
        if step >= self.total:
            self.bar.close()
