"""Shell completion of live names (instance ids, images, key pairs) from the server.

Quiet by design: a completion must never print errors into the user's prompt, and never
wait long for a server that is down."""
from __future__ import annotations

from typing import Callable


def _complete(path: str, key: str, *fields: str) -> Callable:
    def complete(ctx, param, incomplete):
        try:
            from emulator.config import Config

            from .client import Client, endpoint_of, find_credentials

            config = Config()
            creds = find_credentials(config)
            c = Client(endpoint_of(config), creds.key_id, creds.secret, timeout=2)
            rows = [r for r in c.call("GET", path)[key] if r.get("state") != "terminated"]
            values = dict.fromkeys(str(r[f]) for r in rows for f in fields if r.get(f))
            return [v for v in values if v.startswith(incomplete)]
        except Exception:  # noqa: BLE001
            return []

    return complete


complete_instance = _complete("/instances", "instances", "id", "name")  # names work wherever ids do
complete_image = _complete("/images", "images", "name")
complete_key = _complete("/keys", "keys", "name")
