"""The gateway's connection pool after the engine restarted (a supervised RGW or stand-in):
every kept-alive connection is dead then, and the first request must not fail on them."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulator.storage.client import BackendClient


class Forgetful(BaseHTTPRequestHandler):
    """Answers as if the connection stays open, then closes it: a pooled connection to it is
    what a pooled connection to a restarted engine is."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_restarted_engine_costs_no_failed_request():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Forgetful)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = BackendClient(f"http://127.0.0.1:{srv.server_address[1]}", "KEY", "SECRET", timeout=5)
    try:
        held = [client.request("GET") for _ in range(3)]  # three connections at once
        for resp in held:
            assert resp.read() == b"ok"  # each goes back to the pool, dead on the server's side
        assert len(client._pool) == 3
        assert client.simple("GET")[0] == 200  # not a 503 "dropped the connection"
        assert len(client._pool) <= 1
    finally:
        client.close()
        srv.shutdown()
        srv.server_close()
