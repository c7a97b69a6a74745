"""What stands in front of every console page: the session check, CSRF, and the headers.

Every request re-checks the session's key (an Inactive or deleted key, or a disabled account,
ends the session at once). A POST when signed out is refused before its form is read; a
signed-in POST must carry the session's CSRF token and no foreign Origin. Every answer gets a
CSP under which only scripts carrying this response's nonce run: no URL, not even the
console's own, is a script source, so no object a user uploads can ever become one.

The console blueprint registers `load_account` and `security_headers` (views.py); blueprints
beside it (billing, credentials) reuse them.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlparse

from flask import Response, current_app, g, jsonify, redirect, request, session, url_for

from emulator.errors import NotFound, Unauthorized

PUBLIC_ENDPOINTS = {"web.login", "web.static"}
CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def secret_tag(secret: str) -> str:
    """What the session keeps of the secret: an HMAC under the session key, enough to notice
    a changed secret, useless to recover it."""
    return hmac.new(current_app.secret_key, secret.encode(), hashlib.sha256).hexdigest()[:32]


def _cookie_count(name: str) -> int:
    return sum(1 for part in request.headers.get("Cookie", "").split(";") if part.strip().partition("=")[0] == name)


def load_account():
    """g.account from the session (or None); an early answer when the request may not go on."""
    from .views import error_page

    g.account = None
    g.csp_nonce = secrets.token_urlsafe(16)
    if _cookie_count(current_app.config["SESSION_COOKIE_NAME"]) > 1:
        # A second session cookie can only have been planted by a page on another port of
        # this host (cookies ignore ports): trust neither.
        session.clear()
    kid, aid, tag = session.get("kid"), session.get("aid"), session.get("tag")
    if kid and aid and tag:
        try:
            account, secret = current_app.config["CLOUD"].accounts.secret_for(kid)
        except (Unauthorized, NotFound):
            account, secret = None, ""
        if account is not None and account.id == aid and hmac.compare_digest(tag, secret_tag(secret)):
            g.account = account
        else:
            session.clear()
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    if request.method == "POST" and g.account is None and request.endpoint not in PUBLIC_ENDPOINTS:
        # signed out: refused before a byte of the form is read
        return error_page(401, "You are signed out. Sign in and try again.", "AuthFailure")
    if request.method == "POST":
        sent = request.form.get("csrf", "") or request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), session["csrf"].encode()):
            return error_page(400, "This form has expired or did not come from this console (CSRF check failed). "
                                   "Reload the page and try again.")
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlparse(origin).netloc != request.host:
            return error_page(400, "Cross-origin form posts are refused.")
    if g.account is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.path.endswith(".json"):
            return jsonify(error={"code": "AuthFailure", "message": "signed out"}), 401
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    return None


def security_headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", CSP.format(nonce=g.get("csp_nonce", "")))
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if g.get("account") is not None:
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def api_base() -> str:
    """The API's address as this browser reaches the console: same host, the API's port."""
    host = urlparse(request.host_url).hostname or "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{current_app.config['CLOUD'].config.port}"
