"""S3 gateway: SigV4 check, request parsing, one call to the `Storage` facade per operation,
answers rendered or relayed (streamed both ways)."""
from .gateway import S3Gateway, create_s3_app

__all__ = ["S3Gateway", "create_s3_app"]
