"""amcheck over every database of a started copy: the structural check of a restored backup (BKP002).

Kept apart from the backup procedures because it is one self-contained job: one DO block per database
that reports each finding as a WARNING, read back into an `Amcheck` result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# amcheck over a whole database in one statement: every valid btree index of a relation that holds data
# (relkind 'i'; the 'I' parent of a partitioned index has none and bt_index_check refuses it), with
# heapallindexed so a heap tuple missing from its index is found too, and, where amcheck has it (14+),
# verify_heapam on every table. Each finding is a WARNING so one bad index does not hide the next.
AMCHECK_DO = """
DO $pgready$
DECLARE r record; v record; n_idx int := 0; n_tab int := 0;
        heapam boolean := EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'verify_heapam');
BEGIN
  FOR r IN SELECT c.oid, c.oid::regclass::text AS name FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
            WHERE c.relkind = 'i' AND a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't' LOOP
    n_idx := n_idx + 1;
    BEGIN
      PERFORM bt_index_check(r.oid, true);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'pgready-amcheck: index %: %', r.name, SQLERRM;
    END;
  END LOOP;
  IF heapam THEN
    FOR r IN SELECT c.oid, c.oid::regclass::text AS name FROM pg_class c
              WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' LOOP
      n_tab := n_tab + 1;
      BEGIN
        FOR v IN EXECUTE 'SELECT blkno, offnum, msg FROM verify_heapam($1)' USING r.oid LOOP
          RAISE WARNING 'pgready-amcheck: table % block % offset %: %', r.name, v.blkno, v.offnum, v.msg;
        END LOOP;
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pgready-amcheck: table %: %', r.name, SQLERRM;
      END;
    END LOOP;
  END IF;
  RAISE NOTICE 'pgready-amcheck-done % % %', n_idx, n_tab, heapam;
END
$pgready$
"""


@dataclass
class Amcheck:
    indexes: int = 0
    tables: int = 0
    heapam: bool = False
    findings: list[tuple[str, str]] = field(default_factory=list)  # (database: relation, message)
    unavailable: str | None = None  # amcheck is not installed with these binaries


def amcheck(node: Any, dbs: list[str]) -> Amcheck:
    """amcheck every database of a (restored, writable) copy: CREATE EXTENSION, then one DO block each."""
    import psycopg

    out = Amcheck()
    for db in dbs:
        with node.connect(dbname=db) as c:
            msgs: list[str] = []
            c.add_notice_handler(lambda d: msgs.append(d.message_primary or ""))
            try:
                c.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            except (psycopg.errors.UndefinedFile, psycopg.errors.FeatureNotSupported) as e:
                out.unavailable = str(e).strip().splitlines()[0][:200]
                return out
            c.execute(AMCHECK_DO)
        for m in msgs:
            if m.startswith("pgready-amcheck-done"):
                _, i, t, h = m.split()
                out.indexes += int(i)
                out.tables += int(t)
                out.heapam = h == "t" or h == "true"
            elif m.startswith("pgready-amcheck:"):
                what, _, msg = m.split(":", 1)[1].strip().partition(": ")
                out.findings.append((f"{db}: {what}", msg[:400]))
    return out
