"""A TCP forward the labs hold open while they run: an instance's way to the API on the host's
loopback (instances reach no host service; see lab_storage.py)."""
from __future__ import annotations

import socket
import threading


class Relay:
    """A TCP forward from HOST:<free port> to the API, while the lab runs: the instance's way to
    the S3 endpoint on the host's loopback. Bytes are copied as they come, so the gateway sees the
    instance's own HTTP request (its Host header included, which the presigned URL signs)."""

    def __init__(self, host: str, target: tuple[str, int]):
        self.target = target
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.5)
        self.address = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="lab-storage-relay")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._pair, args=(conn,), daemon=True).start()

    def _pair(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self.target, timeout=10)
        except OSError:
            conn.close()
            return
        for s in (conn, up):
            s.settimeout(None)

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while chunk := a.recv(1 << 18):
                    b.sendall(chunk)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(up, conn), daemon=True)
        back.start()
        pump(conn, up)
        back.join(timeout=60)
        conn.close()
        up.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=2)
