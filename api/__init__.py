"""Front ends over emulator/: one WSGI app on one port, dispatching by protocol.

/api/v1 -> JSON REST; /ui -> dashboard; SigV4 scope `ec2` -> EC2 Query API; `ce` and
`budgets` -> Cost Explorer and Budgets (AWS JSON 1.1); everything else (signed for s3, or
unsigned) -> S3 gateway.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

# Flask, the engines' clients and the services are imported where the server is built,
# not here: the CLI imports this package too and should start fast.
if TYPE_CHECKING:
    from flask import Flask

    from emulator.config import Config
    from emulator.services import Cloud

log = logging.getLogger("pocketcloud")


class PocketCloudApp:
    """The WSGI callable served on the one port."""

    def __init__(self, cloud: "Cloud", flask_app: "Flask", protocols: dict):
        self.cloud = cloud
        self.flask = flask_app
        self.protocols = protocols

    def __call__(self, environ, start_response):
        from .routing import protocol_of

        proto = protocol_of(environ)
        app = self.flask if proto == "web" else self.protocols.get(proto, self.protocols["s3"])
        return app(environ, start_response)


def create_app(config: "Config | None" = None, cloud: "Cloud | None" = None,
               background: bool = False) -> PocketCloudApp:
    from flask import Flask

    from emulator.config import Config
    from emulator.services import Cloud

    from . import rest_billing, rest_buckets, rest_storage
    from .budgets import create_budgets_app
    from .ce import create_ce_app
    from .ec2 import create_ec2_app
    from .errors import register_flask_handlers
    from .rest import bp as rest_bp
    from .s3 import create_s3_app
    from .web import register as register_web
    from .web.views import error_page

    config = config or Config()
    cloud = cloud or Cloud(config)
    cloud.bootstrap()
    flask_app = Flask("pocketcloud")
    flask_app.config.update(CLOUD=cloud, MAX_REST_BODY=config.max_rest_body, JSON_SORT_KEYS=False)
    flask_app.json.sort_keys = False
    flask_app.register_blueprint(rest_bp)
    flask_app.register_blueprint(rest_buckets.bp)
    flask_app.register_blueprint(rest_billing.bp)
    flask_app.register_blueprint(rest_storage.bp)
    register_web(flask_app)  # console at /ui, admin REST (PATCH /accounts/<name>)
    register_flask_handlers(flask_app, console_page=error_page)
    app = PocketCloudApp(cloud, flask_app, {"ec2": create_ec2_app(cloud), "s3": create_s3_app(cloud),
                                            "ce": create_ce_app(cloud), "budgets": create_budgets_app(cloud)})
    if background:
        start_background(cloud)
    return app


def start_background(cloud: "Cloud", interval: float = 5.0) -> threading.Thread:
    """Reconcile once before serving (a restarted server must not answer with stale
    states), then keep records in line with the engines."""
    from emulator.errors import CloudError

    try:
        cloud.storage.start()  # prints which engine serves S3, and why
    except CloudError:
        log.exception("the S3 storage engine did not start; S3 requests will answer ServiceUnavailable")
    try:
        cloud.restore_forwards()
    except Exception:
        log.exception("restoring port forwards failed")
    try:
        log.info("reconcile at start: %s", cloud.reconcile())
    except Exception:
        log.exception("reconcile at start failed; serving recorded states")

    def loop():
        vm = cloud.drivers.get("vm")
        if vm is not None and hasattr(vm, "hypervisor"):
            try:  # settle auto mode (a KVM probe can take a while) before the first VM is asked for
                log.info("hypervisor: %s", vm.hypervisor())
            except Exception:
                log.exception("choosing the hypervisor failed")
        while True:
            threading.Event().wait(interval)
            try:
                changed = {k: v for k, v in cloud.reconcile().items() if v}
                if changed:
                    log.info("reconcile: %s", changed)
            except Exception:  # the loop must survive an engine hiccup
                log.exception("reconcile failed")

    t = threading.Thread(target=loop, name="reconciler", daemon=True)
    t.start()
    cloud.billing.start()  # billing hook: the metering loop, beside the reconciler
    return t
