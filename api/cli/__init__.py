"""The `pocketcloud` command.

Everything except `serve`, `env` and `images build` talks to the server over HTTP with the
same credentials a curl user has (env AWS_* or the credentials file), so it works against a
remote pocketcloud too; it never reads the database.

Exit codes scripts can trust:
  0  success
  1  the cloud answered with an error (the message says what to do next)
  2  usage error, no credentials, or the server is unreachable
`instances exec` and `instances ssh` exit with the remote command's own code.
Tables go to stdout, progress and errors to stderr; `-o json` prints JSON on stdout and,
on failure, `{"error": {...}}` on stderr.

Layout: `root` (the group and global options), one module per command group (`service`:
serve/env/status/completion, `images`, `instances`, `keys`, `accounts`, `buckets`, `labs`:
explain/compare/lab), shared pieces (`context`: config, client, errors and exit codes;
`output`: tables, JSON, detail views; `progress`: spinners and bars; `complete`: live
shell completion), and what the commands drive (`client`: the REST client; `lab`: the lab
drivers). Heavy imports (rich, the services, matplotlib) happen inside the commands that
need them: the CLI starts on every keystroke of a shell loop.
"""
from __future__ import annotations

from .root import main

__all__ = ["main"]
