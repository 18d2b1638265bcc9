-- Pitfalls where a naive check would fail a correct schema. Loaded on top of clean.sql: every
-- schema and indexes check must still pass.

CREATE SCHEMA pit;

-- IDX001: a two-column FK whose columns lead an index in another order is covered.
CREATE TABLE pit.bins (
    warehouse_id bigint NOT NULL,
    bin_code     text   NOT NULL,
    PRIMARY KEY (warehouse_id, bin_code)
);
CREATE TABLE pit.bin_stock (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    warehouse_id bigint  NOT NULL,
    bin_code     text    NOT NULL,
    quantity     integer NOT NULL CHECK (quantity >= 0),
    FOREIGN KEY (warehouse_id, bin_code) REFERENCES pit.bins (warehouse_id, bin_code)
);
CREATE INDEX bin_stock_code_wh_idx ON pit.bin_stock (bin_code, warehouse_id);

-- IDX004: an index on attnum 1 is not a prefix of an index leading with attnum 12
-- (the textual comparison of int2vectors, '1' vs '12 3', is the classic bug).
CREATE TABLE pit.wide (
    c1  int, c2 int, c3 int, c4 int, c5 int, c6 int, c7 int, c8 int, c9 int, c10 int, c11 int,
    c12 int,
    id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY
);
CREATE INDEX wide_c1_idx ON pit.wide (c1);
CREATE INDEX wide_c12_c3_idx ON pit.wide (c12, c3);
CREATE INDEX wide_id_c2_idx ON pit.wide (id, c2);   -- the PK (id) is its prefix, but backs a constraint

-- IDX001 on a partitioned table: FK indexed on the parent; partitions carry clones of FK and index.
CREATE TABLE pit.shipments_log (
    id         bigint      NOT NULL,
    bin_wh     bigint      NOT NULL,
    bin_code   text        NOT NULL,
    logged_at  timestamptz NOT NULL,
    PRIMARY KEY (id, logged_at),
    FOREIGN KEY (bin_wh, bin_code) REFERENCES pit.bins (warehouse_id, bin_code)
) PARTITION BY RANGE (logged_at);
CREATE TABLE pit.shipments_log_a PARTITION OF pit.shipments_log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE pit.shipments_log_b PARTITION OF pit.shipments_log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX shipments_log_bin_idx ON pit.shipments_log (bin_wh, bin_code);

-- IDX001: an FK referencing a partitioned table (PostgreSQL adds one pg_constraint row per
-- referenced partition, with conparentid set) is judged once.
CREATE TABLE pit.log_notes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id    bigint      NOT NULL,
    logged_at timestamptz NOT NULL,
    FOREIGN KEY (log_id, logged_at) REFERENCES pit.shipments_log (id, logged_at)
);
CREATE INDEX log_notes_log_idx ON pit.log_notes (log_id, logged_at);

-- SCH011: regclass, regtype and regrole survive pg_upgrade (their OIDs are preserved).
CREATE TABLE pit.maintenance_targets (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target    regclass NOT NULL,
    cast_type regtype,
    owner_role regrole
);

-- SCH007/SCH008: integer cents are fine for money; an "account" is not a "count".
CREATE TABLE pit.ledger (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_no   bigint NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0)
);

-- PG18: NOT NULL constraints live in pg_constraint (contype 'n'); a NOT ENFORCED constraint is
-- listed by SCH004, not failed. Probed, not version-compared: the DO block only runs where the
-- syntax exists.
CREATE TABLE pit.not_null_heavy (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    a  text NOT NULL, b text NOT NULL, c text NOT NULL
);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_constraint'::regclass
               AND attname = 'conenforced') THEN
        EXECUTE 'ALTER TABLE pit.not_null_heavy ADD CONSTRAINT a_short CHECK (length(a) < 100) NOT ENFORCED';
    END IF;
END $$;

ANALYZE;
