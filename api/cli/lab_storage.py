"""`pocketcloud lab storage`: block storage against object storage, from inside one instance,
like a student script over the public API:

1. one instance (a container, or a tiny VM) and a volume attached to it, with a filesystem on
   it (a VM formats its own disk with mke2fs and mounts it; a container is handed a mounted
   ext4 by the host, which is what a container's shared kernel allows: docs/volumes.md);
2. the same dataset written and read back on the volume (dd: sequential with fsync, O_DIRECT
   reads, random 4 KiB O_DIRECT reads and writes, small writes each followed by fsync) and in a
   bucket (HTTP PUT and GET of presigned URLs with the instance's own busybox `nc` and `wget`);
3. what each can and cannot do (rename, append, partial overwrite, share between instances,
   list many), tried where there is something to try: a second attach of the volume is refused
   (VolumeInUse) while a second instance reads the bucket's object;
4. a table, a chart and a report; then everything it made is deleted, also on Ctrl-C.

The instance's busybox has no clock finer than 10 ms but `adjtimex` (microseconds), and no
curl: a PUT is written to `nc` by hand. Every per-operation figure includes starting the tool
(dd, nc, wget) in the instance; the `tool start` row says how much that is.

The API listens on the host's loopback, which no instance reaches. With VPC networking the cloud
answers its API port on every subnet's gateway (docs/networking.md); without, the lab forwards a
port on the instance's gateway to the API while it runs (`Relay`). URLs are presigned for that
address; `--endpoint` names an address instances reach directly instead.
"""
from __future__ import annotations

import base64
import contextlib
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from .client import ApiError, Client
from .relay import Relay

Progress = Callable[[str], None]
DEVICE = "/dev/sdf"
CRLF = "\\r\\n"  # for printf in the instance
DATA = "/tmp/lab-storage-data"
NOW = "now(){ adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf \"%d%06d\\n\", s, u}'; }"
RANGE = '"$o-$((o+4095))"'  # the 4 KiB at the loop's random offset
FIND = ("i=0; while [ $i -lt 60 ]; do for d in /sys/block/vd*; do "
        "[ \"$(cat $d/serial 2>/dev/null)\" = \"{serial}\" ] && echo /dev/${{d##*/}} && exit 0; done; "
        "i=$((i+1)); sleep 0.5; done; exit 1")
MAX_COMMAND = 6000
SCRIPT = "/tmp/lab-storage.sh"
READY_TIMEOUT = {"container": 120.0, "vm": 420.0}


def _exec(client: Client, iid: str, script: str, timeout: int = 300) -> str:
    """Run SCRIPT in the instance; a long one (many presigned URLs) is copied in first, in pieces
    of base64: a VM's dropbear refuses an exec request over about 9000 bytes."""
    if len(script) > MAX_COMMAND:
        blob = base64.b64encode(script.encode()).decode()
        _run_in(client, iid, f"rm -f {SCRIPT}.b64", 60)
        for i in range(0, len(blob), MAX_COMMAND):
            _run_in(client, iid, f"printf %s {blob[i:i + MAX_COMMAND]} >> {SCRIPT}.b64", 60)
        script = f"base64 -d {SCRIPT}.b64 > {SCRIPT} && rm {SCRIPT}.b64 && sh {SCRIPT}"
    return _run_in(client, iid, script, timeout)


def _run_in(client: Client, iid: str, command: str, timeout: int) -> str:
    res = client.call("POST", f"/instances/{iid}/exec", json={"command": command, "timeout": timeout})
    if res["exit_code"] != 0 or res.get("timed_out"):
        raise ApiError(0, "LabStepFailed", f"in {iid}: exit {res['exit_code']}"
                                           f"{' (timed out)' if res.get('timed_out') else ''}: "
                                           f"{(res['stderr'] or res['stdout']).strip()[-400:]}")
    return res["stdout"]


def _timings(out: str) -> dict[str, float]:
    """Lines `name start_us end_us` -> name: seconds."""
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            got[parts[0]] = (int(parts[2]) - int(parts[1])) / 1e6
    return got


def _values(out: str, prefix: str = "=") -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(prefix) for line in out.splitlines() if prefix in line)}


def _wait_ready(client: Client, iid: str, kind: str, progress: Progress) -> None:
    deadline = time.monotonic() + READY_TIMEOUT[kind]
    last = ""
    while time.monotonic() < deadline:
        state = client.call("GET", f"/instances/{iid}")["state"]
        if state in ("terminated", "stopped", "stopping"):
            raise ApiError(0, "NotReady", f"{iid} is {state}")
        if state == "running":
            try:
                if client.call("POST", f"/instances/{iid}/exec", json={"command": "true", "timeout": 20})["exit_code"] == 0:
                    return
            except ApiError as e:
                last = e.message
        time.sleep(1.0)
    raise ApiError(0, "Timeout", f"{iid} was not ready within {READY_TIMEOUT[kind]:.0f}s ({last})")


def volume_script(mnt: str, size_mib: int, ops: int) -> str:
    """Sequential write (fsync at the end) and O_DIRECT read of the dataset; OPS random 4 KiB
    O_DIRECT reads and writes; OPS 512-byte writes each with fsync (a database's commit)."""
    blocks = size_mib * 256
    loop = f"i=0; while [ $i -lt {ops} ]; do i=$((i+1)); o=$(( (RANDOM * 32768 + RANDOM) % {blocks} ))"  # RANDOM < 32768
    return f"""set -e
{NOW}
cd {mnt}
a=$(now); dd if={DATA} of=data bs=1M conv=fsync 2>/dev/null; echo seq_write $a $(now)
sync
a=$(now); dd if=data of=/dev/null bs=1M iflag=direct 2>/dev/null; echo seq_read $a $(now)
echo sha=$(sha256sum data | cut -d' ' -f1)
a=$(now); {loop}; dd if={DATA} of=data bs=4k count=1 skip=$o seek=$o conv=notrunc oflag=direct 2>/dev/null; done; echo rand_write $a $(now)
a=$(now); {loop}; dd if=data of=/dev/null bs=4k count=1 skip=$o iflag=direct 2>/dev/null; done; echo rand_read $a $(now)
a=$(now); i=0; while [ $i -lt {ops} ]; do i=$((i+1)); dd if=/dev/zero of=commits bs=512 count=1 seek=$i conv=notrunc,fsync 2>/dev/null; done; echo fsync $a $(now)
a=$(now); {loop}; dd if=/dev/zero of=/dev/null bs=4k count=1 skip=$o 2>/dev/null; done; echo tool_start $a $(now)
"""


def capability_script(mnt: str, files: int) -> str:
    """What a filesystem on a block device allows, each tried on the volume."""
    return f"""set -e
{NOW}
cd {mnt}
a=$(now); mv data data.renamed; mv data.renamed data; echo rename $a $(now)
printf one > appended; a=$(now); printf two >> appended; echo append $a $(now); echo appended=$(cat appended)
printf 0123456789 > patched; a=$(now); printf XY | dd of=patched bs=1 seek=4 conv=notrunc 2>/dev/null; echo patch $a $(now)
echo patched=$(cat patched)
mkdir -p many; i=0; while [ $i -lt {files} ]; do i=$((i+1)); : > many/f$i; done
a=$(now); n=$(ls many | wc -l); echo list $a $(now); echo listed=$n
rm -rf many appended patched commits
"""


def _http(method: str, url: str, path: str | None = None, extra: str = "", extra_args: str = "") -> str:
    """An HTTP request to a presigned URL written to busybox nc (there is no curl, and busybox
    wget neither PUTs nor takes a 206): the whole answer lands in a file, the status code is printed.
    EXTRA is more header lines (a printf format: %s takes the shell words of EXTRA_ARGS)."""
    u = urlparse(url)
    length = f"Content-Length: %s{CRLF}" if path else ""
    head = f"{method} %s HTTP/1.0{CRLF}Host: %s{CRLF}{length}{extra}{CRLF}"  # the URL's % escapes stay args
    args = f"'{u.path}?{u.query}' '{u.netloc}'" + (f' "$(wc -c < {path})"' if path else "") + \
        (f" {extra_args}" if extra_args else "")
    body = f"; cat {path}" if path else ""
    return (f"{{ printf '{head}' {args}{body}; }} | nc {u.hostname} {u.port or 80} > /tmp/lab-answer; "
            "head -1 /tmp/lab-answer | cut -d' ' -f2")


def _put(url: str, path: str, extra: str = "") -> str:
    return _http("PUT", url, path, extra)


def bucket_script(big_put: str, big_get: str, small_puts: list[str]) -> str:
    """The dataset PUT and GET through HTTP; small 4 KiB objects PUT one by one; 4 KiB ranges GET."""
    lines = ["set -e", NOW, "cd /tmp", "head -c 4096 " + DATA + " > lab-small",
             f"a=$(now); s=$({_put(big_put, DATA)}); echo seq_write $a $(now); echo put_status=$s",
             f"a=$(now); wget -q -O lab-got '{big_get}'; echo seq_read $a $(now)",
             "echo sha=$(sha256sum lab-got | cut -d' ' -f1); rm -f lab-got",
             "a=$(now)"]
    lines += [f"s=$({_put(u, 'lab-small')}); [ \"$s\" = 200 ] || echo small_status=$s" for u in small_puts]
    lines.append("echo rand_write $a $(now)")
    lines.append(f"a=$(now); i=0; while [ $i -lt {len(small_puts)} ]; do i=$((i+1)); o=$(( (RANDOM % 256) * 4096 )); "
                 f"s=$({_http('GET', big_get, extra='Range: bytes=%s' + CRLF, extra_args=RANGE)}); "
                 "[ \"$s\" = 206 ] || echo range_status=$s; done; "
                 "echo rand_read $a $(now); rm -f lab-small")
    return "\n".join(lines) + "\n"


def _rate(mib: float, seconds: float | None) -> float | None:
    return round(mib / seconds, 1) if seconds else None


def _ms(seconds: float | None, n: int) -> float | None:
    return round(1000 * seconds / n, 2) if seconds is not None and n else None


def figures(t: dict[str, float], size_mib: int, ops: int) -> dict[str, float | None]:
    return {"seq_write_mib_s": _rate(size_mib, t.get("seq_write")), "seq_read_mib_s": _rate(size_mib, t.get("seq_read")),
            "write_4k_ms": _ms(t.get("rand_write"), ops), "read_4k_ms": _ms(t.get("rand_read"), ops),
            "fsync_ms": _ms(t.get("fsync"), ops), "tool_start_ms": _ms(t.get("tool_start"), ops)}


METRICS = [("seq_write_mib_s", "sequential write (MiB/s)", "volume: dd, fsync at the end; bucket: one PUT"),
           ("seq_read_mib_s", "sequential read (MiB/s)", "volume: dd O_DIRECT; bucket: one GET"),
           ("write_4k_ms", "4 KiB write (ms each)", "volume: at a random offset, O_DIRECT; bucket: a new object"),
           ("read_4k_ms", "4 KiB read (ms each)", "volume: at a random offset, O_DIRECT; bucket: a Range GET"),
           ("fsync_ms", "durable small write (ms each)", "volume: 512 B + fsync; bucket: a PUT is durable when answered"),
           ("tool_start_ms", "tool start, in every figure (ms)", "dd doing nothing, in the same loop (nc, wget alike)")]


def table(vol: dict, bucket: dict) -> list[list[str]]:
    fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
    return [["", "volume", "bucket", "how"]] + [[label, fmt(vol.get(k)), fmt(bucket.get(k)), how]
                                               for k, label, how in METRICS]


def can_table(can: list[dict]) -> list[list[str]]:
    return [["", "volume (a filesystem on a block device)", "bucket (objects over HTTP)"]] + [
        [c["what"], c["volume"], c["bucket"]] for c in can]


def _launch(client: Client, kind: str, image: str, itype: str, name: str) -> str:
    return client.call("POST", "/instances", json={"image": image, "kind": kind, "type": itype, "name": name,
                                                   "tags": {"pocketcloud:lab": "storage"}})["id"]


class Lab:
    """The run, with what it made so far (for the clean-up)."""

    def __init__(self, client: Client, progress: Progress):
        self.client, self.progress = client, progress
        self.instances: list[str] = []
        self.volume: str | None = None
        self.bucket: str | None = None
        self.relay: Relay | None = None
        self.presign_host: str | None = None  # the Host presigned URLs name, when the host cannot reach it

    def _delete_volume(self) -> None:
        deadline = time.monotonic() + 120  # its instance's termination lets go of it
        while self.client.call("GET", f"/volumes/{self.volume}")["state"] != "available" \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        self.client.call("DELETE", f"/volumes/{self.volume}")

    def cleanup(self) -> list[str]:
        """Delete everything the lab made; returns what could not be deleted. The instances go
        first: a command still running in one (an interrupted step) keeps the volume's
        filesystem busy, and a terminated instance lets go of its volume."""
        c, left = self.client, []
        if self.relay:
            self.relay.close()
        steps = [(f"instance {iid}", lambda iid=iid: c.call("DELETE", f"/instances/{iid}")) for iid in self.instances]
        if self.volume:
            steps.append((f"volume {self.volume}", self._delete_volume))
        if self.bucket:
            steps.append((f"bucket {self.bucket}",
                          lambda: c.call("DELETE", f"/buckets/{self.bucket}", params={"force": "true"})))
        for what, step in steps:
            self.progress(f"clean-up: {what}")
            try:
                step()
            except ApiError as e:
                if e.status != 404:
                    left.append(f"{what}: {e.message}")
        return left


@contextlib.contextmanager
def _uninterrupted():
    """A second Ctrl-C would leave half the clean-up undone: it waits (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(client: Client, out: Path, *, kind: str = "container", image: str = "tiny", itype: str = "t2.nano",
        size_mib: int = 64, ops: int = 100, files: int = 200, endpoint: str | None = None,
        progress: Progress = print) -> dict:
    from .labs import save_lab

    lab = Lab(client, progress)
    try:
        result = _run(lab, kind, image, itype, size_mib, ops, files, endpoint)
    finally:
        with _uninterrupted():
            left = lab.cleanup()
    result["left_behind"] = left
    result["files"] = save_lab(out, result, json_name="storage.json", chart_name="storage.png",
                               report_name="report.md", chart=lambda p: chart(p, result),
                               report=lambda name: markdown(result, name))
    return result


def _endpoint(lab: Lab, iid: str, endpoint: str | None) -> str:
    """The API's address as the instance reaches it: ENDPOINT; with VPC networking the cloud's own
    endpoint on the instance's gateway (docs/networking.md); else a forward the lab holds on that
    gateway. Checked from inside (an unreachable one would hang every request)."""
    c, inner = lab.client, endpoint
    if not inner:
        gw = _exec(c, iid, "ip route | awk '/^default/{print $3; exit}'").strip()
        if not gw:
            raise ApiError(0, "NoRoute", f"{iid} has no default route: give --endpoint")
        api = urlparse(c.endpoint)
        port = api.port or 80
        if c.call("GET", f"/instances/{iid}/internals").get("vpc_path"):
            # On a subnet the gateway answers the API's port itself (an nft DNAT to the host's
            # loopback), and only for instances: the host presigns with that Host header instead.
            inner, lab.presign_host = f"http://{gw}:{port}", f"{gw}:{port}"
        else:
            try:
                lab.relay = Relay(gw, (api.hostname or "127.0.0.1", port))
            except OSError as e:
                raise ApiError(0, "NoRelay", f"cannot listen on {gw}, {iid}'s gateway ({e}): run the lab on the "
                                             "server's host, or give --endpoint (an address instances reach)") from None
            inner = f"http://{lab.relay.address[0]}:{lab.relay.address[1]}"
    # busybox wget's own -T crashes (DESIGN.md): timeout(1) bounds it
    if "ok" not in _exec(c, iid, f"timeout 10 wget -q -O /dev/null {inner}/api/v1/health && echo ok || true"):
        raise ApiError(0, "EndpointUnreachable", f"{iid} cannot reach {inner} (a firewall between instances and this "
                                                 "host?): give --endpoint, an address instances reach")
    return inner


def _run(lab: Lab, kind: str, image: str, itype: str, size_mib: int, ops: int, files: int,
         endpoint: str | None) -> dict:
    c, say = lab.client, lab.progress
    say(f"launching {image} as a {kind} ({itype}), and a container to share with")
    lab.instances.append(_launch(c, kind, image, itype, "lab-storage"))
    lab.instances.append(_launch(c, "container", image, itype, "lab-storage-peer"))
    iid, peer = lab.instances
    for i, k in ((iid, kind), (peer, "container")):
        _wait_ready(c, i, k, say)
    inner = _endpoint(lab, iid, endpoint)
    vol = c.call("POST", "/volumes", json={"size": 1, "tags": {"pocketcloud:lab": "storage"}})
    lab.volume = vol["id"]
    say(f"volume {lab.volume} (1 GiB gp3) attaching to {iid} as {DEVICE}")
    t0 = time.monotonic()
    att = c.call("POST", f"/volumes/{lab.volume}/attach", json={"instance_id": iid, "device": DEVICE})
    attach_s = time.monotonic() - t0
    guest = att["guest_device"]
    if kind == "vm":
        mnt = "/mnt/lab"
        # The guest's kernel names the disk, not libvirt's target: it is found by its serial.
        guest = _exec(c, iid, FIND.format(serial=lab.volume.replace("-", ""))).strip()
        say(f"  the VM sees {guest}: mke2fs and mount it at {mnt}; /tmp becomes a tmpfs (the dataset's "
            "source, off the root disk)")
        fs = _exec(c, iid, f"set -e; mke2fs {guest} >/dev/null; mkdir -p {mnt}; mount {guest} {mnt}; "
                           f"mount -t tmpfs -o size={2 * size_mib + 32}m lab /tmp; grep ' {mnt} ' /proc/mounts")
    else:
        mnt = guest
        say(f"  the container sees it mounted at {mnt} (the host made the filesystem: a container has no "
            "block device of its own)")
        fs = _exec(c, iid, f"grep ' {mnt} ' /proc/mounts")
    say(f"dataset: {size_mib} MiB of random bytes in {iid}")
    digest = _exec(c, iid, f"set -e; dd if=/dev/urandom of={DATA} bs=1M count={size_mib} 2>/dev/null; "
                           f"sha256sum {DATA} | cut -d' ' -f1").strip()
    budget = 60 + size_mib * 2 + ops
    say(f"volume: sequential, {ops} random 4 KiB reads and writes, {ops} fsyncs")
    vout = _exec(c, iid, volume_script(mnt, size_mib, ops), timeout=min(600, budget))
    vol_t = _timings(vout)

    bucket = f"lab-storage-{secrets.token_hex(4)}"
    c.call("POST", "/buckets", json={"name": bucket})
    lab.bucket = bucket
    say(f"bucket {bucket}: the instance reaches the API at {inner}")
    # Presigned for the address the instance uses: the URL carries (and signs) that host.
    signer = c if lab.presign_host else Client(inner, c.key_id, c.secret)
    host = {"Host": lab.presign_host} if lab.presign_host else {}

    def url(key: str, method: str = "GET") -> str:
        return signer.call("POST", f"/buckets/{bucket}/presign", headers=host,
                           json={"key": key, "method": method, "expires": 3600})["url"]

    small = [url(f"small/{i:05d}", "PUT") for i in range(ops)]
    say(f"bucket: the dataset PUT and GET over HTTP, {ops} 4 KiB objects, {ops} 4 KiB ranges")
    bout = _exec(c, iid, bucket_script(url("data", "PUT"), url("data"), small), timeout=min(600, budget + ops))
    b_t = _timings(bout)
    checks = {"dataset": digest, "volume": _values(vout).get("sha"), "bucket": _values(bout).get("sha"),
              "put_status": _values(bout).get("put_status")}
    failed = {k: v for k, v in _values(bout).items() if k in ("small_status", "range_status")}
    if checks["put_status"] != "200" or failed or not checks["volume"] == checks["bucket"] == digest:
        raise ApiError(0, "LabCheckFailed", f"the data did not come back intact: {checks} {failed}")
    b_t["fsync"] = b_t.get("rand_write")  # a PUT is answered once the object is stored: no separate sync

    say("what each can and cannot do: trying each")
    can = capabilities(lab, iid, peer, mnt, files, url, guest, digest)
    result = {"kind": kind, "image": image, "type": itype, "instance": iid, "peer": peer, "volume": lab.volume,
              "bucket": bucket, "guest_device": guest, "mount": mnt, "filesystem": fs.strip(),
              "endpoint_inside": inner, "size_mib": size_mib, "ops": ops, "files": files,
              "attach_s": round(attach_s, 2), "sha256": digest,
              "volume_seconds": vol_t, "bucket_seconds": b_t,
              "volume_figures": figures(vol_t, size_mib, ops), "bucket_figures": figures(b_t, size_mib, ops),
              "can": can}
    result["table"] = table(result["volume_figures"], result["bucket_figures"])
    result["can_table"] = can_table(can)
    return result


def capabilities(lab: Lab, iid: str, peer: str, mnt: str, files: int, url: Callable[..., str],
                 guest: str, digest: str) -> list[dict]:
    c = lab.client
    out = _exec(c, iid, capability_script(mnt, files), timeout=120 + files // 10)
    t, v = _timings(out), _values(out)
    ms = lambda k: f"{1000 * t[k]:.1f} ms" if k in t else "?"  # noqa: E731
    # The bucket: an object is replaced whole, a byte range can be read but not written.
    key_url = url("tried/object", "PUT")
    b_out = _exec(c, iid, "set -e; cd /tmp; printf one > o1; printf two > o2; printf XY > o3\n"
                          f"echo first=$({_put(key_url, 'o1')})\n"
                          f"echo second=$({_put(key_url, 'o2')})\n"
                          f"echo got=$(wget -q -O - '{url('tried/object')}')\n"
                          f"echo ranged=$({_put(key_url, 'o3', 'Content-Range: bytes 1-2/3' + CRLF)})\n"
                          f"echo after=$(wget -q -O - '{url('tried/object')}')\n"
                          "rm -f o1 o2 o3")
    b = _values(b_out)
    # Sharing: the volume's second attach is refused; the peer reads the bucket's object.
    try:
        c.call("POST", f"/volumes/{lab.volume}/attach", json={"instance_id": peer, "device": "/dev/sdg"})
        shared_vol = "attached twice (unexpected)"
    except ApiError as e:
        shared_vol = f"no: a second attach is refused ({e.code})"
    peer_sha = _exec(c, peer, f"wget -q -O - '{url('data')}' | sha256sum | cut -d' ' -f1").strip()
    shared_bucket = ("yes: another instance GETs the same object (tried: same SHA-256)" if peer_sha == digest
                     else f"read something else ({peer_sha[:12]})")
    n, pages, list_ms = listing(c, lab.bucket, files)
    return [
        {"what": "rename", "volume": f"yes: mv, one metadata update (tried: {ms('rename')})",
         "bucket": "no: there is no rename; copy to the new key and delete the old (the whole object is written again)"},
        {"what": "append", "volume": f"yes: >> writes only the new bytes (tried: {v.get('appended')!r})",
         "bucket": f"no: a PUT replaces the object (tried: PUT 'one', PUT 'two', GET gives {b.get('got')!r})"},
        {"what": "partial overwrite", "volume": f"yes: dd conv=notrunc (tried: {v.get('patched')!r})",
         "bucket": f"no: a byte range is readable (Range GET), not writable (tried: PUT with Content-Range -> "
                   f"{b.get('ranged')}, object now {b.get('after')!r})"},
        {"what": "share between instances", "volume": shared_vol + ": one instance at a time (" + guest + ")",
         "bucket": shared_bucket},
        {"what": f"list many ({files} entries here)",
         "volume": f"one directory read (tried: {v.get('listed')} files, {ms('list')}); no paging, and a directory "
                   "of millions is slow to read and to back up",
         "bucket": f"paged, 1000 keys a request, by prefix, in key order (tried: {n} keys, {pages} page(s), "
                   f"{list_ms:.0f} ms, put and listed by the lab over REST); millions are thousands of requests, "
                   "and no directory to outgrow"},
    ]


def listing(client: Client, bucket: str, files: int) -> tuple[int, int, float]:
    """FILES empty objects under list/, then every key read back page by page: (keys, pages, ms)."""
    for i in range(files):
        client.call("PUT", f"/buckets/{bucket}/objects/list/f{i:06d}", data=b"")
    started, keys, pages, token = time.monotonic(), 0, 0, None
    while True:
        page = client.call("GET", f"/buckets/{bucket}/objects",
                           params={"prefix": "list/", "limit": 1000, **({"token": token} if token else {})})
        keys, pages, token = keys + len(page["objects"]), pages + 1, page.get("next_token")
        if not token:
            return keys, pages, 1000 * (time.monotonic() - started)


def markdown(result: dict, chart_name: str) -> str:
    from .lab import markdown as md_table

    return f"""# Storage lab: a volume and a bucket, from inside one instance

One {result['kind']} `{result['instance']}` ({result['image']}, {result['type']}). The volume `{result['volume']}`
(1 GiB gp3, a qcow2 file in the cloud's storage pool) attached in {result['attach_s']} s as `/dev/sdf`; the
instance sees `{result['guest_device']}`, mounted at `{result['mount']}`:

    {result['filesystem']}

The same {result['size_mib']} MiB of random bytes (SHA-256 `{result['sha256'][:16]}...`, read back intact from
both) went to the volume with `dd` and to the bucket `{result['bucket']}` as HTTP PUTs and GETs of presigned URLs
(busybox `nc` and `wget` in the instance, through `{result['endpoint_inside']}`). {result['ops']} operations of each
small kind; every per-operation figure includes starting the tool in the instance (last row).

{md_table(result['table'])}

![throughput and latency]({chart_name})

## What each can and cannot do (tried here)

{md_table(result['can_table'])}

A volume is a disk: one instance mounts its filesystem and changes any byte in place, at the
latency of a local write (fsync makes it durable). A bucket is a service: any instance (or
anyone holding a presigned URL) reads and writes whole objects over HTTP, at the latency of a
request, and lists millions of keys page by page.
"""


def chart(path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vol, bkt = result["volume_figures"], result["bucket_figures"]
    fig, (tp, lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    groups = [("seq_write_mib_s", "write"), ("seq_read_mib_s", "read")]
    xs = range(len(groups))
    tp.bar([x - 0.2 for x in xs], [vol[k] or 0 for k, _ in groups], 0.4, label="volume", color="#4063d8")
    tp.bar([x + 0.2 for x in xs], [bkt[k] or 0 for k, _ in groups], 0.4, label="bucket", color="#cb3c33")
    tp.set_xticks(list(xs), [label for _, label in groups])
    tp.set(ylabel="MiB/s", title=f"sequential, {result['size_mib']} MiB")
    tp.legend()
    groups = [("write_4k_ms", "4 KiB write"), ("read_4k_ms", "4 KiB read"), ("fsync_ms", "durable small write")]
    xs = range(len(groups))
    lat.bar([x - 0.2 for x in xs], [vol[k] or 0 for k, _ in groups], 0.4, label="volume", color="#4063d8")
    lat.bar([x + 0.2 for x in xs], [bkt[k] or 0 for k, _ in groups], 0.4, label="bucket", color="#cb3c33")
    lat.axhline(vol["tool_start_ms"] or 0, color="gray", ls=":", label="tool start (in every bar)")
    lat.set_xticks(list(xs), [label for _, label in groups])
    lat.set(ylabel="ms per operation", title=f"small operations ({result['ops']} each)")
    lat.legend(fontsize=8)
    fig.suptitle(f"pocketcloud: a volume and a bucket, from inside one {result['kind']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


