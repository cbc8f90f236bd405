"""Servers for tests of stores that misbehave: a real MLflow tracking server, and a proxy
in front of it that loses replies.

A reply lost on its way back is the hardest store fault to handle: the server did the
write, but the client sees a dropped connection and cannot tell that from a write that
never happened. Retrying such a call naively writes twice. :class:`LossyProxy` makes
that happen on demand, between any client and :class:`MlflowServer`.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["LossyProxy", "MlflowServer"]


def _wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MlflowServer:
    """A real ``mlflow server`` on a free port, which the test stops and starts.

    Its store is ``<folder>/mlflow.db``. Artifacts go to ``<folder>/artifacts``: written
    there by the clients themselves (``--default-artifact-root``), or, with
    ``proxied_artifacts=True``, uploaded through the server (``--serve-artifacts``), as
    clients that share no file system with it must.
    """

    def __init__(self, folder: Path, *, proxied_artifacts: bool = False) -> None:
        self.folder = folder
        self.proxied_artifacts = proxied_artifacts
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        artifacts = self.folder / "artifacts"
        if self.proxied_artifacts:
            storage = ["--serve-artifacts", "--artifacts-destination", artifacts.as_uri()]
        else:
            storage = ["--default-artifact-root", artifacts.as_uri()]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.folder / 'mlflow.db'}",
                *storage,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=(self.folder / "server.log").open("ab"),
            stderr=subprocess.STDOUT,
            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **_path_env()},
            start_new_session=True,
        )
        _wait_for(self.healthy, 120, "the MLflow server")

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None

    def registered_trials(self, job: str) -> list[str]:
        response = httpx.get(
            f"{self.url}/api/2.0/mlflow/model-versions/search",
            params={"filter": "name = 'unitrain'", "max_results": 1000},
            timeout=30,
        )
        versions = response.json().get("model_versions", [])
        tags = [{t["key"]: t["value"] for t in v.get("tags", [])} for v in versions]
        return [t["unitrain.trial_id"] for t in tags if t.get("unitrain.job") == job]


def _path_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


# Headers of one connection, not of the message: the proxy has a connection on each side.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}


class LossyProxy:
    """An HTTP reverse proxy to ``target_url`` that can lose the replies of chosen requests.

    Every request is forwarded and its reply returned, except the next ``count`` requests
    that :meth:`lose_replies` names: the proxy forwards those, reads the server's whole
    reply (the server did the work), then closes the client's connection without a byte
    of it. The client sees the connection dropped (``RemoteDisconnected``) and cannot
    tell whether its call was done.

    Each client connection is served by a thread of its own with a connection of its own
    to the target, and kept alive as long as the client keeps it (HTTP/1.1), so a
    ``requests.Session`` pool works as against the server itself. Bodies are read whole
    (``Content-Length`` or chunked) and replies sent with a ``Content-Length``. A target
    that cannot be reached is answered ``502``.
    """

    def __init__(self, target_url: str, *, timeout_s: float = 300) -> None:
        target = urlsplit(target_url)
        if target.scheme != "http" or target.hostname is None:
            raise ValueError(f"LossyProxy forwards to http://host:port only, not {target_url}")
        self.target_host = target.hostname
        self.target_port = target.port or 80
        self.target_netloc = target.netloc
        self.target_prefix = target.path.rstrip("/")
        self.timeout_s = timeout_s
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lost: list[tuple[str, str]] = []
        self._to_lose: dict[tuple[str, str], int] = {}
        self._to_skip: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    def lose_replies(self, method: str, path: str, count: int = 1, *, skip: int = 0) -> None:
        """Lose the replies of the next ``count`` requests ``method path`` (no query string),
        after letting the next ``skip`` of them through.

        Adds to what is still to lose for that request.
        """
        key = (method.upper(), path)
        with self._lock:
            self._to_lose[key] = self._to_lose.get(key, 0) + count
            self._to_skip[key] = self._to_skip.get(key, 0) + skip

    def pending(self) -> dict[tuple[str, str], int]:
        """What is still to lose: ``(method, path) -> count``, zero counts left out."""
        with self._lock:
            return {key: n for key, n in self._to_lose.items() if n > 0}

    def _should_lose(self, method: str, path: str) -> bool:
        key = (method, path.split("?", 1)[0])
        with self._lock:
            if self._to_skip.get(key, 0) > 0 and self._to_lose.get(key, 0) > 0:
                self._to_skip[key] -= 1
                return False
            if self._to_lose.get(key, 0) <= 0:
                return False
            self._to_lose[key] -= 1
            self.lost.append(key)
            return True

    def start(self) -> None:
        server = _QuietServer(("127.0.0.1", self.port), _handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the connections still open, as a stopped server would."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> LossyProxy:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client gone, a proxy stopped
            super().handle_error(request, client_address)


def _handler(proxy: LossyProxy) -> type[BaseHTTPRequestHandler]:
    """The request handler class of ``proxy``'s server: one instance per client connection."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the server behind it
        upstream: http.client.HTTPConnection

        def setup(self) -> None:
            super().setup()
            with proxy._lock:
                proxy._connections.add(self.connection)
            self.upstream = http.client.HTTPConnection(
                proxy.target_host, proxy.target_port, timeout=proxy.timeout_s
            )

        def finish(self) -> None:
            self.upstream.close()
            with proxy._lock:
                proxy._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read proxy.lost, not a log

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self) -> None:
            body = self._body()
            method = self.command
            try:
                target = proxy.target_prefix + self.path
                self.upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                self.upstream.putheader("Host", proxy.target_netloc)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP | {"host", "content-length"}:
                        self.upstream.putheader(name, value)
                if body or method in ("POST", "PUT", "PATCH"):
                    self.upstream.putheader("Content-Length", str(len(body)))
                self.upstream.endheaders(body or None)
                reply = self.upstream.getresponse()
                data = reply.read()  # all of it: the server has done the call
            except (OSError, http.client.HTTPException) as error:
                self.upstream.close()
                self._send(502, "Bad Gateway", [], f"proxy: {error}".encode())
                return
            if proxy._should_lose(method, self.path):
                self.close_connection = True  # closed with nothing sent
                return
            self._send(reply.status, reply.reason, reply.getheaders(), data)

        def _send(
            self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes
        ) -> None:
            self.send_response_only(status, reason)
            bodiless = self.command == "HEAD" or status in (204, 304) or status < 200
            for name, value in headers:
                lower = name.lower()
                if lower in _HOP_BY_HOP or (lower == "content-length" and not bodiless):
                    continue
                self.send_header(name, value)
            if not bodiless:
                self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not bodiless:
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    return Handler
