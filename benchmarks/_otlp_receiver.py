"""A small OTLP/HTTP receiver run as its own process by the export benchmarks.

It decodes every request with the official protobuf classes and counts the records;
``GET /counts`` answers ``{"logs": n, "spans": n, "requests": n}`` (and
``"logs:<service.name>": n`` for the log records of each service) and ``POST /reset``
zeroes them. It prints its port on the first line of its standard output.

    python benchmarks/_otlp_receiver.py
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import zlib
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_lock = threading.Lock()
_counts = {"logs": 0, "spans": 0, "requests": 0}


def _service(resource: Any) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return str(kv.value.string_value)
    return ""


def _records(path: str, body: bytes) -> tuple[str, int] | None:
    if path == "/v1/logs":
        logs = ExportLogsServiceRequest.FromString(body)
        n = 0
        for r in logs.resource_logs:
            found = sum(len(s.log_records) for s in r.scope_logs)
            key = "logs:" + _service(r.resource)
            with _lock:
                _counts[key] = _counts.get(key, 0) + found
            n += found
        return "logs", n
    if path == "/v1/traces":
        traces = ExportTraceServiceRequest.FromString(body)
        return "spans", sum(len(s.spans) for r in traces.resource_spans for s in r.scope_spans)
    if path == "/v1/metrics":
        return "requests", 0
    return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector offers

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with _lock:
            body = json.dumps(_counts).encode()
        self._answer(200, body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/reset":
            with _lock:
                for key in _counts:
                    _counts[key] = 0
            self._answer(200)
            return
        encoding = self.headers.get("content-encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        got = _records(self.path, body)
        if got is None:
            self._answer(404)
            return
        with _lock:
            _counts[got[0]] += got[1]
            _counts["requests"] += 1
        self._answer(200)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()  # until the benchmark terminates this process


if __name__ == "__main__":
    main()
