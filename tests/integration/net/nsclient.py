"""Runs inside a namespace: tries every target at once and prints {target: reply or null} as JSON.

A target is IP:PORT, optionally followed by @SOURCE to send from a (spoofed) source address.
--request sets what is sent (default: an HTTP GET); --udp sends one datagram per target and
reports "sent" (the receiver's side tells whether it arrived)."""
import argparse
import json
import socket
import threading
import time


def attempt(target: str, args: argparse.Namespace, out: dict) -> None:
    dest, _, src = target.partition("@")
    ip, port = dest.rsplit(":", 1)
    try:
        s = socket.socket(type=socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        if src:
            s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT: send from an address this namespace does not own
            s.bind((src, 0))
        payload = args.request.encode().decode("unicode_escape").encode("latin-1")
        if args.udp:
            s.sendto(payload, (ip, int(port)))
            out[target] = "sent"
            return
        s.connect((ip, int(port)))
        s.sendall(payload)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        out[target] = data.decode(errors="replace").strip()
    except OSError:
        out[target] = None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--request", default=r"GET / HTTP/1.0\r\n\r\n")
    p.add_argument("--udp", action="store_true")
    p.add_argument("--until-open", type=float, metavar="SECONDS",
                   help="retry the first target every few ms; print the wall-clock time it first answered")
    p.add_argument("targets", nargs="+")
    args = p.parse_args()
    if args.until_open:
        print("polling", flush=True)
        args.timeout, deadline = 0.02, time.time() + args.until_open
        while time.time() < deadline:
            out: dict = {}
            attempt(args.targets[0], args, out)
            if out[args.targets[0]] is not None:
                print(json.dumps({"opened_at": time.time(), "reply": out[args.targets[0]]}))
                return
        print(json.dumps({"opened_at": None}))
        return
    out: dict = {}
    threads = [threading.Thread(target=attempt, args=(t, args, out)) for t in args.targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
