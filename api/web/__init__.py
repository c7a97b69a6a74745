"""The web console at /ui, on a port of its own (an origin user content never shares):
server-rendered pages over the same `emulator.services` calls as the REST API, with the same
ownership rules (another account's resource is a 404 page).

Sign-in is with an access key id and secret, checked by `accounts.authenticate`. The
session cookie (signed, HttpOnly, SameSite=Lax, path /ui) holds the account id, the key id
and an HMAC of the secret, never the secret: every request re-checks that the key still
exists, is Active, its account enabled and its secret unchanged (guard.py). Every POST
carries a CSRF token bound to the session.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # flask is imported by the server only: the CLI imports web.layers
    from flask import Flask


def session_key(cloud) -> bytes:
    """A key for signing session cookies, derived from the cloud's master key (so sessions
    survive a restart, and nothing new has to be stored)."""
    path = cloud.config.secret_key_path
    master = path.read_bytes().strip() if path.exists() else b""
    return hmac.new(master, b"pocketcloud web session v1", hashlib.sha256).digest()


def register(app: "Flask") -> None:
    """Register the console (/ui) and the admin REST endpoints it and the CLI use."""
    from ..admin_rest import bp as admin_bp
    from . import groups  # noqa: F401 - the Auto Scaling pages join the console's blueprint (issue 16)
    from . import tour_views  # noqa: F401 - its routes join the console's blueprint
    from . import volumes  # noqa: F401 - the volume pages join the console's blueprint (issue 15)
    from .views import bp

    cloud = app.config["CLOUD"]
    app.secret_key = session_key(cloud)
    app.config.update(
        SESSION_COOKIE_NAME="pocketcloud_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/ui",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    from .credentials import bp as credentials_bp  # access keys, account disable

    app.register_blueprint(admin_bp)
    app.register_blueprint(bp)
    app.register_blueprint(credentials_bp)
    from .billing import register as register_billing  # billing hook: /ui/billing and the alert banner
    register_billing(app)
