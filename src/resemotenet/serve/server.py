"""Run the service with uvicorn, in the foreground (the CLI) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import threading
import time
from typing import Any

from .settings import ServeSettings


def _config(settings: ServeSettings, predictor: Any = None, log_level: str = "warning") -> Any:
    import uvicorn

    from . import create_app

    app = create_app(settings, predictor)
    # proxy headers off: the client address is the socket's, whatever a header claims
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        ws_max_size=settings.max_upload_bytes,
        timeout_graceful_shutdown=5,
    )


def run(settings: ServeSettings, log_level: str = "info") -> None:
    """Serve until Ctrl-C."""
    import uvicorn

    uvicorn.Server(_config(settings, log_level=log_level)).run()


class ServerThread:
    """A real uvicorn server on a background thread; ``url`` once started (port 0 = a free one)."""

    def __init__(self, settings: ServeSettings, predictor: Any = None):
        import uvicorn

        self.server = uvicorn.Server(_config(settings, predictor))
        self._thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.url = ""

    def start(self, timeout: float = 60.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
