"""Prometheus text-format metrics, kept in-process (no client library needed).

Requests by route and status, a latency histogram by route, faces analysed by label, refusals
by reason (a full queue, a foreign origin, an oversized body, a bad WebSocket message, a full
review queue), and gauges read when scraped (queue depths, jobs running). Routes are the templates (``/v1/jobs/{id}``),
never the raw paths, so a client cannot grow the label set without bound.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: Counter[str] = Counter()
        self.faces: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.gauges: dict[str, tuple[str, Callable[[], float], str]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.latency.setdefault(route, [0] * (len(BUCKETS) + 1))
            i = next((k for k, b in enumerate(BUCKETS) if seconds <= b), len(BUCKETS))
            counts[i] += 1
            self.latency_sum[route] += seconds

    def count_faces(self, labels: list[str]) -> None:
        with self._lock:
            self.faces.update(labels)

    def refuse(self, reason: str, n: int = 1) -> None:
        """Count a refusal; ``reason`` is one of a fixed set of words chosen by the code, never by a client."""
        with self._lock:
            self.refused[reason] += n

    def gauge(self, name: str, help_text: str, read: Callable[[], float], kind: str = "gauge") -> None:
        """A value read when scraped; ``kind='counter'`` for one that only grows (kept by its owner)."""
        self.gauges[name] = (help_text, read, kind)

    def render(self) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        with self._lock:
            out = [
                "# HELP resemotenet_requests_total HTTP requests by method, route and status.",
                "# TYPE resemotenet_requests_total counter",
            ]
            out += [
                f'resemotenet_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}'
                for (m, r, s), n in sorted(self.requests.items())
            ]
            out += [
                "# HELP resemotenet_request_seconds Request latency by route.",
                "# TYPE resemotenet_request_seconds histogram",
            ]
            for route, counts in sorted(self.latency.items()):
                cum = 0
                for b, c in zip(BUCKETS + (float("inf"),), counts, strict=True):
                    cum += c
                    le = "+Inf" if b == float("inf") else repr(b)
                    out.append(f'resemotenet_request_seconds_bucket{{route="{route}",le="{le}"}} {cum}')
                out.append(f'resemotenet_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
                out.append(f'resemotenet_request_seconds_count{{route="{route}"}} {cum}')
            out += [
                "# HELP resemotenet_faces_total Faces analysed, by label.",
                "# TYPE resemotenet_faces_total counter",
            ]
            out += [f'resemotenet_faces_total{{label="{k}"}} {v}' for k, v in sorted(self.faces.items())]
            out += [
                "# HELP resemotenet_refused_total Requests, frames and review items refused, by reason.",
                "# TYPE resemotenet_refused_total counter",
            ]
            out += [f'resemotenet_refused_total{{reason="{k}"}} {v}' for k, v in sorted(self.refused.items())]
        for name, (help_text, read, kind) in sorted(self.gauges.items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {read():g}"]
        return "\n".join(out) + "\n"
