"""Auto Scaling: groups of identical instances (cattle) kept at their desired capacity.

`AutoScaling(cloud)` is the service; `start()` runs its healer beside the reconcile loop.
"""
from .service import AutoScaling

__all__ = ["AutoScaling"]
