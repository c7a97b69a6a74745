"""Front ends over emulator/: one WSGI app served on two listeners.

The API port: /api/v1 -> JSON REST; SigV4 scope `ec2` -> EC2 Query API, `sts` -> STS and
`autoscaling` -> Auto Scaling (Query); `ce` and `budgets` -> Cost Explorer and Budgets (AWS
JSON 1.1); everything else (signed for s3, or unsigned) -> S3 gateway, which serves user
content. The console port: /ui only. The
console has an origin of its own so that a page a user uploads to a bucket can never read
or drive the console of an admin who opens it; /ui on the API port only redirects there.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

# Flask, the engines' clients and the services are imported where the server is built,
# not here: the CLI imports this package too and should start fast.
if TYPE_CHECKING:
    from flask import Flask

    from emulator.config import Config
    from emulator.services import Cloud


class PocketCloudApp:
    """The WSGI callable served on the one port."""

    def __init__(self, cloud: "Cloud", flask_app: "Flask", protocols: dict):
        self.cloud = cloud
        self.flask = flask_app
        self.protocols = protocols
        self.s3_domains = tuple(getattr(cloud.config, "s3_domains", ()) or ())
        self.console_port = cloud.config.console_listen_port

    def __call__(self, environ, start_response):
        from .routing import console_redirect, is_console_path, listener_port, protocol_of

        path = environ.get("PATH_INFO", "/")
        if listener_port(environ) == self.console_port:
            if is_console_path(path):
                return self.flask(environ, start_response)
            return console_redirect(environ, start_response, None)
        if is_console_path(path):
            config = self.cloud.config
            return console_redirect(environ, start_response, (config.host, self.console_port))
        proto = protocol_of(environ, self.s3_domains)
        if proto == "web":
            return self.flask(environ, start_response)
        app = self.protocols.get(proto)
        if app is None:
            from . import unserved

            if unserved.shape_of(environ):  # another AWS service's Query or JSON request: say so in its shape
                return unserved.app_for(proto)(environ, start_response)
            app = self.protocols["s3"]
        if app is self.protocols["s3"]:
            start_response = _nosniff(start_response)
        return app(environ, start_response)


def _nosniff(start_response):
    """User content is served as its declared type, never sniffed into HTML or script."""
    def start(status, headers, exc_info=None):
        if not any(k.lower() == "x-content-type-options" for k, _ in headers):
            headers = [*headers, ("X-Content-Type-Options", "nosniff")]
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    return start


def create_app(config: "Config | None" = None, cloud: "Cloud | None" = None,
               background: bool = False) -> PocketCloudApp:
    from flask import Flask

    from emulator.autoscaling import AutoScaling
    from emulator.autoscaling.placement import VpcPlacement
    from emulator.config import Config
    from emulator.reconcile import start_background
    from emulator.services import Cloud

    from . import (limits, openapi, rest_access_keys, rest_billing, rest_buckets, rest_groups, rest_storage,
                   rest_volumes, rest_vpcs)
    from .autoscaling import create_autoscaling_app
    from .budgets import create_budgets_app
    from .ce import create_ce_app
    from .ec2 import create_ec2_app
    from .errors import register_flask_handlers
    from .rest import bp as rest_bp
    from .s3 import create_s3_app
    from .sts import create_sts_app
    from .sts.iam import create_iam_app
    from .web import register as register_web
    from .web.views import error_page

    config = config or Config()
    cloud = cloud or Cloud(config)
    cloud.bootstrap()
    flask_app = Flask("pocketcloud")
    flask_app.config.update(CLOUD=cloud, JSON_SORT_KEYS=False)
    flask_app.json.sort_keys = False
    limits.install(flask_app, config)
    flask_app.register_blueprint(rest_bp)
    flask_app.register_blueprint(rest_buckets.bp)
    flask_app.register_blueprint(rest_access_keys.bp)
    flask_app.register_blueprint(openapi.bp)
    flask_app.register_blueprint(rest_billing.bp)
    flask_app.register_blueprint(rest_storage.bp)
    flask_app.register_blueprint(rest_volumes.bp)
    flask_app.register_blueprint(rest_vpcs.bp)
    register_web(flask_app)  # console at /ui, admin REST (PATCH /accounts/<name>)
    register_flask_handlers(flask_app, console_page=error_page)
    autoscaling = flask_app.config["AUTOSCALING"] = AutoScaling(cloud, VpcPlacement(cloud.vpcs, cloud.config.region))
    flask_app.register_blueprint(rest_groups.bp)
    app = PocketCloudApp(cloud, flask_app, {"ec2": create_ec2_app(cloud), "s3": create_s3_app(cloud),
                                            "sts": create_sts_app(cloud), "iam": create_iam_app(cloud),
                                            "ce": create_ce_app(cloud), "budgets": create_budgets_app(cloud),
                                            "autoscaling": create_autoscaling_app(cloud, autoscaling)})
    if background:
        start_background(cloud)
        autoscaling.start()  # the healer: groups kept at their desired capacity (issue 16)
    return app
