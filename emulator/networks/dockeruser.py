"""The one place pocketcloud writes iptables rules: Docker's DOCKER-USER chain.

Why: Docker (20.10, iptables-nft backend) sets the `ip filter` FORWARD policy to DROP and
drops traffic between two of its bridges in DOCKER-ISOLATION-STAGE-2. A drop in one
nftables table is final whatever another table accepts, so two subnets of one VPC (two
Docker networks) could never talk, and a bridge without a Docker network could not forward
at all. DOCKER-USER is the chain Docker reserves for its users and evaluates first.

What: one chain per cloud, `PC-<label>`, jumped to from DOCKER-USER, accepting everything
that enters or leaves this cloud's bridges. That hands the decision to the cloud's own
`inet pc-<label>` table (rules.py), which drops what the security groups and tenant
isolation forbid. The chain is rewritten in one `iptables-restore --noflush` transaction.
We never touch Docker's own chains, and the rules are written through iptables (not nft)
so that Docker's iptables calls keep understanding the table.
"""
from __future__ import annotations

from . import host, model

DOCKER_USER = "DOCKER-USER"


def chain_name(label: str) -> str:
    return f"PC-{label}"  # iptables allows 28 characters; labels are at most 24


def available() -> bool:
    return host.run(["iptables", "-w", "-n", "-L", DOCKER_USER], check=False).returncode == 0


def sync(label: str, bridges: list[str]) -> bool:
    model.label(label)
    """Makes PC-<label> accept exactly these bridges' traffic. False when Docker's chain is absent
    (no dockerd has run on this host yet): then nothing overrides pocketcloud's table anyway."""
    if not available():
        return False
    chain = chain_name(label)
    lines = ["*filter", f":{chain} - [0:0]"]  # declaring an existing chain with --noflush empties it
    note = f'-m comment --comment "pocketcloud {label}: decided by table inet pc-{label}"'
    for br in sorted(bridges):
        host.ifname(br, "bridge")  # validated: these lines are parsed by iptables-restore
        lines += [f"-A {chain} -i {br} {note} -j ACCEPT", f"-A {chain} -o {br} {note} -j ACCEPT"]
    lines.append("COMMIT\n")
    host.run(["iptables-restore", "-w", "--noflush"], input="\n".join(lines))
    if host.run(["iptables", "-w", "-C", DOCKER_USER, "-j", chain], check=False).returncode != 0:
        host.run(["iptables", "-w", "-I", DOCKER_USER, "1", "-j", chain])
    return True


def remove(label: str) -> None:
    chain = chain_name(label)
    for _ in range(10):  # a jump inserted twice (two racing servers) is removed twice
        if host.run(["iptables", "-w", "-D", DOCKER_USER, "-j", chain], check=False).returncode != 0:
            break
    if host.run(["iptables", "-w", "-n", "-L", chain], check=False).returncode == 0:
        host.run(["iptables", "-w", "-F", chain])
        host.run(["iptables", "-w", "-X", chain])


def rules(label: str) -> list[str]:
    """The chain as `iptables -S` prints it (for internals and tests); [] when absent."""
    proc = host.run(["iptables", "-w", "-S", chain_name(label)], check=False)
    return proc.stdout.splitlines() if proc.returncode == 0 else []
