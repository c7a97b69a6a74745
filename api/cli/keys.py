"""`pocketcloud keys`: SSH key pairs; `create` saves the private half here, once, mode 0600."""
from __future__ import annotations

import os
from pathlib import Path

import click

from .client import ApiError
from .complete import complete_key
from .context import HelpGroup, LocalError, client_of, json_mode, keys_dir, tilde, with_suggestion
from .output import emit, note, print_json

KEY_COLUMNS = ["name", "type", "fingerprint", "created_at"]


@click.group(cls=HelpGroup)
def keys():
    """SSH key pairs: the public half goes into instances launched with --key."""


def write_private_key(path: Path, text: str, force: bool) -> None:
    """Created 0600 from the start (never briefly readable by others), in a 0700 folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise LocalError(f"{path} already exists; pass --out FILE or --force") from None
    with os.fdopen(fd, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.chmod(path, 0o600)


@keys.command("create")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="where to save the private key (default ~/.pocketcloud/keys/NAME.pem), mode 0600")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.pass_context
def keys_create(ctx, name, out, force):
    """Create a key pair; the private key is saved once, to a 0600 file."""
    out = out or keys_dir(ctx) / f"{name}.pem"
    if out.exists() and not force:
        raise LocalError(f"{out} already exists; pass --out FILE or --force")
    kp = client_of(ctx).call("POST", "/keys", json={"name": name})
    private = kp.pop("private_key")
    write_private_key(out, private, force=True)
    kp["private_key_file"] = str(out) if json_mode(ctx) else tilde(out)
    emit(ctx, kp, KEY_COLUMNS + ["private_key_file"])
    note(ctx, f"private key saved to {tilde(out)}, mode 0600 (the server does not keep it)")


@keys.command("import")
@click.argument("name")
@click.argument("public_key_file", type=click.File("r"), default=None, required=False)
@click.pass_context
def keys_import(ctx, name, public_key_file):
    """Import your own public key (default ~/.ssh/id_ed25519.pub or id_rsa.pub)."""
    if public_key_file is None:
        for cand in ("~/.ssh/id_ed25519.pub", "~/.ssh/id_ecdsa.pub", "~/.ssh/id_rsa.pub"):
            p = Path(cand).expanduser()
            if p.exists():
                text = p.read_text()
                break
        else:
            raise LocalError("no PUBLIC_KEY_FILE given and none in ~/.ssh; create one with `ssh-keygen -t ed25519`")
    else:
        text = public_key_file.read()
    emit(ctx, client_of(ctx).call("POST", "/keys", json={"name": name, "public_key": text.strip()}), KEY_COLUMNS)


@keys.command("ls")
@click.pass_context
def keys_ls(ctx):
    """List your key pairs."""
    emit(ctx, client_of(ctx).call("GET", "/keys"), KEY_COLUMNS, key="keys",
         empty="no key pairs: `pocketcloud keys create NAME`")


@keys.command("rm")
@click.argument("name", shell_complete=complete_key)
@click.pass_context
def keys_rm(ctx, name):
    """Delete a key pair and the private key file `keys create` saved for it.

    Instances launched with it keep the public key."""
    c = client_of(ctx)
    try:
        c.call("DELETE", f"/keys/{name}")
    except ApiError as e:
        if e.code != "InvalidKeyPair.NotFound":
            raise
        raise with_suggestion(e, name, [k["name"] for k in c.call("GET", "/keys")["keys"]]) from None
    pem = keys_dir(ctx) / f"{name}.pem"
    removed = pem.is_file()
    if removed:
        pem.unlink()
    if json_mode(ctx):
        print_json({"name": name, "deleted": True, "private_key_file_removed": str(pem) if removed else None})
    else:
        click.echo(f"deleted key pair {name}" + (f" and {tilde(pem)}" if removed else ""), err=True)
