-- Broken schema: one plain violation of every schema (SCH001–SCH011) and indexes (IDX001–IDX007)
-- check, each named after what it breaks. Loaded with psql (autocommit; the CREATE INDEX
-- CONCURRENTLY that fails on purpose runs with ON_ERROR_STOP off). The harder cases live in
-- pitfalls_fail.sql. The test config for this database lowers the floors (see test_schema_checks.py).

CREATE SCHEMA bad;

CREATE TABLE bad.parents (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
INSERT INTO bad.parents (name) SELECT 'p' || g FROM generate_series(1, 10) g;

-- SCH001: no primary key (an ordinary table, and a partitioned one judged at the parent)
CREATE TABLE bad.no_pk (id bigint NOT NULL, note text);
CREATE TABLE bad.p_nopk (v int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE bad.p_nopk_2024 PARTITION OF bad.p_nopk FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE bad.p_nopk_2025 PARTITION OF bad.p_nopk FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');

-- SCH003: an int4 primary key; an int4 FK column referencing a bigint key (also SCH005)
CREATE TABLE bad.int4_pk (id integer PRIMARY KEY, name text);
CREATE TABLE bad.child_narrow (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id integer NOT NULL REFERENCES bad.parents (id)
);
CREATE INDEX child_narrow_parent_id_idx ON bad.child_narrow (parent_id);

-- SCH004: NOT VALID constraints (FK, CHECK, domain CHECK)
CREATE TABLE bad.nv_child (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, parent_id bigint NOT NULL, v int);
CREATE INDEX nv_child_parent_id_idx ON bad.nv_child (parent_id);
ALTER TABLE bad.nv_child ADD CONSTRAINT nv_child_parent_fk FOREIGN KEY (parent_id) REFERENCES bad.parents (id) NOT VALID;
ALTER TABLE bad.nv_child ADD CONSTRAINT nv_child_v_positive CHECK (v > 0) NOT VALID;
CREATE DOMAIN bad.pos_int AS integer;
ALTER DOMAIN bad.pos_int ADD CONSTRAINT pos_int_positive CHECK (VALUE > 0) NOT VALID;

-- SCH005: typmod mismatch between an FK column and its key
CREATE TABLE bad.codes (code varchar(40) PRIMARY KEY);
CREATE TABLE bad.code_refs (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code varchar(20) NOT NULL REFERENCES bad.codes (code)
);
CREATE INDEX code_refs_code_idx ON bad.code_refs (code);

-- SCH006: timestamp without time zone (and an allow-listed one: timestamp_allow = ["bad.allowed_ts.*"])
CREATE TABLE bad.events_ts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, happened_at timestamp NOT NULL);
CREATE TABLE bad.allowed_ts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_at timestamp);

-- SCH007: money as float8 and as money; SCH008: quantities/prices without a CHECK forbidding negatives
CREATE TABLE bad.prices (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    price        double precision NOT NULL CHECK (price >= 0),
    total_amount money NOT NULL
);
CREATE TABLE bad.stock_levels (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quantity  numeric NOT NULL,
    unit_cost numeric NOT NULL CHECK (unit_cost < 1000000)     -- a CHECK, but negatives pass it
);

-- SCH009: a disabled user trigger and disabled FK-enforcement triggers
CREATE FUNCTION bad.noop_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE bad.trg_table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int);
CREATE TRIGGER audit_trg BEFORE INSERT ON bad.trg_table FOR EACH ROW EXECUTE FUNCTION bad.noop_trg();
ALTER TABLE bad.trg_table DISABLE TRIGGER audit_trg;
CREATE TABLE bad.fk_off (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint NOT NULL CONSTRAINT fk_off_parent_fk REFERENCES bad.parents (id)
);
CREATE INDEX fk_off_parent_id_idx ON bad.fk_off (parent_id);
ALTER TABLE bad.fk_off DISABLE TRIGGER ALL;

-- SCH010: UNLOGGED (and an allow-listed one: unlogged_allow = ["bad.cache_*"])
CREATE UNLOGGED TABLE bad.scratch_unlogged (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE UNLOGGED TABLE bad.cache_sessions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);

-- SCH011: reg* types pg_upgrade refuses (directly, as an array, through a domain); regclass is fine
CREATE DOMAIN bad.proc_ref AS regprocedure;
CREATE TABLE bad.reg_cols (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fn      regproc,
    ns      regnamespace,
    ops     regoper[],
    handler bad.proc_ref,
    cls     regclass
);

-- IDX001: an FK without any index
CREATE TABLE bad.orders_nofk (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint NOT NULL REFERENCES bad.parents (id)
);

-- IDX002: an invalid index left by a failed CREATE UNIQUE INDEX CONCURRENTLY, and a partitioned
-- parent index that waits for its partitions (created ON ONLY the parent)
CREATE TABLE bad.dupvals (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int NOT NULL);
INSERT INTO bad.dupvals (v) VALUES (1), (1);
\set ON_ERROR_STOP 0
CREATE UNIQUE INDEX CONCURRENTLY dupvals_v_uq ON bad.dupvals (v);
\set ON_ERROR_STOP 1
CREATE INDEX p_nopk_v_idx ON ONLY bad.p_nopk (v);

-- IDX003: duplicates (one of them backs a UNIQUE constraint: it is the keeper)
CREATE TABLE bad.dups (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE, v int);
CREATE INDEX dups_email_copy ON bad.dups (email);
CREATE INDEX dups_v_a ON bad.dups (v);
CREATE INDEX dups_v_b ON bad.dups (v);

-- IDX004: (a) is a strict leading prefix of (a, b); the unique (b) is never redundant
CREATE TABLE bad.redund (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int, b int);
CREATE INDEX redund_a_idx ON bad.redund (a);
CREATE INDEX redund_a_b_idx ON bad.redund (a, b);
CREATE UNIQUE INDEX redund_b_uq ON bad.redund (b);
CREATE INDEX redund_b_a_idx ON bad.redund (b, a);

-- IDX005: a > 1 MiB index nobody scans
CREATE TABLE bad.unused_big (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload bigint NOT NULL);
CREATE INDEX unused_big_payload_idx ON bad.unused_big (payload);
INSERT INTO bad.unused_big (payload) SELECT g * 7 FROM generate_series(1, 60000) g;

-- IDX006: a bloated btree: 90 % of its entries deleted, pages kept
CREATE TABLE bad.bloated (id bigint PRIMARY KEY, v int);
INSERT INTO bad.bloated SELECT g, g FROM generate_series(1, 100000) g;
DELETE FROM bad.bloated WHERE id % 10 <> 0;
VACUUM bad.bloated;

-- not judged: a member of an extension (pg_depend deptype 'e') is the extension's business, even
-- without a primary key, with an unindexed FK and money in float8
CREATE TABLE bad.ext_member (parent_id bigint REFERENCES bad.parents (id), price double precision);
ALTER EXTENSION plpgsql ADD TABLE bad.ext_member;

-- IDX007: a large table read only by sequential scans
CREATE TABLE bad.scanned (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int);
INSERT INTO bad.scanned (v) SELECT g FROM generate_series(1, 5000) g;

ANALYZE;

SELECT count(*) FROM bad.scanned WHERE v > 10;
SELECT count(*) FROM bad.scanned WHERE v > 20;
SELECT count(*) FROM bad.scanned WHERE v > 30;
