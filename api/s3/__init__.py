"""S3 gateway: SigV4 check, ownership/policy check, streaming proxy to the storage engine."""
from .gateway import S3Gateway, create_s3_app

__all__ = ["S3Gateway", "create_s3_app"]
