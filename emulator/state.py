"""SQLite store (WAL) with numbered schema migrations.

One connection per thread: sqlite3 connections must not be shared across threads, and
WAL lets readers run while a writer commits.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Each entry moves the schema from version i to i+1. Never edit a released entry; append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
        max_instances INTEGER NOT NULL DEFAULT 20,
        storage_quota INTEGER,
        created_at REAL NOT NULL
    );
    CREATE TABLE access_keys (
        key_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        secret_enc BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        image TEXT NOT NULL,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT NOT NULL DEFAULT '',
        engine_id TEXT,
        ports TEXT NOT NULL DEFAULT '[]',
        user_data TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '{}',
        private_ip TEXT,
        key_name TEXT,
        details TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        terminated_at REAL
    );
    CREATE INDEX instances_owner ON instances(owner, state);
    CREATE TABLE images (
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('container', 'vm')),
        ref TEXT NOT NULL,
        source TEXT NOT NULL,
        recipe_hash TEXT,
        size INTEGER,
        details TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        PRIMARY KEY (name, kind)
    );
    """,
    # 2: object storage — buckets (global names) owned by accounts, grants to other accounts,
    # an index of object sizes (usage and quotas without listing the engine) and multipart parts.
    """
    CREATE TABLE buckets (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id),
        access TEXT NOT NULL DEFAULT 'private' CHECK (access IN ('private', 'public-read')),
        created_at REAL NOT NULL
    );
    CREATE INDEX buckets_owner ON buckets(owner);
    CREATE TABLE bucket_grants (
        bucket TEXT NOT NULL REFERENCES buckets(name) ON DELETE CASCADE,
        grantee TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        level TEXT NOT NULL CHECK (level IN ('read', 'read-write')),
        created_at REAL NOT NULL,
        PRIMARY KEY (bucket, grantee)
    );
    CREATE INDEX bucket_grants_grantee ON bucket_grants(grantee);
    CREATE TABLE objects (
        bucket TEXT NOT NULL REFERENCES buckets(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (bucket, key)
    );
    CREATE TABLE multipart_uploads (
        upload_id TEXT PRIMARY KEY,
        bucket TEXT NOT NULL REFERENCES buckets(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        initiator TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX multipart_uploads_bucket ON multipart_uploads(bucket);
    CREATE TABLE multipart_parts (
        upload_id TEXT NOT NULL REFERENCES multipart_uploads(upload_id) ON DELETE CASCADE,
        part_number INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    )
    """,
    # 3: key pairs and security groups (EC2)
    """
    CREATE TABLE keypairs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        key_type TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (owner, name)
    );
    CREATE TABLE security_groups (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        rules TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        UNIQUE (owner, name)
    );
    """,
    # 4: billing — the simulated billing clock, per-resource high-water marks of the meter, usage
    # rows per billing-clock hour (written in the same transaction as the marks, so a crash never
    # double-counts), instance state changes (written by Cloud._save beside the state itself),
    # the engines' real usage, budgets and their alerts. IF NOT EXISTS: the entry may be renumbered
    # when branches merge.
    """
    CREATE TABLE IF NOT EXISTS billing_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        time_scale REAL NOT NULL,
        origin_real REAL NOT NULL,
        origin_sim REAL NOT NULL,
        started_sim REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS meter_marks (
        kind TEXT NOT NULL,
        resource TEXT NOT NULL,
        account TEXT NOT NULL,
        hwm REAL NOT NULL,
        state TEXT,
        data TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (kind, resource)
    );
    CREATE TABLE IF NOT EXISTS usage (
        account TEXT NOT NULL,
        hour REAL NOT NULL,
        service TEXT NOT NULL,
        usage_type TEXT NOT NULL,
        resource TEXT NOT NULL,
        attrs TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '{}',
        quantity REAL NOT NULL,
        unit TEXT NOT NULL,
        cost REAL NOT NULL,
        PRIMARY KEY (account, hour, usage_type, resource, tags)
    );
    CREATE INDEX IF NOT EXISTS usage_hour ON usage(hour);
    CREATE TABLE IF NOT EXISTS instance_states (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        instance TEXT NOT NULL,
        at REAL NOT NULL,
        state TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS instance_states_instance ON instance_states(instance, seq);
    CREATE TABLE IF NOT EXISTS engine_usage (
        resource TEXT NOT NULL,
        hour REAL NOT NULL,
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        seconds REAL NOT NULL,
        cpu_seconds REAL NOT NULL,
        mem_byte_seconds REAL NOT NULL,
        mem_peak INTEGER NOT NULL,
        tx_bytes INTEGER NOT NULL,
        vcpus INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        PRIMARY KEY (resource, hour)
    );
    CREATE TABLE IF NOT EXISTS engine_recent (
        resource TEXT NOT NULL,
        slot INTEGER NOT NULL,
        seconds REAL NOT NULL,
        cpu_seconds REAL NOT NULL,
        PRIMARY KEY (resource, slot)
    );
    CREATE TABLE IF NOT EXISTS budgets (
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (account, name)
    );
    CREATE TABLE IF NOT EXISTS budget_notifications (
        account TEXT NOT NULL,
        budget TEXT NOT NULL,
        key TEXT NOT NULL,
        body TEXT NOT NULL,
        subscribers TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL DEFAULT 'OK',
        PRIMARY KEY (account, budget, key),
        FOREIGN KEY (account, budget) REFERENCES budgets(account, name) ON DELETE CASCADE ON UPDATE CASCADE
    );
    CREATE TABLE IF NOT EXISTS budget_actions (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        budget TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'STANDBY',
        FOREIGN KEY (account, budget) REFERENCES budgets(account, name) ON DELETE CASCADE ON UPDATE CASCADE
    );
    CREATE TABLE IF NOT EXISTS billing_alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        budget TEXT NOT NULL,
        trig TEXT NOT NULL,
        period_start REAL NOT NULL,
        fired_at REAL NOT NULL,
        fired_sim REAL NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (account, budget, trig, period_start)
    );
    CREATE INDEX IF NOT EXISTS billing_alerts_account ON billing_alerts(account, id)
    """,
]


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; BEGIN IMMEDIATE so two writers never deadlock on upgrade."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self._connect().execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self._connect().execute(sql, params).fetchone()

    def close(self) -> None:
        """Close this thread's connection (before a fork: SQLite connections must not cross one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def schema_version(self) -> int:
        return self._connect().execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        conn = self._connect()
        conn.execute("BEGIN EXCLUSIVE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this pocketcloud "
                    f"({len(MIGRATIONS)}): upgrade pocketcloud or use another POCKETCLOUD_HOME"
                )
            for i in range(version, len(MIGRATIONS)):
                for stmt in MIGRATIONS[i].split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {i + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
