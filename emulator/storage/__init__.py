"""Object storage. `Storage` (service.py) is the only way to the S3 engine: front ends call
its methods and get back data, `Bucket`s or the engine's `Reply`.

Inside: the engine's lifecycle (backend.py), the client that talks to it with the root
credentials (client.py), every engine call (engine.py), bucket records (buckets.py) and
their settings (settings.py), access rules (policy.py), the size index (index.py), quotas
(quotas.py); the facade's operations by concern: objects (objects.py), multipart uploads
(multipart.py), access (access.py), tags/CORS/lifecycle/versioning (configuration.py),
and the lifecycle pass (expiry.py).
"""
from .access import BucketAcl
from .backend import Backend, Choice, choose
from .buckets import Bucket, validate_bucket_name, validate_key
from .engine import S3_NS, Reply
from .policy import ALL_USERS, AUTHENTICATED_USERS, CANNED, PERMISSIONS, canned_acl
from .service import Storage
from .settings import ObjectAttrs

__all__ = ["ALL_USERS", "AUTHENTICATED_USERS", "Backend", "Bucket", "BucketAcl", "CANNED", "Choice", "ObjectAttrs",
           "PERMISSIONS", "Reply", "S3_NS", "Storage", "canned_acl", "choose", "validate_bucket_name",
           "validate_key"]
