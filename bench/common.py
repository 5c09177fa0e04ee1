"""What the benchmarks share: a throwaway database and a loopback JWKS server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.pgcluster import postgres_server, temporary_database


@contextmanager
def database() -> Iterator[str]:
    """A fresh database on TEST_DATABASE_URL's server, or in a throwaway cluster."""
    with postgres_server() as server, temporary_database(server, "bench") as url:
        yield url


@contextmanager
def serve_jwks(document: dict[str, Any]) -> Iterator[str]:
    """PyJWKClient fetches with urllib, so it gets a real loopback server."""
    body = json.dumps(document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/auth/jwks"
    finally:
        server.shutdown()
