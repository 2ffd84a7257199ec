"""Load on ``resemotenet serve`` over loopback, printed as a table (not a test).

N concurrent clients (asyncio + httpx, one connection each) send requests back to back for a
bounded time; for 1, 8 and 32 clients, with micro-batching on and off, it reports requests,
errors, lost requests (sent but never answered), p50 / p99 latency and faces/s. The server is
a separate process (``python -m resemotenet serve``), so the clients do not compete with it
for Python's interpreter lock.

``/v1/classify`` gets one face crop per request (the astronaut's face, JPEG); ``/v1/predict``
gets a 640x480 frame holding that face (the photo scaled to 480x480, padded) (detection runs in the server's worker threads).
Targets on a 2-core machine with the shipped default: classify at 32 clients >= 3x the
1-client faces/s, predict at 32 clients >= 1.8x, p99 <= 300 ms.

    python benchmarks/serve_load.py [--seconds 4] [--clients 1,8,32] [--model default]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
        "/v1/classify": cv2.imencode(".jpg", img[50:180, 160:290])[1].tobytes(),
        "/v1/predict": cv2.imencode(".jpg", frame)[1].tobytes(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, batching: bool, engine: str = "torch") -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "resemotenet", "serve", "--model", model, "--port", str(port), "--engine", engine]
    proc = subprocess.Popen(
        cmd + ([] if batching else ["--no-batching"]),
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
        if r.status_code != 200:
            out["errors"] += 1
            continue
        out["lat"].append(time.perf_counter() - t)
        out["faces"] += len(r.json()["faces"])


async def load(url: str, path: str, body: bytes, clients: int, seconds: float) -> dict:
    """Clients are made and connected (one request each) before the clock starts."""
    out = {"sent": 0, "answered": 0, "errors": 0, "faces": 0, "lat": []}
    limits = httpx.Limits(max_connections=1)
    pool = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for _ in range(clients)]
    try:
        await asyncio.gather(*(c.post(path, content=body) for c in pool))
        start = time.monotonic()
        await asyncio.gather(*(client(c, path, body, start + seconds, out) for c in pool))
        out["seconds"] = time.monotonic() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return out


def row(path: str, batching: bool, n: int, r: dict, base: float | None) -> tuple[str, float]:
    lat = np.array(r["lat"]) * 1000 if r["lat"] else np.array([float("nan")])
    rate = r["faces"] / r["seconds"]
    gain = f"{rate / base:.2f}x" if base else "1.00x"
    line = (
        f"| {path} | {'on' if batching else 'off'} | {n} | {r['answered']} | {r['errors']} | "
        f"{r['sent'] - r['answered']} | {np.percentile(lat, 50):.1f} | {np.percentile(lat, 99):.1f} | "
        f"{rate:.1f} | {gain} |"
    )
    return line, rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="load time per cell (default: %(default)s)")
    ap.add_argument("--clients", default="1,8,32", help="client counts (default: %(default)s)")
    ap.add_argument("--model", default="default", help="weights to serve (default: %(default)s)")
    ap.add_argument("--engine", default="torch", choices=["torch", "onnxruntime"], help="the service's --engine")
    ap.add_argument("--batching", default="on,off", help="which micro-batching settings to run (default: %(default)s)")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    bodies = payloads()
    lines = [
        "| endpoint | batching | clients | answered | errors | lost | p50 ms | p99 ms | faces/s | vs 1 client |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for batching in [{"on": True, "off": False}[b.strip()] for b in args.batching.split(",")]:
        proc, url = start_server(args.model, batching, args.engine)
        try:
            for path, body in bodies.items():
                base = None
                for n in counts:
                    r = asyncio.run(load(url, path, body, n, args.seconds))
                    line, rate = row(path, batching, n, r, base)
                    base = base or rate
                    lines.append(line)
                    print(line, flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"\nmodel {args.model}, engine {args.engine}, {args.seconds:g} s per cell, {os.cpu_count()} CPUs\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
