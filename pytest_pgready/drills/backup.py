"""Backup drills: prove that a backup restores, not that a backup command exited 0.

The procedures live in one module each; this one holds `BackupLab`, the session façade that shares
their expensive parts between the checks:

- backup_logical (BKP001): pg_dump in an exported snapshot, pg_restore -j into a scratch instance, compared.
- backup_physical (BKP002): pg_basebackup with a manifest, pg_verifybackup, the copy started, amcheck
  (module amcheck), compared; incremental_round_trip for pg_combinebackup (PostgreSQL 17+).
- backup_corruption (BKP003): flipped bytes and a missing WAL segment must be noticed.
- backup_tools (BKP004): the user's own backup/restore commands, run as a black box.
- backup_rto (BKP005): measured restore throughput x database size.
- toolrun: running the client tools, DSNs and password files, DrillError.

Nothing here decides pass/fail: each result lists its `problems()`, the suite records them.
"""

from __future__ import annotations

from typing import Any

from ..cluster.local import LocalCluster
from .backup_corruption import CorruptionResult, corruption_drill
from .backup_logical import LogicalResult, logical_round_trip
from .backup_physical import PhysicalResult, SourceBackup, backup_with_snapshots, physical_round_trip


class BackupLab:
    """What the backup checks share within one run: one scratch instance and one logical round trip
    (BKP001, BKP004's seed, BKP005), one host for copies and one base backup (BKP002, BKP003, BKP005).
    Each piece is made on first use; a failure is remembered and raised again to every check that needs it."""

    def __init__(self, cluster: Any, settings: Any, dbname: str | None = None) -> None:
        self.cluster, self.settings = cluster, settings
        self._dbname = dbname
        self._cache: dict[str, Any] = {}
        self._owned: list[LocalCluster] = []

    def _get(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (True, make())
            except Exception as e:  # remembered: the next check that needs it gets the same answer
                self._cache[key] = (False, e)
        ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    def _own(self, c: LocalCluster) -> LocalCluster:
        self._owned.append(c)
        return c

    @property
    def dbname(self) -> str:
        return self._dbname or self.cluster.primary.endpoint.dbname

    def target_major(self) -> int:
        from .scratch import server_major

        return self._get("major", lambda: server_major(self.cluster.primary))

    def scratch(self) -> LocalCluster:
        from .scratch import pick_binaries, scratch_instance

        return self._get("scratch", lambda: self._own(scratch_instance(
            self.settings, pick_binaries(self.target_major(), self.cluster.bin))))

    def logical(self) -> LogicalResult:
        return self._get("logical", lambda: logical_round_trip(self.cluster.primary, self.dbname, self.scratch(),
                                                               jobs=self.settings.backup_jobs))

    def host(self) -> LocalCluster:
        from .scratch import bare_host, pick_binaries

        return self._get("host", lambda: self._own(bare_host(
            pick_binaries(self.target_major(), self.cluster.bin, exact=True))))

    def source_backup(self) -> SourceBackup:
        return self._get("base", lambda: backup_with_snapshots(
            self.cluster.primary, self.host(), "base", manifest_checksums=self.settings.backup_manifest_checksums))

    def physical(self) -> PhysicalResult:
        return self._get("physical", lambda: physical_round_trip(self.source_backup(), self.host()))

    def corruption(self) -> CorruptionResult:
        return self._get("corruption", lambda: corruption_drill(self.cluster.primary, self.host(),
                                                                self.source_backup().backup))

    def close(self) -> None:
        for c in reversed(self._owned):
            c.close()
        self._owned.clear()
