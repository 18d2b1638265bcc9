-- Hostile identifiers: every object name that must be quoted, escaped or byte-counted right.
-- Evidence must name them exactly as PostgreSQL's quote_ident / format('%I') does.
-- Names: a schema with a double quote, a space and a semicolon; a table called <script>alert(1)</script>;
-- a column with a space, unicode and embedded double quotes; a 63-byte ASCII name and a 63-byte
-- (31 x U+00E9 + x) UTF-8 name (NAMEDATALEN - 1); a mixed-case table and a reserved-word column.

CREATE SCHEMA "we""ird sch;ema";

-- SCH001 (no primary key) and IDX001 (unindexed FK) on the script-named table
CREATE TABLE "we""ird sch;ema"."ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE "we""ird sch;ema"."<script>alert(1)</script>" (
    "ü mlaut ""q""" bigint REFERENCES "we""ird sch;ema"."ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt" (id),
    note text
);

-- SCH010: an UNLOGGED table with a 63-byte multibyte name
CREATE UNLOGGED TABLE "we""ird sch;ema"."éééééééééééééééééééééééééééééééx" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);

-- SCH003 (int4 primary key) and SCH006 (timestamp) on a mixed-case table with a reserved-word column
CREATE TABLE public."Select" (id integer PRIMARY KEY, "user" timestamp);
