"""Driving Terraform from the compat tests: where the provider mirror is, what to install
when it is not, one working directory with timings, and the environment a user has after
`eval "$(pocketcloud env)"`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROVIDER = ("registry.terraform.io", "hashicorp", "aws", "5.100.0")
MIRRORS = ["/opt/tf-plugins", "/usr/local/share/terraform/plugins", "/usr/share/terraform/plugins",
           str(Path.home() / ".terraform.d" / "plugins")]
INSTALL = """\
Terraform and the hashicorp/aws provider are needed by the compat suite (make compat):
  1. terraform 1.11 on PATH, e.g.
       curl -fsSLo /tmp/tf.zip https://releases.hashicorp.com/terraform/1.11.4/terraform_1.11.4_linux_amd64.zip
       unzip -o /tmp/tf.zip -d /usr/local/bin terraform
  2. the provider hashicorp/aws 5.100.0 in a filesystem mirror (one download from the
     Terraform registry, then offline), from the repository's root:
       (cd tests/compat/terraform/ec2_s3 && terraform providers mirror -platform=linux_amd64 /opt/tf-plugins)
     or point POCKETCLOUD_TF_MIRROR at a mirror that has
     registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws_v5.100.0_x5
     (unpacked) or registry.terraform.io/hashicorp/aws/terraform-provider-aws_5.100.0_linux_amd64.zip (packed)."""


def mirrors() -> list[str]:
    """Where to look: only POCKETCLOUD_TF_MIRROR when it is set (a user who names a mirror
    means that one), else the usual places."""
    named = os.environ.get("POCKETCLOUD_TF_MIRROR")
    return [named] if named else MIRRORS


def find_mirror() -> Path | None:
    host, ns, name, version = PROVIDER
    for root in mirrors():
        base = Path(root) / host / ns / name
        if list(base.glob(f"{version}/linux_amd64/terraform-provider-{name}_v{version}*")) or \
                (base / f"terraform-provider-{name}_{version}_linux_amd64.zip").exists():
            return Path(root)
    return None


@dataclass
class Terraform:
    """One working directory (a copy of a stack) driven with terraform, with timings."""

    bin: str
    workdir: Path
    env: dict
    times: dict[str, float] = field(default_factory=dict)

    def run(self, *args: str, ok: tuple[int, ...] = (0,), timeout: int = 900, label: str | None = None):
        started = time.monotonic()
        proc = subprocess.run([self.bin, *args, "-no-color"], cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if label:
            self.times[label] = round(time.monotonic() - started, 1)
        assert proc.returncode in ok, f"terraform {' '.join(args)} exited {proc.returncode}:\n" \
                                      f"{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
        return proc

    def outputs(self) -> dict:
        return {k: v["value"] for k, v in json.loads(self.run("output", "-json").stdout).items()}

    def state_id(self, address: str) -> str:
        for line in self.run("state", "show", address).stdout.splitlines():
            parts = line.split("=", 1)
            if len(parts) == 2 and parts[0].strip() == "id":
                return parts[1].strip().strip('"')
        raise AssertionError(f"no id for {address} in the state")


def terraform_env(pocketcloud_env: str, workdir: Path, mirror: Path) -> dict:
    """The environment a user has after `eval "$(pocketcloud env)"`, plus a CLI config that
    installs the provider from the local mirror (no network)."""
    rc = workdir / "terraformrc"
    rc.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    for line in pocketcloud_env.splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            env[k] = v
    env.update(TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1",
               TF_DATA_DIR=str(workdir / ".terraform"), HOME=str(workdir))
    return env


def stack_for(server, user, terraform_bin: str, mirror: Path, stack: Path, work: Path, tfvars: dict) -> Terraform:
    """STACK copied to WORK with its variables, run as USER (their own keys, the rest of the
    environment as `eval "$(pocketcloud env)"` leaves it)."""
    shutil.copytree(stack, work)
    (work / "terraform.tfvars.json").write_text(json.dumps(tfvars))
    env = terraform_env(server.cli("env").stdout, work, mirror)
    env.update(AWS_ACCESS_KEY_ID=user.key_id, AWS_SECRET_ACCESS_KEY=user.secret)
    return Terraform(terraform_bin, work, env)
