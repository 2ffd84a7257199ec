"""Load on ``resemotenet serve`` over loopback, printed as a table (not a test).

N concurrent clients (asyncio + httpx, one connection each) send requests back to back for a
bounded time. A client that is refused with 503 waits the ``Retry-After`` the service names
(as a well-behaved client does) and tries again. For each client count it reports requests
admitted (200), refused (503), other errors, lost requests (sent but never answered), p50 / p99
latency of the admitted requests, faces/s, and the gain over one client (with ``--repeat``, the
median of the repeats and their range: on a shared machine one run says little). The server is a
separate process (``python -m resemotenet serve``), so the clients do not compete with it for
Python's interpreter lock; they do share the machine's cores, so run it niced beside other work
and say so.

``/v1/classify`` gets one face crop per request (the astronaut's face, JPEG); ``/v1/predict``
gets a 640x480 frame holding that face (the photo scaled to 480x480, padded); detection runs in
the server's worker threads, behind a queue of ``--max-detect-queue`` images.
Targets on a 2-core machine with the shipped default (issue 32): predict at 32 clients p99 of
admitted requests <= 600 ms, the rest refused with 503; predict at 8 clients >= 1.6x one client.

    nice -n 5 python benchmarks/serve_load.py [--seconds 4] [--clients 1,8,32,64] [--repeat 3]
        [--endpoints predict] [--serve-args "--busy-detect-side 320"]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import socket
import subprocess
import sys
import time

import cv2
import httpx
import numpy as np

from resemotenet.inference.sources import demo_image


def payloads() -> dict[str, bytes]:
    img = cv2.imread(str(demo_image()))  # 512x512, the face at about (172, 62)-(278, 168)
    frame = cv2.copyMakeBorder(cv2.resize(img, (480, 480)), 0, 0, 80, 80, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    return {
        "classify": cv2.imencode(".jpg", img[50:180, 160:290])[1].tobytes(),
        "predict": cv2.imencode(".jpg", frame)[1].tobytes(),
    }


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, batching: bool, engine: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "resemotenet", "serve", "--model", model, "--port", str(port), "--engine", engine]
    proc = subprocess.Popen(
        cmd + ([] if batching else ["--no-batching"]) + extra,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


async def client(c: httpx.AsyncClient, path: str, body: bytes, until: float, out: dict) -> None:
    while time.monotonic() < until:
        out["sent"] += 1
        t = time.perf_counter()
        try:
            r = await c.post(path, content=body)
        except httpx.HTTPError:
            out["errors"] += 1
            continue
        out["answered"] += 1
        if r.status_code == 503:
            out["busy"] += 1
            wait = float(r.headers.get("retry-after", "1"))
            await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))
            continue
        if r.status_code != 200:
            out["errors"] += 1
            continue
        out["lat"].append(time.perf_counter() - t)
        out["faces"] += len(r.json()["faces"])


async def load(url: str, path: str, body: bytes, clients: int, seconds: float) -> dict:
    """Clients are made and connected (one request each, retried while busy) before the clock starts."""
    out = {"sent": 0, "answered": 0, "errors": 0, "busy": 0, "faces": 0, "lat": []}
    limits = httpx.Limits(max_connections=1)
    pool = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for _ in range(clients)]

    async def warm(c: httpx.AsyncClient) -> None:
        while (await c.post(path, content=body)).status_code == 503:
            await asyncio.sleep(0.2)

    try:
        await asyncio.gather(*(warm(c) for c in pool))
        start = time.monotonic()
        await asyncio.gather(*(client(c, path, body, start + seconds, out) for c in pool))
        out["seconds"] = time.monotonic() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return out


def row(path: str, batching: bool, n: int, runs: list[dict], base: list[float] | None) -> tuple[str, list[float]]:
    """One table row over the repeats: counts summed, p50 / p99 over every admitted request,
    faces/s and the gain over one client as the median of the repeats (min-max when more than one;
    each repeat's gain is taken against the 1-client cell of the same repeat)."""
    lat = np.concatenate([np.array(r["lat"]) * 1000 for r in runs]) if any(r["lat"] for r in runs) else None
    lat = lat if lat is not None and lat.size else np.array([float("nan")])
    rates = [r["faces"] / r["seconds"] for r in runs]
    gains = [rate / b for rate, b in zip(rates, base, strict=True)] if base else [1.0] * len(rates)

    def spread(xs: list[float], fmt: str) -> str:
        mid = format(float(np.median(xs)), fmt)
        return mid if len(xs) == 1 else f"{mid} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"

    total = {k: sum(r[k] for r in runs) for k in ("busy", "errors", "sent", "answered")}
    line = (
        f"| {path} | {'on' if batching else 'off'} | {n} | {sum(len(r['lat']) for r in runs)} | {total['busy']} | "
        f"{total['errors']} | {total['sent'] - total['answered']} | {np.percentile(lat, 50):.1f} | "
        f"{np.percentile(lat, 99):.1f} | {spread(rates, '.1f')} | {spread(gains, '.2f')}x |"
    )
    return line, rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="load time per cell (default: %(default)s)")
    ap.add_argument("--clients", default="1,8,32,64", help="client counts (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every cell; medians reported (default: %(default)s)")
    ap.add_argument("--endpoints", default="classify,predict", help="which endpoints (default: %(default)s)")
    ap.add_argument("--model", default="default", help="weights to serve (default: %(default)s)")
    ap.add_argument("--engine", default="torch", choices=["torch", "onnxruntime"], help="the service's --engine")
    ap.add_argument(
        "--batching", default="on", help="micro-batching settings to run, e.g. on,off (default: %(default)s)"
    )
    ap.add_argument("--serve-args", default="", help="more flags for `resemotenet serve` (quoted)")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    bodies = {name: body for name, body in payloads().items() if name in args.endpoints.split(",")}
    lines = [
        "| endpoint | batching | clients | admitted | 503 | other errors | lost | p50 ms | p99 ms (admitted) "
        "| faces/s (median, min-max) | vs 1 client |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for batching in [{"on": True, "off": False}[b.strip()] for b in args.batching.split(",")]:
        proc, url = start_server(args.model, batching, args.engine, shlex.split(args.serve_args))
        try:
            for name, body in bodies.items():
                runs: dict[int, list[dict]] = {n: [] for n in counts}
                for _ in range(args.repeat):  # each repeat runs every client count, so gains compare close in time
                    for n in counts:
                        runs[n].append(asyncio.run(load(url, f"/v1/{name}", body, n, args.seconds)))
                base = None
                for n in counts:
                    line, rates = row(f"/v1/{name}", batching, n, runs[n], base)
                    base = base or rates
                    lines.append(line)
                    print(line, flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        f"\nmodel {args.model}, engine {args.engine}, serve args {args.serve_args or '(defaults)'}, "
        f"{args.seconds:g} s per cell x {args.repeat}, {os.cpu_count()} CPUs: {cpu_name()}\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
