"""`pocketcloud buckets`: S3 buckets over REST /api/v1/buckets (the same buckets answer
`aws s3` and boto3 on the same endpoint)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .client import ApiError, Client
from .context import HelpGroup, LocalError, client_of, json_mode
from .output import emit, print_json, size, table
from .progress import TransferProgress, UploadBody

BUCKET_COLUMNS = ["name", "access", "yours", "objects", "size", "created_at"]


@click.group(cls=HelpGroup)
def buckets():
    """S3 buckets: make, list, copy to and from, share, presign (REST /api/v1/buckets).

    The same buckets answer `aws s3` and boto3 on the same endpoint.
    """


def _storage_call(ctx: click.Context, method: str, path: str, **kw):
    """A /buckets call; a cloud without object storage gets one clear message."""
    try:
        return client_of(ctx).call(method, path, **kw)
    except ApiError as e:
        raise _storage_error(e) from None


def _storage_error(e: ApiError) -> ApiError:
    # An older or trimmed-down server without the /buckets endpoints.
    if e.code == "NotImplemented" or (e.status == 404 and e.code == "NotFound" and "no such endpoint" in e.message):
        return ApiError(501, "NotImplemented", "this pocketcloud has no object storage (yet): "
                                               "`pocketcloud status` shows the storage engine")
    return e


def _bucket_target(value: str) -> tuple[str, str]:
    """s3://BUCKET/KEY or BUCKET[/KEY] -> (bucket, key)."""
    bucket, _, key = value.removeprefix("s3://").partition("/")
    if not bucket:
        raise click.BadParameter(f"{value!r}: use s3://BUCKET/KEY")
    return bucket, key


@buckets.command("mb")
@click.argument("name")
@click.option("--public", is_flag=True, help="anyone may read its objects (public-read)")
@click.pass_context
def buckets_mb(ctx, name, public):
    """Make a bucket (names are global, as in S3)."""
    b = _storage_call(ctx, "POST", "/buckets", json={"name": _bucket_target(name)[0],
                                                       "access": "public-read" if public else "private"})
    emit(ctx, b, BUCKET_COLUMNS)


@buckets.command("ls")
@click.argument("target", required=False)
@click.option("--recursive", "-r", is_flag=True, help="list every key, not just one level")
@click.pass_context
def buckets_ls(ctx, target, recursive):
    """List your buckets (own and shared), or the objects in s3://BUCKET[/PREFIX]."""
    if not target:
        return emit(ctx, _storage_call(ctx, "GET", "/buckets"), BUCKET_COLUMNS, key="buckets",
                    empty="no buckets: `pocketcloud buckets mb NAME`")
    bucket, prefix = _bucket_target(target)
    objects, prefixes, token = [], [], None
    while True:
        params = {"prefix": prefix, **({} if recursive else {"delimiter": "/"}), **({"token": token} if token else {})}
        page = _storage_call(ctx, "GET", f"/buckets/{bucket}/objects", params=params)
        objects += page["objects"]
        prefixes += page.get("prefixes") or []
        token = page.get("next_token")
        if not token:
            break
    if json_mode(ctx):
        return print_json({"bucket": bucket, "prefix": prefix, "prefixes": prefixes, "objects": objects})
    rows = [{"key": p, "size": None, "last_modified": "PRE"} for p in prefixes] + \
           [{"key": o["key"], "size": size(o["size"]), "last_modified": o.get("last_modified")} for o in objects]
    table(rows, ["key", "size", "last_modified"], empty=f"s3://{bucket}/{prefix} is empty")


@buckets.command("rb")
@click.argument("name")
@click.option("--force", is_flag=True, help="delete its objects too")
@click.pass_context
def buckets_rb(ctx, name, force):
    """Remove a bucket (it must be empty unless --force)."""
    bucket = _bucket_target(name)[0]
    _storage_call(ctx, "DELETE", f"/buckets/{bucket}", params={"force": "true"} if force else {})
    if json_mode(ctx):
        print_json({"name": bucket, "deleted": True})
    else:
        click.echo(f"deleted bucket {bucket}", err=True)


@buckets.command("cp")
@click.argument("src")
@click.argument("dst")
@click.pass_context
def buckets_cp(ctx, src, dst):
    """Copy a file to or from a bucket.

    \b
    pocketcloud buckets cp notes.txt s3://my-bucket/          (key = file name)
    pocketcloud buckets cp notes.txt s3://my-bucket/docs/n.txt
    pocketcloud buckets cp s3://my-bucket/docs/n.txt ./n.txt    (- for stdout)
    """
    up, down = dst.startswith("s3://"), src.startswith("s3://")
    if up == down:
        raise LocalError("exactly one side must be s3://BUCKET/KEY (copy between buckets: download, then upload)")
    started = time.monotonic()
    result = _upload(ctx, client_of(ctx), src, dst) if up else _download(ctx, client_of(ctx), src, dst)
    if result is None:  # streamed to stdout: nothing else may go there
        return
    result["seconds"] = round(time.monotonic() - started, 3)
    if json_mode(ctx):
        print_json(result)
    else:
        click.echo(f"{result['source']} -> {result['destination']} ({size(result['bytes'])} in {result['seconds']}s)",
                   err=True)


def _upload(ctx: click.Context, c: Client, src: str, dst: str) -> dict:
    bucket, key = _bucket_target(dst)
    if src == "-":
        data = sys.stdin.buffer.read()
        if not key or key.endswith("/"):
            raise LocalError("from stdin, give the full key: s3://BUCKET/KEY")
        try:
            res = c.call("PUT", f"/buckets/{bucket}/objects/{key}", data=data)
        except ApiError as e:
            raise _storage_error(e) from None
    else:
        path = Path(src)
        if not path.is_file():
            raise LocalError(f"{src} is not a file")
        if not key or key.endswith("/"):
            key += path.name
        length = path.stat().st_size
        prog = TransferProgress(ctx, f"upload {path.name}", length)
        try:
            with open(path, "rb") as f:
                res = c.call("PUT", f"/buckets/{bucket}/objects/{key}", data=UploadBody(f, length, prog),
                             headers={"Content-Type": "application/octet-stream"})
        except ApiError as e:
            raise _storage_error(e) from None
        finally:
            prog.close()
    return {"source": src, "destination": f"s3://{bucket}/{key}", "bytes": res.get("size"), "etag": res.get("etag")}


def _download(ctx: click.Context, c: Client, src: str, dst: str) -> dict | None:
    """To a file (through NAME.part, renamed once complete), or to stdout with `-` (returns None)."""
    bucket, key = _bucket_target(src)
    if not key:
        raise LocalError("give the object: s3://BUCKET/KEY")
    try:
        r = c.request("GET", f"/buckets/{bucket}/objects/{key}", stream=True)
    except ApiError as e:
        raise _storage_error(e) from None
    total = int(r.headers.get("Content-Length") or 0) or None
    if dst == "-":
        for chunk in r.iter_content(1 << 20):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return None
    path = Path(dst)
    if path.is_dir() or dst.endswith("/"):
        path = path / Path(key).name
    prog = TransferProgress(ctx, f"download {Path(key).name}", total)
    tmp = path.with_name(path.name + ".part")
    written = 0
    try:
        with open(tmp, "wb") as f:
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
                written += len(chunk)
                prog.advance(len(chunk))
        if total is not None and written != total:
            raise ApiError(502, "IncompleteBody", f"got {written} of {total} bytes; try again")
        tmp.replace(path)
    finally:
        prog.close()
        tmp.unlink(missing_ok=True)
    return {"source": src, "destination": str(path), "bytes": written}


@buckets.command("presign")
@click.argument("url")
@click.option("--expires", default=3600, show_default=True, help="seconds the link is valid (max 604800)")
@click.option("--method", type=click.Choice(["GET", "PUT"]), default="GET", show_default=True)
@click.pass_context
def buckets_presign(ctx, url, expires, method):
    """Print a time-limited URL for s3://BUCKET/KEY that works without keys (curl it)."""
    bucket, key = _bucket_target(url)
    if not key:
        raise LocalError("give the object: s3://BUCKET/KEY")
    res = _storage_call(ctx, "POST", f"/buckets/{bucket}/presign", json={"key": key, "expires": expires,
                                                                         "method": method})
    if json_mode(ctx):
        print_json(res)
    else:
        click.echo(res["url"])


@buckets.command("share")
@click.argument("name")
@click.option("--public/--private", default=None, help="make its objects readable by anyone, or not")
@click.option("--with", "grantee", help="account (name or id) to share with")
@click.option("--level", type=click.Choice(["read", "read-write", "none"]), default="read", show_default=True,
              help="what --with gets; none revokes")
@click.pass_context
def buckets_share(ctx, name, public, grantee, level):
    """Share a bucket: --public / --private, or --with ACCOUNT [--level read|read-write|none]."""
    if public is None and not grantee:
        raise LocalError("say how to share: --public, --private, or --with ACCOUNT [--level read|read-write|none]")
    bucket = _bucket_target(name)[0]
    b = None
    if public is not None:
        b = _storage_call(ctx, "PUT", f"/buckets/{bucket}/access",
                          json={"access": "public-read" if public else "private"})
    if grantee:
        if level == "none":
            b = _storage_call(ctx, "DELETE", f"/buckets/{bucket}/shares/{grantee}")
        else:
            b = _storage_call(ctx, "PUT", f"/buckets/{bucket}/shares/{grantee}", json={"level": level})
    if json_mode(ctx):
        return print_json(b)
    shares = ", ".join(f"{g.get('account_name') or g['account']}: {g['level']}" for g in b.get("grants", [])) or "nobody"
    click.echo(f"{b['name']}: {b['access']}; shared with {shares}")


@buckets.command("explain")
@click.argument("target")
@click.argument("key", required=False)
@click.pass_context
def buckets_explain(ctx, target, key):
    """Where a bucket (and an object) really lives: s3://BUCKET[/KEY], or BUCKET [KEY].

    On Ceph: the pool, the placement group, the OSDs holding the replicas (primary first),
    their hosts and block files; on the stand-in the file under its data directory.
    """
    from .storage import render_internals

    bucket, inline_key = _bucket_target(target)
    key = key or inline_key or None
    data = _storage_call(ctx, "GET", f"/buckets/{bucket}/internals", params={"key": key} if key else None)
    if json_mode(ctx):
        return print_json(data)
    render_internals(data)
