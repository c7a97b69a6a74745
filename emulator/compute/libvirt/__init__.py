"""Virtual machines through libvirtd (QEMU, under KVM when it really works, else TCG).

One module per concern:
  conn       the libvirt connection and the one translation of libvirt errors
  probe      KVM or TCG, proven by a probe guest and cached
  network    the NAT network and the static DHCP reservations
  domain     domain/network XML built and read by pure functions
  image      a VM image directory (vm.json) and the checks a launch needs
  guest      seed ISO, management key, commands over SSH, readiness
  internals  what runs behind a VM, read live from libvirt and /proc
  driver     LibvirtDriver, the Driver protocol over the parts above
"""
from .domain import NS, mac_for
from .driver import LibvirtDriver

__all__ = ["LibvirtDriver", "NS", "mac_for"]
