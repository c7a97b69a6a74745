"""Port forwards 127.0.0.1:HOST -> INSTANCE_IP:GUEST, done in-process.

libvirt's passt backend is not available here, and iptables DNAT on loopback needs
route_localnet and root. A small TCP relay works everywhere, for VMs and for containers
alike: one listening socket per forward (so the host port stays reserved while the
instance is stopped) and two relay threads per connection. The target is resolved at
connect time through a callable, so a forward survives stop/start and IP changes; while
the target is unknown (instance stopped) a connection is accepted and closed at once.
"""
from __future__ import annotations

import errno
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

from ..errors import AlreadyExists, InvalidParameter

log = logging.getLogger(__name__)

Resolver = Callable[[], "tuple[str, int] | None"]
BUFFER = 64 * 1024
CONNECT_TIMEOUT = 5.0


@dataclass
class _Forward:
    key: str
    host_port: int
    listener: socket.socket
    resolve: Resolver
    thread: threading.Thread | None = None
    closed: threading.Event = field(default_factory=threading.Event)
    conns: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Forwarder:
    """Owns every forward of one process. Keys are the caller's (e.g. 'pc-i-...:22')."""

    def __init__(self, bind_host: str = "127.0.0.1"):
        self.bind_host = bind_host
        self._forwards: dict[str, _Forward] = {}
        self._lock = threading.Lock()

    # -- public ------------------------------------------------------------------
    def open(self, key: str, host_port: int | None, resolve: Resolver) -> int:
        """Start forwarding; returns the bound host port. Idempotent for the same key and
        port (the resolver is replaced). Raises AlreadyExists when the port is taken."""
        if host_port is not None and not (0 < host_port < 65536):
            raise InvalidParameter(f"host port {host_port} is out of range")
        with self._lock:
            existing = self._forwards.get(key)
            if existing is not None:
                if host_port in (None, existing.host_port):
                    existing.resolve = resolve
                    return existing.host_port
                self._close_locked(key)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.bind_host, host_port or 0))
                sock.listen(64)
            except OSError as e:
                sock.close()
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    raise AlreadyExists(
                        f"host port {self.bind_host}:{host_port} is already in use", code="PortInUse"
                    ) from e
                raise
            port = sock.getsockname()[1]
            fwd = _Forward(key, port, sock, resolve)
            fwd.thread = threading.Thread(target=self._accept_loop, args=(fwd,), name=f"fwd-{port}", daemon=True)
            self._forwards[key] = fwd
            fwd.thread.start()
            return port

    def close(self, key: str) -> None:
        with self._lock:
            self._close_locked(key)

    def close_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._forwards if k.startswith(prefix)]:
                self._close_locked(key)

    def close_all(self) -> None:
        with self._lock:
            for key in list(self._forwards):
                self._close_locked(key)

    def port(self, key: str) -> int | None:
        fwd = self._forwards.get(key)
        return fwd.host_port if fwd else None

    def active(self) -> dict[str, int]:
        return {k: f.host_port for k, f in self._forwards.items()}

    # -- internals ---------------------------------------------------------------
    def _close_locked(self, key: str) -> None:
        fwd = self._forwards.pop(key, None)
        if fwd is None:
            return
        fwd.closed.set()
        try:
            fwd.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        fwd.listener.close()
        with fwd.lock:
            conns = list(fwd.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    def _accept_loop(self, fwd: _Forward) -> None:
        while not fwd.closed.is_set():
            try:
                client, _ = fwd.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(fwd, client), daemon=True, name=f"fwd-{fwd.host_port}-c").start()

    def _serve(self, fwd: _Forward, client: socket.socket) -> None:
        try:
            target = fwd.resolve()
        except Exception:  # a resolver failure must not kill the forward
            log.exception("resolving the target of %s", fwd.key)
            target = None
        if target is None:
            client.close()
            return
        try:
            upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with fwd.lock:
            if fwd.closed.is_set():
                client.close()
                upstream.close()
                return
            fwd.conns.update((client, upstream))
        t = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
        t.start()
        self._pipe(client, upstream)
        t.join()
        with fwd.lock:
            fwd.conns.discard(client)
            fwd.conns.discard(upstream)
        client.close()
        upstream.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(BUFFER)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            # A reset on either side ends both directions.
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return
        try:
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            pass
