"""Object storage. `Storage` (service.py) is the only way to the S3 engine: front ends call
its methods and get back data, `Bucket`s or the engine's `Reply`.

Inside: the engine's lifecycle (backend.py), the client that talks to it with the root
credentials (client.py), every engine call (engine.py), bucket records (buckets.py),
access rules (policy.py), the size index (index.py), quotas (quotas.py) and the object
and multipart operations (objects.py).
"""
from .backend import Backend, Choice, choose
from .buckets import Bucket, validate_bucket_name, validate_key
from .engine import S3_NS, Reply
from .policy import PERMISSIONS, canned_access
from .service import BucketAcl, Storage

__all__ = ["Backend", "Bucket", "BucketAcl", "Choice", "PERMISSIONS", "Reply", "S3_NS", "Storage", "canned_access",
           "choose", "validate_bucket_name", "validate_key"]
