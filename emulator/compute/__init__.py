"""Compute: the Driver protocol, instance types and the engine drivers."""
