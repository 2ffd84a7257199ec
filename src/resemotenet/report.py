"""One self-contained HTML page for a run folder, and the figures of the trust commands.

Why one file: a report travels by e-mail or a ticket and must open years later without a
server, so every image is embedded as a base64 data URI and the CSS is inline; nothing is
fetched. The page is assembled from what the other commands wrote into the folder (each section
appears when its file exists): ``results.csv`` + ``curves.png`` (train), ``test_metrics.json``
(train), ``metrics.json`` + ``confusion.png`` + ``reliability.png`` (eval), ``calibration.json``
and ``risk_coverage.json/.png`` (calibrate, eval --risk-coverage), ``robustness.json/.png``
(eval --corruptions), ``slices.json`` (eval --attributes), ``audit.json`` (audit).
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path
from typing import Any

from .utils.errors import DataError
from .utils.io import atomic_write_text
from .utils.mpl import pyplot, save_figure

NEEDS_ONE_OF = ("results.csv", "test_metrics.json", "metrics.json")
CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}h1{margin-bottom:.1em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.muted{color:#777;font-size:.9em}.kv td{text-align:left}"""


def robustness_png(result: dict[str, Any], out: str | Path) -> Path:
    """Accuracy against severity, one line per corruption, clean accuracy dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    levels = result["severities"]
    for name, per in result["corruptions"].items():
        ax.plot(levels, [per[str(s)]["accuracy"] for s in levels], marker="o", label=name)
    ax.axhline(result["clean"]["accuracy"], color="k", ls="--", label="clean")
    ax.set(xlabel="severity", ylabel="accuracy", xticks=levels, title=f"robustness ({result['split']})")
    return save_figure(fig, out, [ax])


def risk_coverage_png(rc: dict[str, Any], out: str | Path) -> Path:
    """Accuracy on the kept faces against the share kept; the recommended threshold marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rc["curve"]["coverage"], rc["curve"]["accuracy"], label=rc.get("split", "val"))
    if rc.get("test_curve"):
        ax.plot(rc["test_curve"]["coverage"], rc["test_curve"]["accuracy"], label="test", alpha=0.7)
    rec = rc.get("recommended") or {}
    if rec.get("min_confidence") is not None:
        ax.axhline(rec["target_accuracy"], color="gray", ls=":", lw=1)
        ax.plot([rec["coverage"]], [rec["accuracy"]], "ro", label=f"min-confidence {rec['min_confidence']:.2f}")
    ax.set(
        xlabel="coverage (share decided automatically)",
        ylabel="accuracy on kept faces",
        xlim=(0, 1),
        title="risk-coverage",
    )
    return save_figure(fig, out, [ax])


# ---- HTML --------------------------------------------------------------------------------
def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(head: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))

    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from exc


def _curves(run: Path) -> str:
    parts = []
    if (run / "curves.png").is_file():
        parts.append(_img(run / "curves.png", "training curves"))
    if (run / "results.csv").is_file():
        rows = list(csv.DictReader((run / "results.csv").open()))
        cols = [
            c
            for c in ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1")
            if rows and c in rows[0]
        ]
        shown = rows if len(rows) <= 12 else rows[:3] + rows[-9:]
        parts.append(_table(cols, [[_num(r[c]) for c in cols] for r in shown]))
        if rows and "val_acc" in rows[0]:
            best = max(rows, key=lambda r: float(r["val_acc"] or 0))
            parts.append(
                f'<p class="muted">{len(rows)} epochs; best val_acc {float(best["val_acc"]):.4f} '
                f"at epoch {int(best['epoch']) + 1}</p>"
            )
    return "".join(parts)


def _num(v: str) -> Any:
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def _metrics(m: dict[str, Any], title: str) -> str:
    keys = [k for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "nll", "ece", "temperature", "tta") if k in m]
    out = f"<h3>{html.escape(title)}</h3>" + _what(m) + _table(keys, [[m[k] for k in keys]])
    if m.get("note"):
        out += f'<p class="muted">{html.escape(m["note"])}</p>'
    if m.get("per_class"):
        out += _table(
            ["class", "precision", "recall", "F1", "n"],
            [[c, r["precision"], r["recall"], r["f1"], r["support"]] for c, r in m["per_class"].items()],
        )
    return out


def _what(m: dict[str, Any]) -> str:
    """What was measured: the model, the data, the split and the date (as far as the file says)."""
    rows = [
        (label, m[key])
        for label, key in (("model", "model"), ("data", "data"), ("split", "split"), ("measured", "date"))
        if m.get(key) not in (None, "")
    ]
    if not rows:
        return ""
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="kv">{cells}</table>'


def _confusion(run: Path, m: dict[str, Any] | None) -> str:
    if (run / "confusion.png").is_file():
        return _img(run / "confusion.png", "confusion matrix")
    if not m or "confusion" not in m:
        return ""
    labels = m["labels"]
    rows = []
    for name, row in zip(labels, m["confusion"]):
        total = max(1, sum(row))
        cells = "".join(f'<td style="background:rgba(31,119,180,{v / total:.2f})">{v}</td>' for v in row)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    head = "".join(f"<th>{html.escape(n)}</th>" for n in labels)
    return f"<table><tr><th>true \\ predicted</th>{head}</tr>{''.join(rows)}</table>"


def _calibration(c: dict[str, Any]) -> str:
    rows = [
        [f"{s} {when}", c[s][when]["nll"], c[s][when]["ece"], c[s][when]["accuracy"]]
        for s in ("val", "test")
        for when in ("before", "after")
        if s in c
    ]
    return (
        f"<p>temperature {c['temperature']:.4f} (was {c.get('previous_temperature', 1.0):.4f}), fitted on "
        f"{html.escape(c.get('fitted_on', 'val'))}; the test rows are a report only.</p>"
        + _table(["split", "NLL", "ECE", "accuracy"], rows)
    )


def _risk(run: Path, rc: dict[str, Any]) -> str:
    rec = rc.get("recommended") or {}
    if rec.get("min_confidence") is not None:
        split = html.escape(rc.get("split", "val"))
        text = (
            f"For a target accuracy of {rec['target_accuracy']:.2f} (chosen on {split}): "
            f"<b>--min-confidence {rec['min_confidence']:.3f}</b> keeps {100 * rec['coverage']:.1f} % of faces "
            f"at accuracy {rec['accuracy']:.4f}; {100 * rec['deferred']:.1f} % go to a person."
        )
        if rec.get("test"):
            text += (
                f" On test it keeps {100 * rec['test']['coverage']:.1f} % at accuracy {rec['test']['accuracy']:.4f}."
            )
    else:
        text = html.escape(rec.get("note", "no recommendation"))
    img = _img(run / "risk_coverage.png", "risk-coverage") if (run / "risk_coverage.png").is_file() else ""
    return f"<p>{text}</p>{img}"


def _robustness(run: Path, r: dict[str, Any]) -> str:
    levels = r["severities"]
    rows = [["clean", r["clean"]["accuracy"]] + [""] * (len(levels) - 1)]
    rows += [[n] + [per[str(s)]["accuracy"] for s in levels] for n, per in r["corruptions"].items()]
    img = _img(run / "robustness.png", "robustness") if (run / "robustness.png").is_file() else ""
    return (
        _table(["accuracy"] + [f"severity {s}" for s in levels], rows)
        + f"<p>mean corrupted accuracy {r['mean_corrupted_accuracy']:.4f} "
        f"({100 * r['relative_accuracy']:.1f} % of clean), split {html.escape(str(r['split']))}, "
        f"n={r['n']}, seed {r['seed']}</p>" + img
    )


def _slices(s: dict[str, Any]) -> str:
    out = []
    for attr, r in s["attributes"].items():
        gap = "" if r["gap"] is None else f" accuracy gap {r['gap']:.4f} (best {r['best']}, worst {r['worst']})"
        out.append(f"<h3>{html.escape(attr)}{html.escape(gap)}</h3>")
        out.append(
            _table(
                ["group", "n", "accuracy", "macro-F1"],
                [[v, g["n"], g["accuracy"], g["macro_f1"]] for v, g in r["groups"].items()],
            )
        )
    if s["unmatched"]["count"]:
        out.append(
            f'<p class="muted">{s["unmatched"]["count"]} image(s) of the attributes file are not in '
            f"the split, e.g. {html.escape(', '.join(s['unmatched']['examples']))}</p>"
        )
    return "".join(out)


def _audit(run: Path, a: dict[str, Any]) -> str:
    ex, near = a["exact"], a["near"]
    rows = [[pair, ex["pairs"][pair], near["pairs"].get(pair, 0)] for pair in ex["pairs"]]
    out = (
        f"<p>{a['n']} images; <b>{ex['redundant_rows']}</b> redundant rows (identical pixels) in "
        f"{ex['groups']} groups, {ex['label_conflicts']} with conflicting labels; "
        f"{near['pairs_distinct_images']} near-duplicate pairs (pHash within {a['threshold']} bits, "
        f"correlation at least {a['min_corr']}); {a['exclude_train']} training rows also appear in "
        f"val or test.</p>" + _table(["split pair", "exact pairs", "near pairs"], rows)
    )
    for kind in ("exact", "near"):
        if (run / f"audit_{kind}.png").is_file():
            out += f"<h3>{kind} examples</h3>" + _img(run / f"audit_{kind}.png", f"{kind} duplicate examples")
    return out


def build_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` (default ``run_dir/report.html``) and return its path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"{run}: run folder not found")
    if not any((run / f).is_file() for f in NEEDS_ONE_OF):
        raise DataError(
            f"{run}: nothing to report: none of {', '.join(NEEDS_ONE_OF)} found "
            "(run 'resemotenet train' or 'resemotenet eval --output' into it first)"
        )
    sections: list[tuple[str, str]] = []
    if (run / "results.csv").is_file() or (run / "curves.png").is_file():
        sections.append(("Training curves", _curves(run)))
    metrics = None
    parts = []
    for name, title in (
        ("test_metrics.json", "test (after training, best checkpoint)"),
        ("metrics.json", "evaluation"),
    ):
        if (run / name).is_file():
            metrics = _load(run / name)
            parts.append(_metrics(metrics, f"{title}: {name}"))
    if parts:
        sections.append(("Metrics", "".join(parts)))
    if conf := _confusion(run, metrics):
        sections.append(("Confusion matrix", conf))
    if (run / "reliability.png").is_file():
        sections.append(("Reliability", _img(run / "reliability.png", "reliability diagram")))
    for name, title, render in (
        ("calibration.json", "Calibration", lambda d: _calibration(d)),
        ("risk_coverage.json", "Risk-coverage (human in the loop)", lambda d: _risk(run, d)),
        ("robustness.json", "Robustness under corruptions", lambda d: _robustness(run, d)),
        ("slices.json", "Fairness slices", lambda d: _slices(d)),
        ("audit.json", "Data audit (duplicates and leakage)", lambda d: _audit(run, d)),
    ):
        if (run / name).is_file():
            sections.append((title, render(_load(run / name))))
    body = "".join(f"<h2>{html.escape(t)}</h2>{c}" for t, c in sections)
    name = html.escape(run.name)
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>resemotenet report: {name}'
        f"</title><style>{CSS}</style></head><body><h1>Run report: {name}</h1>"
        f'<p class="muted">{html.escape(str(run))}</p>{_config(run)}{body}</body></html>\n'
    )
    out = Path(output) if output else run / "report.html"
    atomic_write_text(out, page)
    return out


def _config(run: Path) -> str:
    path = run / "config.yaml"
    if not path.is_file():
        return ""
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return ""
    pick = {
        "model": (cfg.get("model") or {}).get("name"),
        "data": (cfg.get("data") or {}).get("name"),
        "epochs": cfg.get("epochs"),
        "batch_size": cfg.get("batch_size"),
        "lr": cfg.get("lr"),
        "seed": cfg.get("seed"),
        "preprocess": cfg.get("preprocess"),
    }
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in pick.items())
    return f'<table class="kv">{rows}</table>'
