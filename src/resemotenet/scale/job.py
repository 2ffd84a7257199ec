"""``run_batch``: emotions of every face in many files, on a local Ray instance or a cluster.

Ray Data carries the work items to a pool of stateful actors (``map_batches`` with
``ItemWorker``: the model loads once per actor). The driver writes each finished item's part as
it streams back, then assembles the results file. A killed actor is restarted and its item
retried by Ray (``max_restarts`` / ``max_task_retries``); the keyed part files make a repeat
harmless. Actors are sized from the cluster's resources so that Ray Data's own tasks always
find a CPU: on a 2-CPU machine, 2 actors x 1 CPU would leave none and the job could stall.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..inference.faces import DEFAULT_DETECTOR
from ..utils.errors import ConfigError, ResEmoteNetError, extra_error
from ..utils.io import atomic_write_text
from ..utils.progress import progress
from .items import Parts, WorkItem, assemble, check_output, plan
from .worker import ItemWorker

RESTARTS = 4  # a worker killed more often than this on one job is a real problem, not bad luck


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is a separate part of the extra)
    except ImportError as exc:
        raise extra_error("ray", "ray", exc) from exc
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at ``host:port`` (ray.init would wait long)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379) or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one with "
            "'ray start --head' there, or leave out --address to run locally"
        ) from exc


RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune")


def quiet_ray(verbose: bool = False) -> None:
    """Ray's own log lines and warnings (start-up notes, deprecations, resource hints) are kept
    off the terminal unless ``verbose``: the job prints its own one-line summary and errors."""
    level = logging.INFO if verbose else logging.CRITICAL  # a failed job is our one line, not Ray's traceback
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose:
        warnings.filterwarnings("ignore", module=r"ray(\..*)?$")
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")


@contextlib.contextmanager
def terminal(verbose: bool = False) -> Iterator[TextIO]:
    """A stream for the job's own progress bar. Unless ``verbose``, whatever else is written
    to this process's standard error meanwhile (Ray's C++ core logs there directly, past
    Python's logging) goes to a temporary file that is dropped afterwards; the job's own
    errors are raised, and printed by the caller once the terminal is restored."""
    if verbose:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    own = os.fdopen(os.dup(saved), "w", buffering=1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield own
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            own.close()


def connect(address: str | None, verbose: bool = False) -> tuple[Any, bool]:
    """(ray, started): join ``address`` or start a local instance, unless Ray is already up."""
    ray = import_ray()
    if address:
        check_address(address)
    quiet_ray(verbose)
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError) as exc:
        raise ConfigError(f"cannot start or join Ray ({str(exc).splitlines()[0] if str(exc) else exc})") from exc
    return ray, True


def check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")


def check_model(model: str, detector: str, min_confidence: float | None) -> None:
    """Load the model and the detector once in the driver, before Ray starts: a bad ``--model``
    is one line here, not a traceback from every actor."""
    from ..inference.predictor import Predictor

    Predictor(model, detector=detector, min_confidence=min_confidence, device="cpu")


def size_actors(resources: dict[str, float], workers: int | None = None) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor) from ``ray.cluster_resources()``.

    Half a CPU (a whole one past 4 CPUs) stays free for Ray Data's own tasks; the actors share
    the rest, at most 1 CPU each. With GPUs, the actors share them instead (at most 1 each).
    """
    cpus, gpus = float(resources.get("CPU", 1.0)), float(resources.get("GPU", 0.0))
    usable = max(cpus - (0.5 if cpus <= 4 else 1.0), 0.25)
    if workers is None:
        workers = max(1, int(gpus) if gpus >= 1 else int(cpus))
    check_workers(workers)
    return workers, round(min(1.0, usable / workers), 3), (round(min(1.0, gpus / workers), 3) if gpus else 0.0)


def run_batch(
    sources: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    address: str | None = None,
    workers: int | None = None,
    # what runs on every face: the model, the detector, the threshold, the frame stride
    model: str = "default",
    detector: str = DEFAULT_DETECTOR,
    min_confidence: float | None = None,
    stride: int = 1,
    # the job's files: replace an output, or continue one; the size of a work item
    force: bool = False,
    resume: bool = True,
    images_per_item: int = 16,
    frames_per_item: int = 300,
    worker: type = ItemWorker,
    # the terminal: a progress bar over the work items; Ray's own log lines and warnings
    progress: bool = True,
    verbose: bool = False,
) -> dict[str, Any]:
    """Every face of every image and video in ``sources`` into ``output`` (.parquet, .jsonl, .csv).

    Sources are recorded by absolute path (workers on other machines must see the same paths).
    Track ids start afresh in every video range of ``frames_per_item`` frames. Inputs that fail
    are listed, with the reason, in ``<output stem>.errors.jsonl`` and the job goes on. The
    summary holds counts, the failures, and ``startup_s`` (starting or joining Ray) apart from
    ``run_s`` (the work). ``worker``: the callable class the actors run (an ``ItemWorker``).

    Everything is checked in this process before Ray starts (the settings, the workers, the
    output, the model and detector), and a job that fails before any item finished leaves no
    parts folder behind: the corrected command starts afresh.
    """
    check_output(output)
    if stride < 1 or (min_confidence is not None and not 0.0 <= min_confidence <= 1.0):
        raise ConfigError("stride must be >= 1 and min_confidence in [0, 1]")
    check_workers(workers)
    abs_sources = [os.path.abspath(s) for s in sources]
    if not abs_sources:
        raise ConfigError("nothing to analyse: give INPUT paths")
    model = os.path.abspath(model) if Path(model).exists() else str(model)
    items = plan(abs_sources, images_per_item, frames_per_item)
    Parts(output).check(force=force, resume=resume)  # an output refused before the model loads
    if any(it.error is None for it in items):
        import_ray()  # a missing extra is named before the model loads
        if issubclass(worker, ItemWorker):
            check_model(model, detector, min_confidence)
    parts = Parts(output)
    settings = {
        "model": model,
        "detector": detector,
        "min_confidence": min_confidence,
        "stride": stride,
        "images_per_item": images_per_item,
        "frames_per_item": frames_per_item,
    }
    parts.prepare(settings, force=force, resume=resume)
    runnable = [it for it in items if it.error is None]
    todo = [it for it in runnable if not parts.done(it)]
    failed: dict[str, str] = {}
    startup = run = 0.0
    if todo:
        started_at = time.monotonic()
        try:
            with terminal(verbose) as out:
                ray, started = connect(address, verbose)
                startup = time.monotonic() - started_at
                try:
                    failed = _execute(ray, todo, parts, workers, settings, worker, progress, out)
                finally:
                    run = time.monotonic() - started_at - startup
                    if started:
                        ray.shutdown()
        except BaseException:
            parts.discard_if_empty()  # nothing finished: no folder to block the corrected command
            raise
    return _finish(output, items, parts, failed, len(runnable) - len(todo), startup, run)


def _execute(
    ray: Any,
    todo: list[WorkItem],
    parts: Parts,
    workers: int | None,
    settings: dict[str, Any],
    worker: type,
    show_progress: bool = True,
    out: TextIO | None = None,
) -> dict[str, str]:
    """Run the items on the actor pool; write each finished part; {key: error} of failed items."""
    from ray.data import ActorPoolStrategy, DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # ours instead: one bar over the work items
    n, cpus, gpus = size_actors(ray.cluster_resources(), workers)
    n = min(n, len(todo))
    kwargs = {k: settings[k] for k in ("model", "detector", "min_confidence", "stride")}
    kwargs.update(device="cuda" if gpus else "cpu", threads=max(1, int(cpus)))
    ds = ray.data.from_items([{"item": it.to_json()} for it in todo], override_num_blocks=len(todo))
    with warnings.catch_warnings():  # bounded retries are still passed as remote args in this Ray
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = ds.map_batches(
            worker,
            batch_size=1,
            compute=ActorPoolStrategy(size=n),
            num_cpus=cpus,
            num_gpus=gpus or None,
            fn_constructor_kwargs=kwargs,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
        )
    failed: dict[str, str] = {}
    bar = progress(total=len(todo), desc="work items", unit="item", enabled=show_progress, file=out)
    try:
        for row in ds.iter_rows():
            if row["error"]:
                failed[str(row["key"])] = str(row["error"])
            else:
                parts.write(str(row["key"]), str(row["part"]))
            bar.update(1)
    except ray.exceptions.RayError as exc:
        first = _first_line(exc)
        if not parts.finished():
            raise ResEmoteNetError(f"the Ray job failed before any item finished ({first})") from exc
        raise ResEmoteNetError(
            f"the Ray job failed ({first}); {parts.finished()} finished item(s) are kept in {parts.dir}: "
            "run the same command again to resume"
        ) from exc
    finally:
        bar.close()
    return failed


def _first_line(exc: BaseException) -> str:
    """The first line of a Ray error that says something (Ray wraps the cause in its own
    headers); at most 300 characters."""
    skip = ("ray::", "Traceback", "File ", "The above", "^", "~")
    useful = [s for s in (line.strip() for line in str(exc).splitlines()) if s and not s.startswith(skip)]
    return (useful[-1] if useful else type(exc).__name__)[:300]


def _finish(
    output: str | os.PathLike,
    items: list[WorkItem],
    parts: Parts,
    failed: dict[str, str],
    skipped: int,
    startup: float,
    run: float,
) -> dict[str, Any]:
    """Assemble the results and the errors file; the summary."""
    done = [parts.read(it) for it in items if it.error is None and parts.done(it)]
    errors = [{"source": it.paths[0], "error": it.error} for it in items if it.error]
    errors += [e for p in done for e in p["errors"]]
    by_key = {it.key: it for it in items}
    errors += [
        {
            "source": ", ".join(by_key[k].paths)
            if by_key[k].kind == "video" or len(by_key[k].paths) < 4
            else f"{by_key[k].paths[0]} and {len(by_key[k].paths) - 1} more",
            "error": e,
        }
        for k, e in failed.items()
    ]
    rows = assemble(output, done)
    out = Path(output)
    errors_path = out.with_name(f"{out.stem}.errors.jsonl")
    if errors:
        atomic_write_text(errors_path, "".join(json.dumps(e) + "\n" for e in errors))
    else:
        errors_path.unlink(missing_ok=True)
    faces = sum(1 for p in done for r in p["rows"] if r["status"] == "face")
    return {
        "output": str(output),
        "items": len(items),
        "skipped": skipped,
        "rows": rows,
        "faces": faces,
        "no_face": rows - faces,
        "failed": errors,
        "errors_file": str(errors_path) if errors else None,
        "unfinished": len(failed),
        "notes": [n for p in done for n in p["notes"]],
        "startup_s": round(startup, 2),
        "run_s": round(run, 2),
    }
