"""Faces per second: in-process ``predict`` against ``--engine ray`` with 1 and 2 workers.

Synthetic inputs: N copies of the shipped photo (one face each, 512x512) and one generated
640x480 video with the face moving across it. Ray's fixed cost (starting a local instance) is
timed apart from the work; the work includes starting the actors and loading the model once
per actor, which a job pays every time. A benchmark, not a test: it prints a table.

    python benchmarks/scale.py --images 2000 --video-seconds 120     # the full measurement
    python benchmarks/scale.py --images 60 --video-seconds 6         # a quick one
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def make_inputs(root: Path, images: int, seconds: float, fps: int = 15) -> tuple[Path, Path]:
    import cv2
    import numpy as np

    from resemotenet.inference.sources import demo_image

    photo = cv2.imread(str(demo_image()))
    folder = root / "photos"
    folder.mkdir()
    for i in range(images):
        cv2.imwrite(str(folder / f"photo{i:05d}.jpg"), photo)
    video = root / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    face = cv2.resize(photo, (300, 300))
    for i in range(int(seconds * fps)):
        frame = np.full((480, 640, 3), 60, np.uint8)
        x = 40 + (i * 3) % 280
        frame[90:390, x : x + 300] = face
        writer.write(frame)
    writer.release()
    return folder, video


def in_process(sources: list[Path], out: Path) -> tuple[int, float]:
    from resemotenet.inference.predictor import Predictor

    started = time.monotonic()
    predictor = Predictor()
    faces = 0
    for src in sources:
        for fr in predictor.predict_source(src):
            faces += len(fr.faces)
    return faces, time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=60, help="synthetic photos (default: %(default)s)")
    ap.add_argument("--video-seconds", type=float, default=6.0, help="length of the 640x480 video at 15 fps")
    ap.add_argument("--workers", default="1,2", help="Ray worker counts to time (default: %(default)s)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray instance")
    args = ap.parse_args()

    import ray

    from resemotenet.scale import run_batch

    root = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        folder, video = make_inputs(root, args.images, args.video_seconds)
        rows = []
        faces, seconds = in_process([folder, video], root / "local.jsonl")
        rows.append(("in-process predict", faces, seconds, None))
        started = time.monotonic()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
        startup = time.monotonic() - started
        try:
            for n in (int(w) for w in args.workers.split(",")):
                s = run_batch([folder, video], root / f"ray{n}.parquet", workers=n, force=True)
                rows.append((f"--engine ray, {n} worker(s)", s["faces"], s["run_s"], n))
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    frames = int(args.video_seconds * 15)
    print(
        f"{args.images} photos + {frames} video frames (640x480); local Ray start-up: {startup:.1f} s "
        "(paid once per job, not in the figures below)"
    )
    print("| engine | faces | seconds | faces/s |")
    print("|---|---|---|---|")
    for name, faces, sec, _ in rows:
        print(f"| {name} | {faces} | {sec:.1f} | {faces / sec:.1f} |")


if __name__ == "__main__":
    main()
