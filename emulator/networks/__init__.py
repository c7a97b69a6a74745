"""VPC networking on one host: bridges, IPAM, DHCP, nftables security groups, the metadata service.

Why this package exists: a personal cloud shared by several accounts must keep tenants
apart the way a public cloud does - one private network per VPC, security groups enforced
in the kernel between instances of both kinds (containers and VMs side by side on a subnet
bridge), forwards from 127.0.0.1 that outlive the server, and an instance metadata
service that knows who is asking. Docker's and libvirt's own networks give none of that.

Shape: the library takes ids and CIDRs as parameters and keeps no database of its own
(the state model in emulator/vpcs.py owns that). The firewall is declarative: callers pass
the whole desired state (`model.Desired`) and `Firewall.apply` makes both nftables tables
match it in one atomic transaction, so every change is idempotent and a restarted server
reconciles by applying once.

Modules (each says why it is built the way it is):
  ipam        pick and validate VPC/subnet CIDRs and instance addresses (pure, plus a host scan)
  model       the desired-state values, validated once (everything that reaches the kernel)
  bridges     one Linux bridge per subnet, the Docker network bound to it, container veths
  lifecycle   subnet create/delete across bridge and Docker with rollback; host checks
  dhcp        dnsmasq per subnet with static reservations, detached and adoptable
  rules       the nftables ruleset (pure): pinning, isolation, groups, NAT, forwards, guard
  firewall    applies a ruleset atomically through `nft -j`, reads counters, re-pins ports
  dockeruser  the DOCKER-USER chain that lets Docker's bridges defer to the cloud's table
  imds        169.254.169.254 as a WSGI app (IMDSv1/v2) plus a small threaded server
"""
from .bridges import container_port, ensure_bridge, ensure_docker_network, remove_bridge, remove_docker_network, tap_name
from .dhcp import Dhcp, Reservation, hostname_for
from .firewall import Firewall
from .imds import MetadataApp, MetadataServer
from .lifecycle import check_host, create_subnet, delete_subnet, prepare_host
from .model import Desired, Forward, Group, Port, Rule, Subnet, Vpc, bridge_name

__all__ = ["Desired", "Dhcp", "Firewall", "Forward", "Group", "MetadataApp", "MetadataServer", "Port",
           "Reservation", "Rule", "Subnet", "Vpc", "bridge_name", "check_host", "container_port", "create_subnet",
           "delete_subnet", "ensure_bridge", "ensure_docker_network", "hostname_for", "prepare_host",
           "remove_bridge", "remove_docker_network", "tap_name"]
