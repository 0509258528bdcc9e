"""A small stand-in for the LangSmith ingest API, for tests (stdlib + ``zstandard``).

It speaks what ``langsmith.Client`` (0.15) sends when tracing:

* ``GET  /info``: the server's capabilities. ``zstd=True`` advertises compression, so
  the client sends zstd frames; otherwise it sends plain multipart.
* ``POST /runs/multipart``: ``post.<id>`` / ``patch.<id>`` parts, the big fields as
  ``<op>.<id>.<field>`` parts (inputs, outputs, events, extra, error, serialized);
  the body may be ``Content-Encoding: zstd``. With ``multipart=False`` it answers 404,
  and the client falls back to ``POST /runs/batch`` for good.
* ``POST /runs/batch``: JSON ``{"post": [...], "patch": [...]}``.
* ``POST /runs`` and ``PATCH /runs/<id>``: a client made with ``auto_batch_tracing=False``.

``runs`` merges the operations per run id, later ones winning (what LangSmith shows).

Example:
    ```python
    with FakeLangSmith() as server:
        client = Client(api_url=server.url, api_key="test")
        with langsmith.tracing_context(client=client, enabled=True, project_name="p"):
            graph.invoke({})
        client.flush(timeout=10)
        (node,) = server.runs_named("my_node")
    ```
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import zstandard  # a langsmith dependency

__all__ = ["FakeLangSmith"]

_PATCH_PATH = re.compile(r"/runs/([0-9a-fA-F-]{36})")


class FakeLangSmith:
    """An ingest server on ``127.0.0.1`` (a free port) that records every run it gets."""

    def __init__(self, *, zstd: bool = False, multipart: bool = True) -> None:
        self.zstd = zstd
        self.multipart = multipart
        self.ops: list[tuple[str, dict[str, Any]]] = []
        """Every run operation, in arrival order: ``("post" | "patch", fields)``."""
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """Every request: method, path, headers (lower-case names)."""
        self.errors: list[str] = []
        """What the server could not understand; a test should expect none."""
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeLangSmith:
        quick_stop = {"poll_interval": 0.05}  # how long shutdown() may wait
        threading.Thread(target=self._httpd.serve_forever, kwargs=quick_stop, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.ops.clear()
            self.requests.clear()
            self.errors.clear()

    # ---- views

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        """Run id -> the run, its post's fields updated by its patches' non-null ones."""
        merged: dict[str, dict[str, Any]] = {}
        with self._lock:
            ops = list(self.ops)
        for _, fields in ops:
            run = merged.setdefault(str(fields["id"]), {})
            run.update({k: v for k, v in fields.items() if v is not None or k not in run})
        return merged

    def runs_named(self, name: str) -> list[dict[str, Any]]:
        """The runs called ``name``, oldest trace first (ordered by ``dotted_order``)."""
        return runs_named(self.runs, name)

    def run_named(self, name: str) -> dict[str, Any]:
        """The one run called ``name`` (an ``AssertionError`` if there are none or several)."""
        found = self.runs_named(name)
        assert len(found) == 1, f"{len(found)} runs named {name!r}: {sorted(self.names())}"
        return found[0]

    def names(self) -> set[str]:
        return {run.get("name", "?") for run in self.runs.values()}

    def run_paths(self) -> list[str]:
        """The paths the run operations were posted to (``/runs/multipart``...)."""
        with self._lock:
            return [path for method, path, _ in self.requests if path.startswith("/runs")]

    # ---- ingestion

    def _record(self, kind: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.ops.append((kind, fields))

    def _multipart(self, content_type: str, body: bytes) -> None:
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        found: dict[tuple[str, str], dict[str, Any]] = {}  # (op, run id) -> fields
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            kind, _, rest = name.partition(".")
            if kind not in ("post", "patch"):
                continue  # feedback and attachments: not needed by these tests
            run_id, _, field = rest.partition(".")
            data = part.get_payload(decode=True) or b""
            value = json.loads(data) if data else None
            fields = found.setdefault((kind, run_id), {"id": run_id})
            if field:
                fields[field] = value
            else:
                fields.update(value or {})
        for (kind, _), fields in found.items():  # dicts keep the parts' order
            self._record(kind, fields)

    def _ingest(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        """Store what a request carries; the HTTP status to answer."""
        if headers.get("content-encoding") == "zstd":
            body = zstandard.ZstdDecompressor().stream_reader(body).read()
        if method == "PATCH" and (match := _PATCH_PATH.fullmatch(path)):
            self._record("patch", {"id": match.group(1), **json.loads(body)})
        elif method != "POST":
            return 404
        elif path == "/runs/multipart":
            if not self.multipart:
                return 404
            self._multipart(headers["content-type"], body)
        elif path == "/runs/batch":
            payload = json.loads(body)
            for kind in ("post", "patch"):
                for fields in payload.get(kind) or []:
                    self._record(kind, fields)
        elif path == "/runs":
            self._record("post", json.loads(body))
        else:
            return 404
        return 202


def _handler(server: FakeLangSmith) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

        def _reply(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self, headers: dict[str, str]) -> bytes | None:
            """The request's body; ``None`` if the client went away before sending it all
            (a process killed mid-upload: there is nothing to store, and no error)."""
            if "chunked" not in headers.get("transfer-encoding", ""):
                length = int(headers.get("content-length") or 0)
                body = self.rfile.read(length)
                return body if len(body) == length else None
            chunks = []  # a streamed body: "<hex size>\r\n<data>\r\n" ... "0\r\n\r\n"
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def _handle(self) -> None:
            path = self.path.split("?")[0]
            headers = {key.lower(): value for key, value in self.headers.items()}
            body = self._body(headers)
            if body is None:
                self.close_connection = True
                return None
            with server._lock:
                server.requests.append((self.command, path, headers))
            if self.command == "GET":
                if path != "/info":
                    return self._reply(404, {"detail": f"no {path}"})
                # No batch_ingest_config: a partial one kills the client's tracing thread.
                flags = {"zstd_compression_enabled": server.zstd}
                return self._reply(200, {"version": "0.12.0", "instance_flags": flags})
            try:
                status = server._ingest(self.command, path, headers, body)
            except Exception as exc:  # a payload the server cannot read fails the test
                server.errors.append(f"{self.command} {path}: {exc!r}")
                status = 400
            return self._reply(status, {})

        do_GET = do_POST = do_PATCH = _handle

    return Handler


# ---- reading what arrived (shared by the tests that trace to this server) ----------------

PREFIX = "langgraph_resilience."
"""Every plugin decision's event name starts with this."""


def in_trace_order(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs, oldest trace first (ordered by ``dotted_order``)."""
    return sorted(runs.values(), key=lambda run: run.get("dotted_order") or "")


def runs_named(runs: dict[str, dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The runs called ``name``, in trace order."""
    return [run for run in in_trace_order(runs) if run.get("name") == name]


def carriers(runs: dict[str, dict[str, Any]], kind: str) -> list[str]:
    """The names of the runs tagged with the decision ``kind``, in trace order."""
    return [
        run["name"]
        for run in in_trace_order(runs)
        if f"resilience:{kind}" in (run.get("tags") or [])
    ]


def decision(run: dict[str, Any], kind: str) -> dict[str, Any]:
    """The fields of the one decision ``kind`` on ``run``: its event (with an ISO time),
    its tag and its metadata, checked to agree."""
    events = [e for e in run.get("events") or [] if e["name"] == PREFIX + kind]
    assert len(events) == 1, f"{run['name']}: {[e['name'] for e in run.get('events') or []]}"
    assert f"resilience:{kind}" in run["tags"]
    datetime.fromisoformat(events[0]["time"])  # an ISO timestamp, as LangSmith wants
    fields = run["extra"]["metadata"][f"resilience.{kind}"]
    assert events[0]["kwargs"] == fields
    return dict(fields)
