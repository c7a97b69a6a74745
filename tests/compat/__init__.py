"""Suites that drive pocketcloud with outside tools (Terraform, pandas/s3fs, pyarrow, rclone)
against a real server: `make compat`, run by .ci/run after `make test`. Empty until the
first such suite lands; an empty suite passes (pytest exit 5 is handled in the Makefile)."""
