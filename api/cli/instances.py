"""`pocketcloud instances`: run, list, show, start/stop/reboot/rm, console, exec, ssh."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import click

from .client import ApiError, Client
from .complete import complete_image, complete_instance, complete_key
from .context import (HelpGroup, LocalError, client_of, exit_code_for, json_mode, keys_dir, output_of, report,
                      resolve_instance, with_suggestion)
from .output import detail, emit, note, print_json, table
from .waiting import call_with_progress, wait_for_state

INSTANCE_COLUMNS = ["id", "name", "kind", "image", "type", "state", "ports"]
INSTANCE_FIELDS = [("id", "id"), ("name", "name"), ("kind", "kind"), ("image", "image"), ("type", "type"),
                   ("vcpus", "vcpus"), ("memory", "memory"), ("state", "state"), ("reason", "state_reason"), ("boot", "boot"),
                   ("forwards", "ports"), ("private ip", "private_ip"), ("key", "key_name"), ("tags", "tags"),
                   ("created", "created_at"), ("launched", "launched_at"), ("terminated", "terminated_at")]


@click.group(cls=HelpGroup)
def instances():
    """Run and manage VM and container instances."""


def parse_ports(ports) -> list[dict]:
    forwards = []
    for p in ports:
        host, _, guest = p.rpartition(":")
        if not guest.isdigit() or (host and not host.isdigit()):
            raise click.BadParameter(f"{p!r}: use GUEST or HOST:GUEST, e.g. 80 or 8080:80", param_hint="--port")
        forwards.append({"guest": int(guest), **({"host": int(host)} if host else {})})
    return forwards


@instances.command("run")
@click.argument("image", shell_complete=complete_image)
@click.option("--kind", type=click.Choice(["container", "vm"]), default="container", show_default=True)
@click.option("--type", "itype", default="t2.micro", show_default=True, help="see `pocketcloud instances types`")
@click.option("--name", help="a name to use instead of the id in later commands (default: the id)")
@click.option("--port", "-p", "ports", multiple=True, help="GUEST or HOST:GUEST, repeatable (host side binds 127.0.0.1)")
@click.option("--user-data", type=click.File("r"), help="a script run once at first boot")
@click.option("--key", "key_name", shell_complete=complete_key, help="key pair whose public key goes into the instance")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE, repeatable")
@click.option("--wait/--no-wait", default=False,
              help="wait until the instance is running, showing its state and boot phases (on stderr)")
@click.option("--timeout", default=600, show_default=True, help="seconds --wait waits")
@click.pass_context
def instances_run(ctx, image, kind, itype, name, ports, user_data, key_name, tags, wait, timeout):
    """Launch an instance of IMAGE (a container by default, or --kind vm).

    \b
    pocketcloud instances run tiny --name web --port 80 --wait
    pocketcloud instances run tiny --kind vm --name vm1 --key mykey --wait
    """
    payload = {"image": image, "kind": kind, "type": itype, "ports": parse_ports(ports),
               "tags": dict(t.split("=", 1) if "=" in t else (t, "") for t in tags)}
    if name:
        payload["name"] = name
    if key_name:
        payload["key_name"] = key_name
    if user_data:
        payload["user_data"] = user_data.read()
    c = client_of(ctx)
    try:
        inst = call_with_progress(ctx, c, f"launching {image} as a {kind}", "the server is starting it",
                                  "POST", "/instances", json=payload)
    except ApiError as e:
        raise _suggest(c, e, image=image, itype=itype, key_name=key_name) from None
    if wait:
        inst = wait_for_state(ctx, c, inst, "running", timeout)
    elif inst.get("state") == "pending":
        note(ctx, f"{inst['id']} boots in the server: `pocketcloud instances show {inst['id']}` tells how far "
                  "it got; --wait follows its boot phases")
    emit(ctx, inst, INSTANCE_COLUMNS)


def _suggest(c: Client, err: ApiError, image: str, itype: str, key_name: str | None) -> ApiError:
    """An unknown type, image or key name: the error says which names are close."""
    try:
        if err.code == "InvalidInstanceType":
            return with_suggestion(err, itype, [t["name"] for t in c.call("GET", "/instance-types")["instance_types"]])
        if err.code == "InvalidAMIID.NotFound" and "not in the catalog" in err.message and "build it" not in err.message:
            return with_suggestion(err, image, [i["name"] for i in c.call("GET", "/images")["images"]])
        if err.code == "InvalidKeyPair.NotFound" and key_name:
            return with_suggestion(err, key_name, [k["name"] for k in c.call("GET", "/keys")["keys"]])
    except ApiError:
        pass  # the suggestion is a courtesy: the original error stands
    return err


@instances.command("ls")
@click.option("--state", type=click.Choice(["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]))
@click.option("--kind", type=click.Choice(["container", "vm"]))
@click.option("--tag", "tags", multiple=True, help="KEY or KEY=VALUE, repeatable")
@click.option("--all", "all_accounts", is_flag=True, help="every account's instances (admin)")
@click.option("--quiet", "-q", is_flag=True, help="ids only, one a line")
@click.pass_context
def instances_ls(ctx, state, kind, tags, all_accounts, quiet):
    """List your instances (terminated ones stay listed for an hour)."""
    params = [(k, v) for k, v in (("state", state), ("kind", kind)) if v] + [("tag", t) for t in tags]
    if all_accounts:
        params.append(("all", "1"))
    data = client_of(ctx).call("GET", "/instances", params=params)
    if quiet and not json_mode(ctx):
        for i in data["instances"]:
            click.echo(i["id"])
        return
    cols = INSTANCE_COLUMNS + (["owner"] if all_accounts else [])
    emit(ctx, data, cols, key="instances", empty="no instances: `pocketcloud instances run tiny` launches one")


@instances.command("show")
@click.argument("instance", shell_complete=complete_instance)
@click.pass_context
def instances_show(ctx, instance):
    """Describe one instance (by id or name)."""
    detail(ctx, client_of(ctx).call("GET", f"/instances/{resolve_instance(ctx, instance)}"), INSTANCE_FIELDS)


@instances.command("types")
@click.pass_context
def instances_types(ctx):
    """List the instance types (EC2 names, enforced as cgroup limits or VM sizes)."""
    emit(ctx, client_of(ctx).call("GET", "/instance-types"), ["name", "vcpus", "memory"], key="instance_types")


def _action(method: str, path: str, doc: str, wait_for: str | None, doing: str) -> click.Command:
    """A command that applies one REST call to each instance given (ids or names), and
    reports each failure once."""
    @click.argument("instances", nargs=-1, required=True, shell_complete=complete_instance)
    @click.option("--wait/--no-wait", default=False, help=f"wait until {wait_for}" if wait_for else "no effect")
    @click.option("--timeout", default=600, show_default=True, help="seconds --wait waits")
    @click.pass_context
    def cmd(ctx, instances, wait, timeout):
        c = client_of(ctx)
        out, failed = [], []
        for ref in instances:
            try:
                iid = resolve_instance(ctx, ref)
                inst = call_with_progress(ctx, c, iid, doing, method, path.format(id=iid))
                if wait and wait_for:
                    inst = wait_for_state(ctx, c, inst, wait_for, timeout)
                out.append(inst)
            except ApiError as e:  # keep going with the others; the exit code says one failed
                report(output_of(ctx), e)
                failed.append(e)
        if json_mode(ctx):
            if out:
                print_json(out[0] if len(instances) == 1 else {"instances": out})
        else:
            table(out, ["id", "name", "previous_state", "state"])
        if failed:
            sys.exit(max(exit_code_for(e) for e in failed))

    cmd.__doc__ = doc
    return cmd


instances.command("start")(_action("POST", "/instances/{id}/start", "Start stopped instances (ids or names).",
                                   "running", "starting"))
instances.command("stop")(_action("POST", "/instances/{id}/stop", "Stop running instances (ids or names).",
                                  "stopped", "stopping"))
instances.command("reboot")(_action("POST", "/instances/{id}/reboot", "Reboot running instances (ids or names).",
                                    None, "rebooting"))
instances.command("rm")(_action("DELETE", "/instances/{id}",
                                "Terminate instances, ids or names (their disks go too).", None, "terminating"))


@instances.command("console")
@click.argument("instance", shell_complete=complete_instance)
@click.option("--tail", default=1000, show_default=True, help="last N lines")
@click.option("--follow", "-f", is_flag=True, help="keep printing new output (Ctrl-C to stop)")
@click.pass_context
def instances_console(ctx, instance, tail, follow):
    """Print the instance's console (boot) log."""
    c = client_of(ctx)
    instance_id = resolve_instance(ctx, instance)
    text = c.call("GET", f"/instances/{instance_id}/console", params={"tail": tail})
    if json_mode(ctx):
        return print_json({"instance_id": instance_id, "output": text})
    click.echo(text, nl=False)
    try:
        while follow:
            time.sleep(1)
            new = c.call("GET", f"/instances/{instance_id}/console", params={"tail": tail})
            if new.startswith(text):
                click.echo(new[len(text):], nl=False)
            else:  # the tail window moved: print the lines we have not seen
                seen = set(text.splitlines()[-50:])
                click.echo("".join(line + "\n" for line in new.splitlines()[-50:] if line not in seen), nl=False)
            text = new
    except KeyboardInterrupt:
        pass


@instances.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("instance", shell_complete=complete_instance)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", default=60, show_default=True, help="seconds (1-600)")
@click.pass_context
def instances_exec(ctx, instance, command, timeout):
    """Run COMMAND in the instance; exits with the command's exit code.

    \b
    pocketcloud instances exec web uname -r
    pocketcloud instances exec web -- sh -c 'ps; cat /proc/1/cmdline'
    Quote a script as ONE argument: unquoted, your shell splits it at ; | && and
    runs the rest here, on your machine.
    """
    warning = split_warning(list(command))
    if warning:
        note(ctx, f"warning: {warning}")
    res = client_of(ctx).call("POST", f"/instances/{resolve_instance(ctx, instance)}/exec",
                              json={"command": list(command), "timeout": timeout})
    if json_mode(ctx):
        print_json(res)
    else:
        click.echo(res["stdout"], nl=False)
        click.echo(res["stderr"], nl=False, err=True)
        if res.get("truncated"):
            note(ctx, "note: the output passed the server's cap (1 MiB a stream by default) and was cut")
    sys.exit(res["exit_code"])


SHELLS = {"sh", "bash", "ash", "dash", "zsh", "ksh", "busybox"}
SIMPLE_WORD = re.compile(r"[\w./=:-]+")


def split_warning(command: list[str]) -> str | None:
    """What looks like a script your shell split before pocketcloud saw it, said plainly.

    `exec web -- sh -c ps; cat /proc/1/cmdline` reaches us as [sh, -c, ps]: the `cat`
    already ran on this machine. `sh -c echo hi` runs `echo` with $0=hi. Both are
    almost always a missing pair of quotes."""
    if len(command) < 3 or os.path.basename(command[0]) not in SHELLS or command[1] != "-c":
        return None
    shell, script, rest = command[0], command[2], command[3:]
    if rest:
        return (f"`{shell} -c` runs only the one argument after -c ({script!r}); {shlex.join(rest)} became its "
                f"$0... Quote the whole script: -- {shell} -c {shlex.quote(shlex.join(command[2:]))}")
    if SIMPLE_WORD.fullmatch(script):
        return (f"`{shell} -c {script}` runs just {script!r}. If you typed more after a ; | or &&, your shell "
                f"ran that part here, on this machine, not in the instance. Quote the whole script: "
                f"-- {shell} -c '{script}; ...'")
    return None


@instances.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("instance", shell_complete=complete_instance)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--identity", "-i", type=click.Path(dir_okay=False, path_type=Path),
              help="private key file (default: the one `keys create` saved for the instance's key pair)")
@click.option("--user", "-l", help="login user (default: the image's ssh_user, else root)")
@click.option("--print", "print_only", is_flag=True, help="print the ssh command instead of running it")
@click.pass_context
def instances_ssh(ctx, instance, command, identity, user, print_only):
    """SSH into an instance through its 127.0.0.1 forward of guest port 22.

    A VM gets that forward by itself; launch it with `--key NAME` so it has your public
    key (a container needs `--port 22` too, and an image with an SSH server).
    """
    c = client_of(ctx)
    instance_id = resolve_instance(ctx, instance)
    inst = c.call("GET", f"/instances/{instance_id}")
    fwd = next((p for p in inst.get("ports", []) if p.get("guest") == 22), None)
    if fwd is None:
        raise LocalError(f"instance {instance_id} has no forward for guest port 22; launch one with "
                         "`pocketcloud instances run IMAGE --port 22 --key NAME`")
    if inst["state"] != "running":
        raise ApiError(409, "IncorrectInstanceState", f"instance {instance_id} is {inst['state']}, not running")
    if identity is None:
        if not inst.get("key_name"):
            raise LocalError(f"instance {instance_id} was launched without a key pair; pass --identity FILE "
                             "or launch with --key NAME")
        identity = keys_dir(ctx) / f"{inst['key_name']}.pem"
        if not identity.exists():
            raise LocalError(f"no private key for key pair {inst['key_name']!r} at {identity}; pass --identity FILE")
    elif not identity.exists():
        raise LocalError(f"identity file {identity} does not exist")
    if user is None:
        user = _ssh_user(c, inst)
    host = fwd.get("host_ip") or "127.0.0.1"
    if host in ("127.0.0.1", "0.0.0.0") and c.host not in ("127.0.0.1", "localhost", "::1"):
        note(ctx, f"note: the forward listens on {host} of the server host {c.host}; "
                  "from another machine, tunnel to it (ssh -L) first")
    argv = ["ssh", "-i", str(identity), "-p", str(fwd["host"]), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            f"{user}@{host}", *command]
    if print_only:
        if json_mode(ctx):
            return print_json({"argv": argv, "host": host, "port": fwd["host"], "user": user,
                               "identity": str(identity)})
        return click.echo(shlex.join(argv))
    ssh = shutil.which("ssh")
    if ssh is None:
        raise LocalError("no `ssh` on PATH: install openssh-client")
    sys.stdout.flush()
    os.execv(ssh, argv)


def _ssh_user(c: Client, inst: dict) -> str:
    """The image's login user for the instance's kind, else root."""
    try:
        img = next((i for i in c.call("GET", "/images")["images"] if i["name"] == inst["image"]), None)
    except ApiError:
        return "root"
    return ((img or {}).get("kinds", {}).get(inst["kind"]) or {}).get("ssh_user") or "root"
