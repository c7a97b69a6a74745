"""Serve the app with gunicorn (threads in one worker: state and supervisors live in one process)."""
from __future__ import annotations

import logging
import sys

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from emulator.config import Config

from . import redact

log = logging.getLogger("pocketcloud")


class RedactingLogger(GunicornLogger):
    """gunicorn's access and error logs, with signatures and secrets masked (api/redact.py)."""

    def setup(self, cfg):
        super().setup(cfg)
        redact.install(self.error_log, self.access_log)


class _Gunicorn(BaseApplication):
    def __init__(self, config: Config, threads: int):
        self.pc_config = config
        self.threads = threads
        super().__init__()

    def load_config(self):
        # Two listeners, one process: the API (and the user content S3 serves) and the console.
        self.cfg.set("bind", [f"{self.pc_config.host}:{self.pc_config.port}",
                              f"{self.pc_config.host}:{self.pc_config.console_listen_port}"])
        self.cfg.set("logger_class", RedactingLogger)
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.threads)
        # VM operations can take minutes under TCG; the worker must not be killed meanwhile.
        self.cfg.set("timeout", 900)
        self.cfg.set("graceful_timeout", 15)
        self.cfg.set("keepalive", 5)
        self.cfg.set("accesslog", "-")
        self.cfg.set("access_log_format", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms')
        self.cfg.set("errorlog", "-")
        self.cfg.set("loglevel", "info")
        self.cfg.set("proc_name", "pocketcloud")
        self.cfg.set("control_socket_disable", True)

    def load(self):
        from . import create_app

        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
        redact.install(logging.getLogger())
        return create_app(self.pc_config, background=True)


def serve(config: Config, threads: int = 32) -> None:
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"WARNING: pocketcloud is listening on {config.host}:{config.port}, reachable from other machines, "
            "over plain HTTP. Anyone on the network can try your keys. Put TLS in front or bind 127.0.0.1.",
            file=sys.stderr,
        )
    _Gunicorn(config, threads).run()
