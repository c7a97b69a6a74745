"""The connection to libvirtd, and the ONE place libvirt (and helper tool) failures become
emulator errors: libvirt.libvirtError never leaves this package."""
from __future__ import annotations

import shlex
import subprocess
import threading
from contextlib import contextmanager
from typing import Iterator

from ...errors import BackendUnavailable, CloudError, EngineError, InvalidState, NotFound

try:  # libvirt-python is a C extension; without it the driver reports itself unavailable.
    import libvirt

    # libvirt prints every error to stderr by default; ours are converted and raised instead.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
except ImportError:  # pragma: no cover - exercised only on hosts without libvirt-python
    libvirt = None


def error_code(e: BaseException) -> int:
    try:
        return e.get_error_code()  # type: ignore[attr-defined]
    except Exception:
        return -1


def is_libvirt_error(e: BaseException, *codes: int) -> bool:
    """True for a libvirtError (with one of `codes`, when given)."""
    if libvirt is None or not isinstance(e, libvirt.libvirtError):
        return False
    return not codes or error_code(e) in codes


@contextmanager
def engine_errors(what: str) -> Iterator[None]:
    try:
        yield
    except CloudError:
        raise
    except Exception as e:
        if is_libvirt_error(e):
            code, text = error_code(e), (e.get_error_message() or str(e))
            if code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK):
                raise NotFound(f"{what}: {text}") from None
            if code == libvirt.VIR_ERR_OPERATION_INVALID:
                raise InvalidState(f"{what}: {text}", code="IncorrectInstanceState") from None
            if code in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN) or (
                code == libvirt.VIR_ERR_SYSTEM_ERROR and "socket" in text
            ):
                raise BackendUnavailable(
                    f"{what}: libvirtd is not reachable ({text})",
                    hint="start it with `bash scripts/engines.sh` (virtlogd -d; libvirtd -d)",
                ) from None
            if code == libvirt.VIR_ERR_OPERATION_TIMEOUT:
                raise EngineError(f"{what}: libvirtd timed out: {text}") from None
            raise EngineError(f"{what}: libvirtd said: {text}") from None
        if isinstance(e, subprocess.CalledProcessError):
            out = (e.stderr or e.stdout or b"")
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            raise EngineError(f"{what}: {shlex.join(map(str, e.cmd))} failed: {out.strip()[-500:]}") from None
        if isinstance(e, FileNotFoundError) and e.filename and "/" not in str(e.filename):
            raise BackendUnavailable(f"{what}: the tool {e.filename} is not installed") from None
        if isinstance(e, OSError):
            raise EngineError(f"{what}: {e}") from None
        raise


class Connection:
    """One libvirt connection per driver, opened on first use and reopened when libvirtd
    restarted under it."""

    def __init__(self, uri: str):
        self.uri = uri
        self._conn = None
        self._lock = threading.Lock()

    def get(self):
        if libvirt is None:
            raise BackendUnavailable("libvirt-python is not installed", hint="pip install libvirt-python")
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                self._conn = None
            with engine_errors(f"connect {self.uri}"):
                self._conn = libvirt.open(self.uri)
            return self._conn

    def drop(self) -> None:
        """Forget the connection (it failed); the next get() opens a new one."""
        self._conn = None

    def lookup(self, name: str):
        """The domain called `name`, or None when libvirt has none."""
        try:
            return self.get().lookupByName(name)
        except Exception as e:
            if is_libvirt_error(e, libvirt.VIR_ERR_NO_DOMAIN):
                return None
            with engine_errors(f"domain {name}"):
                raise
