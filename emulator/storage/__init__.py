"""Object storage: the S3 engine behind the cloud (backend.py), the client that talks to it
with the root credentials (client.py), SigV4 primitives (signing.py) and the service that
owns buckets, sharing, usage and quotas (service.py)."""
from .backend import Backend, Choice, choose
from .service import Bucket, Storage, validate_bucket_name

__all__ = ["Backend", "Bucket", "Choice", "Storage", "choose", "validate_bucket_name"]
