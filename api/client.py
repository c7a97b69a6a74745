"""A small HTTP client for the REST API, used by the CLI (it never reads the database)."""
from __future__ import annotations

import os
from pathlib import Path

import requests

from emulator.accounts import read_credentials
from emulator.config import Config


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class Client:
    def __init__(self, endpoint: str, key_id: str, secret: str, timeout: float = 900):
        self.endpoint = endpoint.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (key_id, secret)
        self.timeout = timeout

    @classmethod
    def from_env(cls, config: Config) -> "Client":
        endpoint = os.environ.get("POCKETCLOUD_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or config.endpoint_url
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not (key and secret):
            path = Path(config.credentials_path)
            if not path.exists():
                raise ApiError(0, "NoCredentials", f"no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                                                   f"or start the server once to create {path}")
            creds = read_credentials(path)
            key, secret = creds.key_id, creds.secret
        return cls(endpoint, key, secret)

    def call(self, method: str, path: str, **kwargs):
        try:
            r = self.session.request(method, f"{self.endpoint}/api/v1{path}", timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise ApiError(0, "Unreachable", f"cannot reach pocketcloud at {self.endpoint}: start it with `make up` "
                                             "or `pocketcloud serve`") from None
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                raise ApiError(r.status_code, err["code"], err["message"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(r.status_code, "HTTPError", r.text[:200]) from None
        if r.status_code == 204:
            return None
        ctype = r.headers.get("Content-Type", "")
        return r.json() if ctype.startswith("application/json") else r.text
