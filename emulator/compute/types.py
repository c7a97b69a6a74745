"""EC2 instance type names mapped to the vCPU and memory they are given (and held to)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int

    def to_dict(self) -> dict:
        return {"name": self.name, "vcpus": self.vcpus, "memory_mib": self.memory_mib}


INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in [
        InstanceType("t2.nano", 1, 512),
        InstanceType("t2.micro", 1, 1024),
        InstanceType("t2.small", 1, 2048),
        InstanceType("t2.medium", 2, 4096),
        InstanceType("t2.large", 2, 8192),
        InstanceType("t3.nano", 2, 512),
        InstanceType("t3.micro", 2, 1024),
        InstanceType("t3.small", 2, 2048),
        InstanceType("t3.medium", 2, 4096),
        InstanceType("m5.large", 2, 8192),
        InstanceType("m5.xlarge", 4, 16384),
        InstanceType("c5.large", 2, 4096),
        InstanceType("m5.2xlarge", 8, 32768),
        InstanceType("r5.large", 2, 16384),
        InstanceType("r5.xlarge", 4, 32768),
    ]
}

DEFAULT_TYPE = "t2.micro"
