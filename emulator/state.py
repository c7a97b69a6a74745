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
    # 5: describe-level VPC state (issue "Terraform"), adopted unchanged by VPC networking and
    # block storage: default VPCs and subnets (CIDRs distinct on the host), a primary network
    # interface and a root volume per instance, tags on every non-instance resource, and
    # security-group rules as rows with stable sgr- ids, egress included (each existing group
    # gets AWS's default allow-all egress rule). Zones are stored as the suffix (a, b, c):
    # the region is configuration.
    """
    CREATE TABLE vpcs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        cidr TEXT NOT NULL UNIQUE,
        is_default INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX vpcs_one_default ON vpcs(owner) WHERE is_default = 1;
    CREATE TABLE subnets (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,
        zone_suffix TEXT NOT NULL,
        cidr TEXT NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        UNIQUE (vpc_id, cidr)
    );
    CREATE INDEX subnets_owner ON subnets(owner);
    CREATE TABLE network_interfaces (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        instance_id TEXT NOT NULL UNIQUE REFERENCES instances(id) ON DELETE CASCADE,
        subnet_id TEXT NOT NULL REFERENCES subnets(id),
        mac TEXT NOT NULL,
        attachment_id TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX network_interfaces_owner ON network_interfaces(owner);
    CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        instance_id TEXT REFERENCES instances(id) ON DELETE CASCADE,
        zone_suffix TEXT NOT NULL,
        size_gib INTEGER NOT NULL,
        volume_type TEXT NOT NULL,
        iops INTEGER NOT NULL,
        throughput INTEGER NOT NULL,
        device TEXT,
        delete_on_termination INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        UNIQUE (instance_id, device)
    );
    CREATE INDEX volumes_owner ON volumes(owner);
    CREATE TABLE resource_tags (
        resource_id TEXT NOT NULL,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (resource_id, key)
    );
    CREATE INDEX resource_tags_owner ON resource_tags(owner);
    CREATE TABLE security_group_rules (
        id TEXT PRIMARY KEY,
        group_id TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        egress INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        from_port INTEGER NOT NULL,
        to_port INTEGER NOT NULL,
        cidr TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE INDEX security_group_rules_group ON security_group_rules(group_id);
    INSERT INTO security_group_rules (id, group_id, owner, egress, protocol, from_port, to_port, cidr, created_at)
        SELECT 'sgr-' || substr(lower(hex(randomblob(9))), 1, 17), g.id, g.owner, 0,
               json_extract(r.value, '$.protocol'), json_extract(r.value, '$.from_port'),
               json_extract(r.value, '$.to_port'), json_extract(r.value, '$.cidr'), g.created_at
        FROM security_groups g, json_each(g.rules) r;
    INSERT INTO security_group_rules (id, group_id, owner, egress, protocol, from_port, to_port, cidr, created_at)
        SELECT 'sgr-' || substr(lower(hex(randomblob(9))), 1, 17), id, owner, 1, '-1', -1, -1, '0.0.0.0/0', created_at
        FROM security_groups;
    ALTER TABLE security_groups DROP COLUMN rules;
    ALTER TABLE security_groups ADD COLUMN vpc_id TEXT REFERENCES vpcs(id)
    """,
    # 6: launch templates (EC2) and Auto Scaling groups. Members, the launch journal and the
    # activity history are rows, so a group survives a restart and a launch cut short by one
    # is found again (the journal row names the launch; the instance carries its id).
    """
    CREATE TABLE launch_templates (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        default_version INTEGER NOT NULL,
        latest_version INTEGER NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        UNIQUE (owner, name)
    );
    CREATE TABLE launch_template_versions (
        template_id TEXT NOT NULL REFERENCES launch_templates(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (template_id, version)
    );
    CREATE TABLE autoscaling_groups (
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        uuid TEXT NOT NULL,
        config TEXT NOT NULL,
        runtime TEXT NOT NULL DEFAULT '{}',
        status TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (owner, name)
    );
    CREATE TABLE autoscaling_members (
        instance_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        group_name TEXT NOT NULL,
        az TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        health TEXT NOT NULL DEFAULT 'Healthy',
        health_reason TEXT NOT NULL DEFAULT '',
        template TEXT NOT NULL DEFAULT '{}',
        protected INTEGER NOT NULL DEFAULT 0,
        activity_id TEXT,
        launched_at REAL NOT NULL,
        in_service_at REAL,
        FOREIGN KEY (owner, group_name) REFERENCES autoscaling_groups(owner, name) ON DELETE CASCADE
    );
    CREATE INDEX autoscaling_members_group ON autoscaling_members(owner, group_name);
    CREATE TABLE autoscaling_launches (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        group_name TEXT NOT NULL,
        az TEXT NOT NULL,
        activity_id TEXT NOT NULL,
        incarnation TEXT NOT NULL,
        started_at REAL NOT NULL
    );
    CREATE TABLE autoscaling_activities (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        group_name TEXT NOT NULL,
        description TEXT NOT NULL,
        cause TEXT NOT NULL,
        status TEXT NOT NULL,
        status_message TEXT NOT NULL DEFAULT '',
        progress INTEGER NOT NULL DEFAULT 0,
        details TEXT NOT NULL DEFAULT '{}',
        start_time REAL NOT NULL,
        end_time REAL
    );
    CREATE INDEX autoscaling_activities_group ON autoscaling_activities(owner, group_name, start_time);
    CREATE TABLE autoscaling_policies (
        owner TEXT NOT NULL,
        group_name TEXT NOT NULL,
        name TEXT NOT NULL,
        uuid TEXT NOT NULL,
        config TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (owner, group_name, name),
        FOREIGN KEY (owner, group_name) REFERENCES autoscaling_groups(owner, name) ON DELETE CASCADE
    );
    CREATE TABLE autoscaling_refreshes (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        group_name TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        config TEXT NOT NULL,
        progress TEXT NOT NULL DEFAULT '{}',
        start_time REAL NOT NULL,
        end_time REAL,
        FOREIGN KEY (owner, group_name) REFERENCES autoscaling_groups(owner, name) ON DELETE CASCADE
    );
    """,
    # 7: S3 settings that are pocketcloud's own on every engine (issue "Terraform"): one row per
    # bucket and kind (tagging, cors, lifecycle, acl, policy, public_access_block,
    # ownership_controls, versioning) holding the document as JSON; per object its tags and
    # canned ACL (gone with the object's index row); what a multipart upload will give its object.
    # IF NOT EXISTS: the entry may be renumbered when branches merge.
    """
    CREATE TABLE IF NOT EXISTS bucket_settings (
        bucket TEXT NOT NULL REFERENCES buckets(name) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (bucket, kind)
    );
    CREATE TABLE IF NOT EXISTS object_attrs (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        acl TEXT,
        PRIMARY KEY (bucket, key),
        FOREIGN KEY (bucket, key) REFERENCES objects(bucket, key) ON DELETE CASCADE
    );
    CREATE TABLE IF NOT EXISTS upload_attrs (
        upload_id TEXT PRIMARY KEY REFERENCES multipart_uploads(upload_id) ON DELETE CASCADE,
        tags TEXT NOT NULL DEFAULT '[]',
        acl TEXT
    )
    """,
    # 8: credential lifecycle (IAM-shaped): a key is Active or Inactive; an account can be
    # disabled (every key refused, its resources kept).
    """
    ALTER TABLE access_keys ADD COLUMN status TEXT NOT NULL DEFAULT 'Active'
        CHECK (status IN ('Active', 'Inactive'));
    ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0
    """,
    # 9: the operations journal: every multi-step instance operation, with the boot id of the
    # server performing it, so a restarted server tells a dead operation from a live one.
    """
    CREATE TABLE IF NOT EXISTS operations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('launch', 'terminate', 'start', 'stop')),
        boot_id TEXT NOT NULL,
        step TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX IF NOT EXISTS operations_open ON operations(instance_id) WHERE finished_at IS NULL
    """,
    # 10: the storage operations journal: bucket create/delete and multipart completions, each
    # with the boot id of its server, so a restarted one settles what a dead one left half done.
    """
    CREATE TABLE IF NOT EXISTS storage_operations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        op TEXT NOT NULL CHECK (op IN ('bucket-create', 'bucket-delete', 'multipart-complete')),
        bucket TEXT NOT NULL,
        object_key TEXT NOT NULL DEFAULT '',
        upload_id TEXT NOT NULL DEFAULT '',
        boot_id TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX IF NOT EXISTS storage_operations_open ON storage_operations(id) WHERE finished_at IS NULL
    """,
    # 11: block storage. Volumes of their own (root = 0) next to the root-volume records
    # (root = 1, whose state follows their instance); a state; the snapshot a volume came
    # from; when it was attached and the device its guest sees; the last ModifyVolume of each volume;
    # snapshots (their files live apart from the volumes, so a snapshot outlives its volume).
    """
    ALTER TABLE volumes ADD COLUMN root INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE volumes ADD COLUMN state TEXT NOT NULL DEFAULT 'in-use';
    ALTER TABLE volumes ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE volumes ADD COLUMN attached_at REAL;
    ALTER TABLE volumes ADD COLUMN guest_device TEXT;
    CREATE TABLE volume_modifications (
        volume_id TEXT PRIMARY KEY REFERENCES volumes(id) ON DELETE CASCADE,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        original TEXT NOT NULL,
        target TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        volume_id TEXT NOT NULL,
        volume_size INTEGER NOT NULL,
        state TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        source_snapshot_id TEXT NOT NULL DEFAULT '',
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX snapshots_owner ON snapshots(owner)
    """,
    # 12: listings are answered from the object index on every engine (issue 19), so it keeps
    # each object's ETag too (NULL: not known yet, read from the engine when first listed), and
    # the checksum its upload was verified with ("crc32 BASE64"; NULL: none), to return it, and
    # the number of parts of a multipart upload's object (GetObjectAttributes; NULL: one PUT).
    """
    ALTER TABLE objects ADD COLUMN etag TEXT;
    ALTER TABLE objects ADD COLUMN checksum TEXT;
    ALTER TABLE objects ADD COLUMN parts INTEGER
    """,
    # 13: images of the accounts' own (AMIs from CreateImage/RegisterImage, issue 15). A
    # snapshot of a root volume says which kind of root it copied (vm: a flattened qcow2 file;
    # container: a Docker image, named in engine_ref) and the image its instance ran (a VM
    # image from it boots that image's kernel); snapshots and AMIs carry the boot id of
    # the server making them, so a restarted one rolls back what a dead one left pending.
    """
    ALTER TABLE snapshots ADD COLUMN root_kind TEXT NOT NULL DEFAULT '';
    ALTER TABLE snapshots ADD COLUMN engine_ref TEXT NOT NULL DEFAULT '';
    ALTER TABLE snapshots ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE snapshots ADD COLUMN source_image TEXT NOT NULL DEFAULT '';
    CREATE TABLE amis (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        source_instance_id TEXT NOT NULL DEFAULT '',
        source_image TEXT NOT NULL DEFAULT '',
        ref TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}',
        size_gib INTEGER NOT NULL,
        boot_id TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (owner, name)
    )
    """,
    # 14: object ownership (ObjectWriter, BucketOwnerPreferred; issue 19): the account that owns
    # an object another account wrote, and the one a multipart upload's object will have
    # (NULL: the bucket's owner, as every object before this).
    """
    ALTER TABLE object_attrs ADD COLUMN owner TEXT;
    ALTER TABLE upload_attrs ADD COLUMN owner TEXT
    """,
    # 15: a security-group rule's peer may be another group of its VPC (UserIdGroupPairs,
    # Terraform's source_security_group_id): its members' addresses, enforced with VPC
    # networking on. NULL: the peer is the rule's CIDR; set, the CIDR is ''.
    """
    ALTER TABLE security_group_rules ADD COLUMN ref_group TEXT;
    CREATE INDEX security_group_rules_ref ON security_group_rules(ref_group)
    """,
    # 16: every VPC has its own security group named default (AWS), so names are unique per
    # VPC, not per account
    # (SQLite changes a constraint by rebuilding the table; _migrate runs with foreign keys off
    # so dropping the old table does not cascade to the rules). A group from before VPCs joins
    # its account's default VPC; a VPC without a default group gets one with AWS's egress rule;
    # every default group gets its self rule (all traffic from its members), until now implicit.
    """
    CREATE TABLE security_groups_new (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at REAL NOT NULL,
        vpc_id TEXT REFERENCES vpcs(id),
        UNIQUE (owner, vpc_id, name)
    );
    INSERT INTO security_groups_new (id, owner, name, description, created_at, vpc_id)
        SELECT g.id, g.owner, g.name, g.description, g.created_at,
               COALESCE(g.vpc_id, (SELECT v.id FROM vpcs v WHERE v.owner = g.owner AND v.is_default = 1))
        FROM security_groups g;
    DROP TABLE security_groups;
    ALTER TABLE security_groups_new RENAME TO security_groups;
    CREATE TEMP TABLE new_default_groups AS
        SELECT 'sg-' || substr(lower(hex(randomblob(9))), 1, 17) AS id, v.owner AS owner, v.id AS vpc_id,
               v.created_at AS created_at
        FROM vpcs v WHERE NOT EXISTS (SELECT 1 FROM security_groups g WHERE g.vpc_id = v.id AND g.name = 'default');
    INSERT INTO security_groups (id, owner, name, description, created_at, vpc_id)
        SELECT id, owner, 'default', 'default VPC security group', created_at, vpc_id FROM temp.new_default_groups;
    INSERT INTO security_group_rules (id, group_id, owner, egress, protocol, from_port, to_port, cidr, created_at)
        SELECT 'sgr-' || substr(lower(hex(randomblob(9))), 1, 17), id, owner, 1, '-1', -1, -1, '0.0.0.0/0', created_at
        FROM temp.new_default_groups;
    DROP TABLE temp.new_default_groups;
    INSERT INTO security_group_rules (id, group_id, owner, egress, protocol, from_port, to_port, cidr, created_at,
                                      ref_group)
        SELECT 'sgr-' || substr(lower(hex(randomblob(9))), 1, 17), g.id, g.owner, 0, '-1', -1, -1, '', g.created_at, g.id
        FROM security_groups g WHERE g.name = 'default' AND NOT EXISTS (
            SELECT 1 FROM security_group_rules r WHERE r.group_id = g.id AND r.egress = 0 AND r.ref_group = g.id
            AND r.protocol = '-1')
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
        # Off while migrating (only possible outside a transaction): a migration that rebuilds a
        # table to change a constraint drops the old one, which would cascade to rows naming it.
        conn.execute("PRAGMA foreign_keys=OFF")
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
            if version < len(MIGRATIONS) and conn.execute("PRAGMA foreign_key_check(security_group_rules)").fetchone():
                raise RuntimeError(f"{self.path}: a migration left security-group rules without their group")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA foreign_keys=ON")
