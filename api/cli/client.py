"""A small HTTP client for the REST API, used by the CLI (it never reads the database).

It imports nothing heavy from emulator/ (no cryptography, no SQLite): the CLI starts on
every keystroke of a shell loop, so its start-up time is part of the user experience.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from emulator.config import Config

if TYPE_CHECKING:
    import requests


class ApiError(Exception):
    """An error the server answered (status >= 400), or status 0 when no answer came at all."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str
    source: str


def read_credentials_file(path: Path) -> tuple[str, str]:
    """The `[pocketcloud]` file the server writes on first start (same format as ~/.aws/credentials)."""
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            values[k.strip()] = v.strip()
    return values["aws_access_key_id"], values["aws_secret_access_key"]


def find_credentials(config: Config) -> Credentials:
    key, secret = config.aws_access_key_id, config.aws_secret_access_key
    if key and secret:
        return Credentials(key, secret, "environment (AWS_ACCESS_KEY_ID)")
    path = Path(config.credentials_path)
    if not path.exists():
        raise ApiError(0, "NoCredentials",
                       f"no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or start the server once "
                       f"(`make up`) to create {path}, then `eval \"$(pocketcloud env)\"`")
    try:
        key, secret = read_credentials_file(path)
    except (OSError, KeyError) as e:
        raise ApiError(0, "NoCredentials", f"cannot read {path} ({e}); set AWS_ACCESS_KEY_ID and "
                                           "AWS_SECRET_ACCESS_KEY instead") from None
    return Credentials(key, secret, str(path))


def endpoint_of(config: Config) -> str:
    """POCKETCLOUD_ENDPOINT, else AWS_ENDPOINT_URL, else the local server's address."""
    return (config.api_endpoint or config.endpoint_url).rstrip("/")


class Client:
    def __init__(self, endpoint: str, key_id: str, secret: str, timeout: float = 900):
        import requests  # here, not at the top: `env`, `completion` and `--help` never need it

        self.endpoint = endpoint.rstrip("/")
        self.key_id, self.secret = key_id, secret
        self.session = requests.Session()
        self.session.auth = (key_id, secret)
        self.session.trust_env = False  # never send loopback traffic through an HTTP proxy from the env
        self.timeout = timeout

    @classmethod
    def from_env(cls, config: Config) -> "Client":
        creds = find_credentials(config)
        return cls(endpoint_of(config), creds.key_id, creds.secret)

    @property
    def host(self) -> str:
        return urlparse(self.endpoint).hostname or "127.0.0.1"

    def request(self, method: str, path: str, timeout: float | None = None, **kwargs) -> "requests.Response":
        """The raw response (for streaming); errors raised as ApiError like call()."""
        import requests

        url = f"{self.endpoint}/api/v1{path}"
        try:
            r = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectionError:
            raise ApiError(0, "Unreachable", f"cannot reach pocketcloud at {self.endpoint}: start it with `make up` "
                                             "or `pocketcloud serve`, or point POCKETCLOUD_ENDPOINT at it") from None
        except requests.Timeout:
            raise ApiError(0, "Timeout", f"{method} {url} took longer than {timeout or self.timeout}s") from None
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                code, message = err["code"], err["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "HTTPError", f"HTTP {r.status_code}: {r.text[:200]}"
            finally:
                r.close()
            raise ApiError(r.status_code, code, message)
        return r

    def call(self, method: str, path: str, timeout: float | None = None, **kwargs):
        r = self.request(method, path, timeout=timeout, **kwargs)
        if r.status_code == 204:
            return None
        ctype = r.headers.get("Content-Type", "")
        return r.json() if ctype.startswith("application/json") else r.text
