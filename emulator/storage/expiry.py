"""The lifecycle pass: what buckets' lifecycle rules (lifecycle.py) make due is done here, in
the server's background, the same on every engine.

Each pass walks the buckets that have rules: current objects whose expiry has come are
deleted from the engine (where the engine keeps versions, that leaves a delete marker, as
S3's expiration of a current version does) and from the index; unfinished multipart
uploads past DaysAfterInitiation are aborted. S3 runs this about once a day; here every
`interval` seconds, with a `day` that a class (or a test) may shorten.
"""
from __future__ import annotations

import logging
import threading
import time

from ..errors import CloudError
from . import lifecycle

log = logging.getLogger("pocketcloud.storage.lifecycle")
BATCH = 1000


class LifecycleWorker:
    def __init__(self, storage, *, interval: float, day: float):
        self.storage = storage
        self.interval = interval
        self.day = day
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> dict:
        """One pass over every bucket with rules: {'expired': n, 'aborted': n}."""
        now = time.time() if now is None else now
        done = {"expired": 0, "aborted": 0}
        for name, rules in self.storage.settings.buckets_with("lifecycle"):
            try:
                done["expired"] += self._expire(name, rules, now)
                done["aborted"] += self._abort(name, rules, now)
            except CloudError as exc:  # one bucket's trouble (engine down, bucket going) must not stop the rest
                log.warning("lifecycle pass over %s: %s", name, exc)
        return done

    def _expire(self, name: str, rules: list[dict], now: float) -> int:
        rules = [r for r in rules if r.get("Status") == "Enabled" and r.get("Expiration")]
        if not rules:
            return 0
        attrs = self.storage.settings.objects_attrs(name)
        due = []
        for key, size, written in self.storage.index.objects_in(name):
            tags = attrs[key].tags if key in attrs else []
            for rule in rules:
                when = lifecycle.expires_at(rule, written, self.day)
                if when is not None and when <= now and lifecycle.applies(rule, key, size, tags):
                    due.append(key)
                    break
        for i in range(0, len(due), BATCH):
            batch = due[i:i + BATCH]
            with self.storage.in_doubt.writing(name, batch):
                reply, gone = self.storage.engine.delete_many(name, [(k, None) for k in batch], quiet=True)
                reply.raise_for_status(f"expiring objects of {name}")
                self.storage.index.forget_objects(name, [k for k, _ in gone])
                self.storage.in_doubt.known(name, [k for k, _ in gone])
            log.info("lifecycle: expired %d object(s) of %s: %s", len(gone), name,
                     ", ".join(k for k, _ in gone[:5]) + (" ..." if len(gone) > 5 else ""))
        return len(due)

    def _abort(self, name: str, rules: list[dict], now: float) -> int:
        rules = [r for r in rules if r.get("Status") == "Enabled" and r.get("AbortIncompleteMultipartUpload")]
        aborted = 0
        for upload in self.storage.index.uploads(name) if rules else ():
            if any(lifecycle.applies(r, upload.key) and lifecycle.abort_at(r, upload.created_at, self.day) <= now
                   for r in rules):
                reply = self.storage.engine.abort(name, upload.key, upload.upload_id)
                if reply.status in (200, 204, 404):
                    self.storage.index.forget_upload(upload.upload_id)
                    aborted += 1
                    log.info("lifecycle: aborted upload %s of %s/%s", upload.upload_id, name, upload.key)
        return aborted

    # -- in the background --------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        def loop():
            while not self._stop.wait(self.interval):
                try:
                    done = self.run_once()
                    if any(done.values()):
                        log.info("lifecycle pass: %s", done)
                except Exception:  # the loop must outlive any one failure
                    log.exception("lifecycle pass failed")

        self._thread = threading.Thread(target=loop, name="s3-lifecycle", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
