"""Suites that drive pocketcloud with outside tools (Terraform with the official AWS provider,
boto3 and the aws CLI beyond the basics; later pandas/s3fs, pyarrow, rclone) against a real
server: `make compat`, run by .ci/run after `make test`."""
