"""A real HTTP server on 127.0.0.1 with programmable answers, standing in for a peer (a hoster's
node, a Nextcloud, a Synapse…) in tests: ``server.route("/status.php", body=…)``.

Each route answers with a status, headers and a body; it can also wait before answering
(``delay``), drip its body slowly (``drip``), stream a huge body (``size``), redirect (``location``)
or close the connection without answering (``hang_up``). Requests are recorded in ``server.hits``;
POST bodies also in ``server.posts`` as (path, body) pairs (a back-channel logout receiver, say).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # seconds between 1-byte chunks
    size: int = 0  # stream this many bytes (no Content-Length)
    location: str | None = None
    hang_up: bool = False


class StubServer:
    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.hits: list[tuple[str, str, dict[str, str]]] = []
        self.posts: list[tuple[str, bytes]] = []
        self.active = 0
        self.max_active = 0  # most requests being answered at once
        self.lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub.lock:
                    stub.posts.append((self.path, body))
                self._answer("POST")

            def do_GET(self) -> None:
                with stub.lock:
                    stub.active += 1
                    stub.max_active = max(stub.max_active, stub.active)
                try:
                    self._answer("GET")
                finally:
                    with stub.lock:
                        stub.active -= 1

            def _answer(self, method: str) -> None:
                stub.hits.append((method, self.path, dict(self.headers.items())))
                answer = stub.routes.get(self.path.split("?", 1)[0])
                if answer is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.hang_up:
                    self.close_connection = True
                    return
                headers = dict(answer.headers)
                if answer.location is not None:
                    headers["Location"] = answer.location
                if answer.size:
                    self.send_response(answer.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"x" * 65536
                    sent = 0
                    try:
                        while sent < answer.size:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if answer.drip:
                    self.send_response(answer.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    try:
                        for byte in answer.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(answer.drip)
                    except OSError:
                        pass
                    return
                self._send(answer.status, answer.body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, body: bytes | str | dict[str, Any] | list[Any] = b"", **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", {}))
        if isinstance(body, dict | list):
            raw = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            raw = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            raw = body
        self.routes[path] = Answer(body=raw, headers=headers, **kwargs)

    def start(self) -> StubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
