"""Raw HTTP for attack tests: a body that keeps coming (chunked, or a Content-Length that
promises more than is sent), stopped as soon as the server answers, and the worker's
memory read from /proc."""
from __future__ import annotations

import http.client
import select
import socket
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int        # body bytes the client managed to send before the answer came


def post_endless(port: int, path: str, total: int, headers: dict[str, str] | None = None,
                 method: str = "POST", chunked: bool = True, piece: int = MiB) -> Answer:
    """Send up to `total` body bytes, checking before each piece whether the server has
    answered; stop sending as soon as it has, and read the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if chunked:
        head["Transfer-Encoding"] = "chunked"
    else:
        head["Content-Length"] = str(total)
    sock.sendall((f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
                  + "\r\n").encode())
    data = b"x" * piece
    frame = (b"%x\r\n" % piece + data + b"\r\n") if chunked else data
    sent = 0
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(frame)
            sent += piece
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed its side after answering: the answer is in our buffer
    resp = http.client.HTTPResponse(sock, method=method)
    try:
        resp.begin()
        body = resp.read()
    finally:
        sock.close()
    return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, sent)


def worker_pid(server_pid: int) -> int:
    """The gunicorn worker (the master's only child) serves every request."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    assert len(children) == 1, f"expected one gunicorn worker under {server_pid}, found {children}"
    return int(children[0])


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since the process started), in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out
