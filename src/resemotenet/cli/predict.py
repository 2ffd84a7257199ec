"""``resemotenet predict`` (emotions of every face in images, folders, videos, a webcam) and
``resemotenet demo`` (the same on the shipped public-domain photo).

A run keeps going past bad items, lists them at the end and then exits 1; results already
written stay valid. Only the results file is written unless ``--save-annotated`` asks for more.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="emotions of every face in images, folders, videos or a webcam")
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="image files, video files, folders of them (searched recursively)"
    )
    p.add_argument("--webcam", type=int, metavar="INDEX", help="also read from this webcam (Ctrl-C stops)")
    p.add_argument(
        "--engine",
        choices=("torch", "onnxruntime", "openvino", "auto", "local", "ray"),
        metavar="{torch,onnxruntime,openvino,auto}",
        help="the model's runtime (default: torch for checkpoints, auto for .onnx files; --runner says where it runs)",
    )
    _common(p)
    p.add_argument(
        "--output", "-o", default="results.jsonl", help="results file, .jsonl or .csv (default: %(default)s)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing results file (and annotated copies; with --runner ray, its parts too)",
    )
    p.add_argument("--append", action="store_true", help="add rows to an existing results file (same columns)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--save-annotated", metavar="DIR", help="write copies with boxes and labels into DIR")
    p.add_argument("--blur-faces", action="store_true", help="pixelate the faces in the annotated copies")
    p.add_argument("--explain", metavar="DIR", help="write a Grad-CAM heat map over each face into DIR (PNG)")
    p.add_argument("--stride", type=int, default=1, help="analyse every N-th video frame (default: 1)")
    p.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="stop each video or webcam after N analysed frames (a folder after N images)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="face crops per model call (default: 32)")
    p.add_argument(
        "--smoothing",
        type=float,
        default=0.6,
        help="EMA weight of a video face's past probabilities, 0 = none (default: 0.6)",
    )
    p.add_argument(
        "--redetect-every",
        type=int,
        default=10,
        metavar="N",
        help="video: search the whole frame for faces every N analysed frames, only around "
        "known faces in between; 1 = whole frame every time (default: 10)",
    )
    from .scale import add_flags

    add_flags(p)
    p.set_defaults(func=run)

    d = sub.add_parser("demo", help="run predict on the shipped photo of astronaut Eileen Collins")
    _common(d)
    d.add_argument(
        "--output",
        "-o",
        dest="output_dir",
        default="resemotenet-demo",
        help="folder to write into (default: ./%(default)s)",
    )
    from .common import deprecated

    deprecated(d, "--output-dir", "--output", "output_dir")
    d.set_defaults(func=run_demo)


def _common(p: argparse.ArgumentParser) -> None:
    from .common import add_predictor_args

    add_predictor_args(
        p,
        min_confidence_help="below this probability a face is labelled 'uncertain' with its top-2",
    )
    p.add_argument("--yunet-model", metavar="PATH", help="ONNX file of the YuNet detector")
    p.add_argument(
        "--min-face",
        type=int,
        metavar="PX",
        help="haar: smallest face in pixels (default 48; lower finds smaller faces, slower)",
    )
    p.add_argument(
        "--margin",
        type=float,
        help="crop margin, fraction of the face box (default: the model card's framing, 0.2 for the shipped models)",
    )
    p.add_argument(
        "--tta",
        choices=["none", "flip"],
        default="none",
        help="flip: average each face with its mirror image (twice the model's work; default: %(default)s)",
    )


def _engine_and_runner(args: argparse.Namespace) -> None:
    """``--engine`` is the model's runtime, ``--runner`` where the job runs; ``--engine local|ray``
    (the older spelling of ``--runner``) still works, with a hint."""
    from ..utils.errors import ConfigError

    if args.engine in ("local", "ray"):
        print(f"note: --engine {args.engine} is now spelled --runner {args.engine}", file=sys.stderr)
        args.runner, args.engine = args.engine, None
    onnx = str(args.model or "").lower().endswith(".onnx")
    if args.engine not in (None, "torch") and not onnx:
        raise ConfigError(
            f"--engine {args.engine} runs .onnx files; export the model first (resemotenet export MODEL -o m.onnx)"
        )
    if args.engine == "torch" and onnx:
        raise ConfigError(
            "--engine torch runs checkpoints; for an .onnx file use --engine onnxruntime, openvino or auto"
        )


def _predictor(args: argparse.Namespace, **kw: Any):
    from ..inference.predictor import Predictor

    options: dict[str, Any] = {}
    if args.yunet_model:
        options["model_path"] = args.yunet_model
    if args.min_face is not None:
        options["min_face"] = args.min_face
    return Predictor(
        args.model,
        engine=None if getattr(args, "engine", None) in (None, "torch") else args.engine,
        detector=args.detector,
        margin=args.margin,
        min_confidence=args.min_confidence,
        device=args.device,
        detector_options=options,
        tta=getattr(args, "tta", "none"),
        **kw,
    )


def check_outputs(args: argparse.Namespace) -> None:
    """Every check that needs no model, before the model loads and before any output opens: the
    frame options, the results file's format, and the output rule (``utils.io.check_output``)."""
    from ..inference.sources import check_frame_options
    from ..inference.writers import check_format
    from ..utils.errors import ConfigError
    from ..utils.io import check_output, check_output_dir

    if args.force and args.append:
        raise ConfigError("--force replaces the results file and --append adds to it: choose one")
    check_frame_options(args.stride, args.max_frames)
    check_format(args.output)
    check_output(args.output, force=args.force, append=args.append, append_ok=True)
    for folder in (args.save_annotated, args.explain):
        if folder:
            check_output_dir(folder, force=args.force or args.append)


def run(args: argparse.Namespace) -> int:
    from ..inference.drawing import AnnotatedOutput
    from ..inference.summary import RunSummary
    from ..inference.writers import open_writer
    from ..utils.errors import ConfigError

    _engine_and_runner(args)
    if args.runner == "ray":  # a Ray Data job (more than one process or machine): cli/scale.py
        from .scale import run as run_ray

        return run_ray(args)
    sources: list[str | int] = list(args.inputs) + ([args.webcam] if args.webcam is not None else [])
    if not sources:
        raise ConfigError("nothing to analyse: give INPUT paths or --webcam INDEX")
    if args.blur_faces and not args.save_annotated:
        raise ConfigError("--blur-faces applies to annotated copies: add --save-annotated DIR")
    check_outputs(args)
    predictor = _predictor(
        args, batch_size=args.batch_size, smoothing=args.smoothing, redetect_every=args.redetect_every
    )
    summary = RunSummary()
    annotated = AnnotatedOutput(args.save_annotated, blur=args.blur_faces) if args.save_annotated else None
    if args.explain:
        from ..inference.explain import ExplainOutput

        annotated = _Explaining(annotated, ExplainOutput(args.explain, predictor))
    started = time.monotonic()
    names = _copy_names(sources)
    with open_writer(args.output, predictor.labels, append=args.append) as writer:
        try:
            for item in sources:
                _run_source(predictor, item, args, writer, summary, annotated, names)
        finally:
            if annotated:
                annotated.close()
    for line in summary.lines():
        print(line)
    no_face = f" and {writer.empty} image(s) with no face" if writer.empty else ""
    print(f"wrote {writer.rows} face(s){no_face} to {args.output} in {time.monotonic() - started:.1f} s")
    if args.explain:
        print(f"{annotated.explain.written} heat map(s) in {args.explain}")
        annotated = annotated.inner
    if annotated and annotated.written:
        print(f"annotated copies in {args.save_annotated}")
    if summary.failed:
        errors = _write_errors(Path(args.output), summary, append=args.append)
        print(f"failed ({len(summary.failed)}, listed in {errors}):", file=sys.stderr)
        for line in summary.failure_lines():
            print(f"  {line}", file=sys.stderr)
    return 1 if summary.failed else 0


def _write_errors(results: Path, summary, append: bool = False) -> Path:
    """``results.errors.jsonl`` beside the results: one line per input that failed, with the
    reason (added to the lines already there with ``--append``)."""
    import json

    from ..utils.io import atomic_write_text

    path = results.with_name(f"{results.stem}.errors.jsonl")
    before = path.read_text() if append and path.is_file() else ""
    if before and not before.endswith("\n"):
        before += "\n"
    atomic_write_text(path, before + "".join(json.dumps({"source": s, "error": e}) + "\n" for s, e in summary.failed))
    return path


def _run_source(
    predictor, item: str | int, args: argparse.Namespace, writer, summary, annotated, names: dict[str, str]
) -> None:
    """Analyse one INPUT; a source that cannot be opened is a failed item, not the end of the run."""
    from ..inference.sources import open_source
    from ..utils.errors import DataError

    try:
        src = open_source(item, stride=args.stride, max_frames=args.max_frames)
    except DataError as exc:
        summary.fail(str(item), str(exc))
        return
    videos = []
    if src.kind == "folder":  # its images as one item, then each video in it as a video input
        videos, src.videos = src.videos, []
        if not src.files and videos:
            src = None
    if src is not None:
        _run_frames(predictor, src, args, writer, summary, annotated, names)
    for video in videos:
        _run_source(predictor, str(video), args, writer, summary, annotated, names)


def _run_frames(predictor, src, args: argparse.Namespace, writer, summary, annotated, names: dict[str, str]) -> None:
    from ..utils.errors import DataError

    timed = src.kind in ("video", "webcam")
    progress = _Progress(src, enabled=not args.no_progress) if timed or src.kind == "folder" else None
    try:
        for fr in predictor.predict_source(src):
            summary.add(fr, timed=timed)
            for face in fr.faces:
                writer.write(face)
            if not timed and fr.error is None and not fr.faces:
                writer.write_no_face(fr.source, fr.frame)
            if annotated and fr.error is None:
                name = _annotated_name(src, fr.source, names)
                if timed:
                    annotated.frame(name, fr.image, fr.faces, src.fps and src.fps / args.stride)
                else:
                    annotated.image(name, fr.image, fr.faces)
            if progress:
                progress.tick(fr.frame)
    except DataError as exc:
        summary.fail(src.name, str(exc))
    except KeyboardInterrupt:
        if src.kind != "webcam":
            raise
        summary.notes.append(f"{src.name}: stopped with Ctrl-C")  # the normal way to end a webcam run
    finally:
        if progress:
            progress.done()
        if annotated and timed:
            annotated.close_video(_annotated_name(src, src.name, names))
        summary.end_source(src.name)
        summary.notes += src.notes


class _Explaining:
    """``--explain``: heat maps for every frame with faces, then the annotated copy (if asked for)."""

    def __init__(self, inner, explain):
        self.inner, self.explain = inner, explain

    def image(self, name: str, image, faces) -> None:
        if faces:
            self.explain.frame(name, image)
        if self.inner:
            self.inner.image(name, image, faces)

    def frame(self, name: str, image, faces, fps) -> None:
        if faces:
            self.explain.frame(name, image, frame=faces[0].frame)
        if self.inner:
            self.inner.frame(name, image, faces, fps)

    def close_video(self, name: str) -> None:
        if self.inner:
            self.inner.close_video(name)

    def close(self) -> None:
        if self.inner:
            self.inner.close()


def _annotated_name(src, frame_source: str, names: dict[str, str]) -> str:
    """Name of the annotated copy: the input's own name (and format); a folder's images keep
    their path below the folder; inputs that share a name keep their folders below the one they
    have in common (``d1/photo.jpg``, ``d2/photo.jpg``)."""
    if src.kind == "webcam":
        return src.name.replace(":", "")
    if src.kind == "folder":
        root = Path(src.name)
        return str(Path(names.get(src.name, root.name)) / Path(frame_source).relative_to(root))
    return names.get(frame_source, Path(frame_source).name)


def _copy_names(sources: list[str | int]) -> dict[str, str]:
    """input path -> name of its annotated copy, told apart where two inputs share a name."""
    import os
    from collections import defaultdict

    by_name: dict[str, list[str]] = defaultdict(list)
    for s in sources:
        if isinstance(s, str) and Path(s).exists():
            by_name[Path(s).resolve().name].append(s)
    out = {}
    for name, paths in by_name.items():
        resolved = [Path(p).resolve() for p in paths]
        if len(set(resolved)) == 1:
            out.update({p: name for p in paths})
            continue
        common = Path(os.path.commonpath([r.parent for r in resolved]))
        out.update({p: str(r.relative_to(common)) for p, r in zip(paths, resolved)})
    return out


class _Progress:
    """A live bar on a terminal (tqdm) for a video, a webcam or a folder (counted in images), and
    for a video or webcam ``clip.mp4: frame 240, 31.2 frames/s`` once at the end."""

    def __init__(self, src, enabled: bool = True):
        from ..utils.progress import progress

        self.name, self.start, self.frames, self.index = src.name, time.monotonic(), 0, 0
        self.folder = src.kind == "folder"
        total = len(src.files[: src.max_frames]) if self.folder else None
        self.bar = progress(total=total, desc=src.name, unit="image" if self.folder else "frame", enabled=enabled)

    def tick(self, index: int) -> None:
        self.frames, self.index = self.frames + 1, index
        self.bar.update(1)

    def done(self) -> None:
        self.bar.close()
        if self.folder:
            return
        rate = self.frames / max(time.monotonic() - self.start, 1e-9)
        print(
            f"{self.name}: frame {self.index}, {self.frames} analysed, {rate:.1f} frames/s", file=sys.stderr, flush=True
        )


def run_demo(args: argparse.Namespace) -> int:
    """Label the faces of the shipped photo; write results and an annotated copy."""
    from ..inference.drawing import AnnotatedOutput
    from ..inference.sources import demo_image
    from ..inference.writers import open_writer
    from ..utils.errors import CheckpointError

    image = demo_image()
    try:
        predictor = _predictor(args)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (pass --model PATH to use another checkpoint)") from exc
    faces = predictor.predict(image)
    out = Path(args.output_dir)
    with open_writer(out / "results.jsonl", predictor.labels) as writer:
        for face in faces:
            face.source = image.name
            writer.write(face)
    from ..imaging import read_image

    annotated = AnnotatedOutput(out).image(image.name, read_image(image), faces)
    print(f"{image.name}: {len(faces)} face(s)")
    for i, f in enumerate(faces, 1):
        ranked = sorted(f.probabilities.items(), key=lambda kv: -kv[1])[:3]
        print(f"  face {i} at {tuple(f.box)}: {f.label} ({', '.join(f'{k} {v:.2f}' for k, v in ranked)})")
    print(f"wrote {out / 'results.jsonl'} and {annotated}")
    return 0
