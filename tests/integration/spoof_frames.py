"""Forged frames out of an instance's interface, for the spoofing test (test_vpc_network.py).

Run inside the attacker container's network namespace with Docker's default capabilities
(NET_RAW, no NET_ADMIN): the `tiny` image has no tool that forges a source with NET_RAW alone
(busybox arping binds its -s address first, which fails for an address that is not its own),
so the test brings this script. Standard library only; one AF_PACKET socket on eth0.

    spoof_frames.py arp  SRC_MAC CLAIMED_IP                 gratuitous ARP replies
    spoof_frames.py udp  SRC_MAC DST_MAC SRC_IP DST_IP PORT TEXT
    spoof_frames.py syn  SRC_MAC DST_MAC SRC_IP DST_IP PORT  a TCP SYN
Each kind is sent 3 times; prints the number of frames sent.

    spoof_frames.py listen PORT SECONDS
prints "ready", then "SRC_IP TEXT" for every UDP datagram to PORT that reaches eth0 (the
receiving side: what arrives at the interface, before the receiver's own kernel decides).
"""
from __future__ import annotations

import socket
import struct
import sys
import time

COPIES = 3


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> int:
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return checksum(pseudo + segment)


def udp(src: str, dst: str, port: int, text: str) -> bytes:
    data = text.encode()
    seg = struct.pack("!HHHH", 40000, port, 8 + len(data), 0) + data
    return ipv4(src, dst, 17, seg[:6] + struct.pack("!H", l4_checksum(src, dst, 17, seg)) + seg[8:])


def syn(src: str, dst: str, port: int) -> bytes:
    seg = struct.pack("!HHIIBBHHH", 40001, port, 1000, 0, 5 << 4, 0x02, 64240, 0, 0)
    return ipv4(src, dst, 6, seg[:16] + struct.pack("!H", l4_checksum(src, dst, 6, seg)) + seg[18:])


def frames(argv: list[str]) -> list[bytes]:
    kind = argv[0]
    if kind == "arp":
        src_mac, claimed = mac(argv[1]), socket.inet_aton(argv[2])
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, src_mac, claimed, b"\xff" * 6, claimed)
        return [b"\xff" * 6 + src_mac + b"\x08\x06" + arp]
    src_mac, dst_mac, src, dst, port = mac(argv[1]), mac(argv[2]), argv[3], argv[4], int(argv[5])
    packet = udp(src, dst, port, argv[6]) if kind == "udp" else syn(src, dst, port)
    return [dst_mac + src_mac + b"\x08\x00" + packet]


def listen(port: int, seconds: float) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind(("eth0", 0))
    s.settimeout(0.2)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = s.recv(2048)
        except socket.timeout:
            continue
        if frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp_at = 14 + ihl
        if struct.unpack("!H", frame[udp_at + 2:udp_at + 4])[0] == port:
            print(socket.inet_ntoa(frame[26:30]), frame[udp_at + 8:].decode(errors="replace"), flush=True)


def main() -> None:
    if sys.argv[1] == "listen":
        return listen(int(sys.argv[2]), float(sys.argv[3]))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    sent = 0
    for frame in frames(sys.argv[1:]) * COPIES:
        s.send(frame)
        sent += 1
    print(sent)


if __name__ == "__main__":
    main()
