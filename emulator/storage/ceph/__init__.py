"""Ceph as pocketcloud's S3 engine: a one-host cluster (mon, mgr, three BlueStore OSDs on
files, RGW) bootstrapped from Debian's packages under the home and supervised."""
from .cluster import CephCluster
from .layout import PACKAGES, missing_packages

__all__ = ["CephCluster", "PACKAGES", "missing_packages"]
