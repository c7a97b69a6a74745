"""A stand-in instance's services: answers every TCP connection on the given ports with
'<name> <caller address>' (so tests see who got through and with which source address)."""
import socket
import sys
import threading


def serve(sock: socket.socket, name: str) -> None:
    while True:
        conn, (peer, _) = sock.accept()
        conn.settimeout(0.5)
        try:
            conn.recv(1024)  # read the request first: closing with unread data would reset
        except OSError:
            pass
        try:
            conn.sendall(f"{name} {peer}\n".encode())
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()


def main() -> None:
    name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    for port in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        threading.Thread(target=serve, args=(s, name), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
