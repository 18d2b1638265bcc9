-- VendHub example data: a deterministic generator that runs entirely in the server.
--
--   psql -v ON_ERROR_STOP=1 -f examples/seed.sql                 # scale 1  ≈ 300 000 rows
--   psql -v ON_ERROR_STOP=1 -v scale=10 -f examples/seed.sql     # scale 10 ≈ 3 000 000 rows (benchmarks)
--   psql -v ON_ERROR_STOP=1 -v scale=0.1 -f examples/seed.sql    # one organization ≈ 30 000 rows (tests)
--
-- Needs examples/schema.sql applied first, on a database where vend.* is still empty. It is a psql
-- script (it uses \if, \gset and \gexec), run as the schema owner or a superuser.
--
-- psql variable:
--   scale   > 0, default 1. The data set is made of round(10 × scale) organizations (at least one),
--           each with the same shape: 15 users, 15 locations, 30 machines, 40 products, 4 planograms
--           of 24 slots, and over the 91 days 2025-09-01 .. 2025-11-30 (UTC): 11 000 sales, 900 refills,
--           390 cash collections, 200 maintenance tickets, 4 500 telemetry events, 800 audit entries.
--           Row counts are therefore proportional to round(10 × scale).
--
-- Deterministic: every "random" choice is a hash of the row number (hashint8extended, stable across
-- PostgreSQL versions and platforms), so the same scale gives byte-for-byte the same rows on every
-- server and every run. All timestamps are fixed (no now()). Rows are consistent with every foreign key
-- and CHECK constraint (the constraints stay enabled while loading: they prove it), a machine only sells
-- the products of its planogram, and so on. Every identity sequence is advanced past the loaded ids.
-- The load is one transaction; it ends with VACUUM (ANALYZE) of every vend table.

\set ON_ERROR_STOP on
\if :{?scale}
\else
\set scale 1
\endif

SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET work_mem = '64MB';
SET max_parallel_workers_per_gather = 0;

SELECT set_config('vend.seed_scale', :'scale', false) AS scale_text \gset
DO $$
BEGIN
    IF current_setting('vend.seed_scale') !~ '^[0-9]*\.?[0-9]+$' OR current_setting('vend.seed_scale')::numeric <= 0 THEN
        RAISE EXCEPTION 'seed.sql: scale must be a positive number, got %', current_setting('vend.seed_scale');
    END IF;
END
$$;

-- Sizes (everything but the fixed reference tables scales with n_org).
SELECT greatest(1, round(10 * :scale::numeric))::int AS n_org \gset
SELECT 15 * :n_org    AS n_users,
       15 * :n_org    AS n_locations,
       4 * :n_org     AS n_suppliers,
       40 * :n_org    AS n_products,
       4 * :n_org     AS n_planograms,
       30 * :n_org    AS n_machines,
       900 * :n_org   AS n_refills,      -- every machine every 3 days
       390 * :n_org   AS n_collections,  -- every machine weekly
       11000 * :n_org AS n_sales,
       200 * :n_org   AS n_tickets,
       300 * :n_org   AS n_price_changes,
       800 * :n_org   AS n_audit,
       4500 * :n_org  AS n_telemetry,
       4 * :n_org     AS n_api_keys,
       200 * :n_org   AS n_legacy \gset
\echo 'seeding vend: scale' :scale '->' :n_org 'organizations'

-- rnd(i, salt): a uniform number in [0, 1) that depends only on (i, salt).
-- pick(i, salt, n): a whole number in [0, n). Temporary: they vanish with the session.
CREATE FUNCTION pg_temp.rnd(i bigint, salt integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(i, salt) & 2147483647)::double precision / 2147483648.0 $$;

CREATE FUNCTION pg_temp.pick(i bigint, salt integer, n bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT floor(pg_temp.rnd(i, salt) * n)::bigint $$;

-- Tenant layout: row k of a per-tenant table belongs to organization ((k - 1) % n_org) + 1, and the
-- j-th row of organization o has id o + n_org × j. So "user j of organization o" needs no lookup.

BEGIN;

-- Bulk-load practice (PostgreSQL docs, "Populating a Database"): the secondary indexes and the
-- foreign keys are dropped here and re-created after the load with their exact definitions and names.
-- Re-adding a foreign key checks every row in one pass, so the load still proves that the data
-- satisfies every FK (and fails if it does not); CHECK, NOT NULL, PRIMARY KEY and UNIQUE constraints
-- stay in place throughout. All of it is one transaction: nothing is visible half-done.
CREATE TEMP TABLE deferred_indexes ON COMMIT DROP AS
SELECT i.indexrelid::regclass::text AS name,
       replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS def
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'vend' AND NOT t.relispartition
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'));
CREATE TEMP TABLE deferred_fks ON COMMIT DROP AS
SELECT k.conrelid::regclass::text AS tbl, k.conname AS name, pg_get_constraintdef(k.oid) AS def
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'vend' AND k.contype = 'f' AND k.conparentid = 0 AND NOT t.relispartition;
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, name) FROM deferred_fks ORDER BY tbl, name \gexec
SELECT format('DROP INDEX %s', name) FROM deferred_indexes ORDER BY name \gexec

-- ---------------------------------------------------------------------------------------------
-- Reference data (fixed size)
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.roles (id, name, description) OVERRIDING SYSTEM VALUE VALUES
    (1, 'admin',      'Manages the organization, its users and API keys'),
    (2, 'manager',    'Manages locations, machines, planograms and prices'),
    (3, 'operator',   'Refills machines and collects cash in the field'),
    (4, 'technician', 'Works maintenance tickets'),
    (5, 'finance',    'Reads sales, payments and cash reports');

INSERT INTO vend.machine_models (id, manufacturer, model_name, slot_count, refrigerated) OVERRIDING SYSTEM VALUE VALUES
    (1,  'Necta',    'Orchestra',       40, false),
    (2,  'Necta',    'Snakky Max',      48, false),
    (3,  'Bianchi',  'Lei SA 700',      36, false),
    (4,  'Bianchi',  'BVM 972',         42, true),
    (5,  'Crane',    'Merchant Media',  45, false),
    (6,  'Crane',    'BevMax 4',        45, true),
    (7,  'Sielaff',  'FK 185',          24, true),
    (8,  'Sielaff',  'Robimat 99',      56, true),
    (9,  'Jofemar',  'Vision ES Plus',  60, true),
    (10, 'Jofemar',  'Easy 24',         24, false),
    (11, 'Azkoyen',  'Mistral+',        48, false),
    (12, 'Azkoyen',  'Vitro S5',        30, true);

INSERT INTO vend.product_categories (id, parent_id, name) OVERRIDING SYSTEM VALUE VALUES
    (1, NULL, 'Food'), (2, NULL, 'Beverages'),
    (3, 1, 'Snacks'), (4, 1, 'Chocolate & candy'), (5, 1, 'Sandwiches'), (6, 1, 'Healthy'), (7, 1, 'Gum & mints'),
    (8, 2, 'Soft drinks'), (9, 2, 'Water'), (10, 2, 'Energy drinks'), (11, 2, 'Coffee & tea'), (12, 2, 'Juice & dairy');

-- The 40 products every organization sells (its own SKUs and prices).
CREATE TEMP TABLE catalog (j integer PRIMARY KEY, name text, category_id bigint, base_price numeric(12,2)) ON COMMIT DROP;
INSERT INTO catalog VALUES
    (0, 'Salted crisps 45g', 3, 1.50), (1, 'Paprika crisps 45g', 3, 1.50), (2, 'Salted peanuts 50g', 3, 1.40),
    (3, 'Pretzel sticks 75g', 3, 1.30), (4, 'Tortilla chips 60g', 3, 1.60), (5, 'Popcorn sweet 30g', 3, 1.40),
    (6, 'Milk chocolate bar 50g', 4, 1.40), (7, 'Caramel bar 51g', 4, 1.30), (8, 'Peanut chocolate bar 50g', 4, 1.30),
    (9, 'Wafer bar 45g', 4, 1.20), (10, 'Gummy bears 100g', 4, 1.80), (11, 'Dark chocolate 70% 40g', 4, 1.90),
    (12, 'Ham & cheese sandwich', 5, 3.90), (13, 'Chicken wrap', 5, 4.50), (14, 'Tuna sandwich', 5, 3.90),
    (15, 'Veggie wrap', 5, 4.20), (16, 'Granola bar 35g', 6, 1.50), (17, 'Mixed nuts 40g', 6, 2.20),
    (18, 'Rice cakes 30g', 6, 1.40), (19, 'Apple slices 80g', 6, 1.90), (20, 'Protein bar 55g', 6, 2.80),
    (21, 'Mint gum 10 pieces', 7, 1.10), (22, 'Strong mints 38g', 7, 1.20), (23, 'Cola 33cl can', 8, 1.60),
    (24, 'Cola zero 33cl can', 8, 1.60), (25, 'Orange soda 33cl can', 8, 1.50), (26, 'Lemon iced tea 50cl', 8, 2.10),
    (27, 'Ginger ale 33cl can', 8, 1.70), (28, 'Still water 50cl', 9, 1.00), (29, 'Sparkling water 50cl', 9, 1.10),
    (30, 'Still water 1.5l', 9, 1.80), (31, 'Energy drink 25cl', 10, 2.30), (32, 'Energy drink sugar-free 25cl', 10, 2.30),
    (33, 'Espresso', 11, 1.20), (34, 'Cappuccino', 11, 1.80), (35, 'Hot chocolate', 11, 1.60),
    (36, 'Green tea', 11, 1.20), (37, 'Orange juice 33cl', 12, 2.20), (38, 'Chocolate milk 33cl', 12, 1.90),
    (39, 'Drinking yoghurt strawberry', 12, 2.00);

-- ---------------------------------------------------------------------------------------------
-- Tenants and people
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.organizations (id, name, slug, plan, billing_email, created_at) OVERRIDING SYSTEM VALUE
SELECT g, x.name, x.slug, x.plan, 'billing@' || x.slug || '.example', '2022-03-01 09:00+00'::timestamptz + (g % 100 * 11) * interval '1 day'
FROM generate_series(1, :n_org) g
CROSS JOIN LATERAL (
    SELECT n.name, regexp_replace(lower(n.name), '[^a-z0-9]+', '-', 'g') || '-' || g AS slug,
           (ARRAY['starter', 'growth', 'growth', 'enterprise'])[1 + pg_temp.pick(g, 1, 4)] AS plan
    FROM (SELECT (ARRAY['Snackbox', 'CoolVend', 'Alpine Automaten', 'Metro Refresh', 'Campus Bites', 'Station Vending',
                        'Nordic Kiosk', 'Office Fuel', 'GreenVend', 'Quickbite Services'])[1 + (g - 1) % 10]
                 || CASE WHEN g > 10 THEN ' ' || ((g - 1) / 10 + 1) ELSE '' END AS name) n
) x;

-- 15 users per organization: j = 0 admin, 1-2 managers (also finance), 3-10 operators,
-- 11-12 technicians, 13-14 finance.
INSERT INTO vend.users (id, organization_id, email, full_name, password_hash, is_active, created_at, last_login_at)
OVERRIDING SYSTEM VALUE
SELECT g, x.org, translate(lower(x.first || '.' || x.last || '.' || g), 'éáó', 'eao') || '@' || o.slug || '.example', x.first || ' ' || x.last,
       '$scrypt$ln=16,r=8,p=1$' || md5('salt-' || g) || '$' || md5('hash-' || g),
       pg_temp.rnd(g, 22) >= 0.04,
       o.created_at + (x.j * 3) * interval '1 day',
       '2025-11-30 08:00+00'::timestamptz - pg_temp.pick(g, 23, 72 * 60) * interval '1 minute'
FROM generate_series(1, :n_users) g
CROSS JOIN LATERAL (
    SELECT ((g - 1) % :n_org) + 1 AS org, (g - 1) / :n_org AS j,
           (ARRAY['Anna', 'Ben', 'Chloé', 'David', 'Elif', 'Farid', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Karim', 'Lea',
                  'Marco', 'Nadia', 'Oskar', 'Paula', 'Rafael', 'Sofia', 'Tomás', 'Yara'])[1 + pg_temp.pick(g, 20, 20)] AS first,
           (ARRAY['Meyer', 'Martin', 'Rossi', 'Novak', 'Jansen', 'Dubois', 'Schmidt', 'Garcia', 'Nowak', 'Berg',
                  'Keller', 'Moreau', 'Bianchi', 'Horvath', 'Lindqvist', 'Costa'])[1 + pg_temp.pick(g, 21, 16)] AS last
) x
JOIN vend.organizations o ON o.id = x.org;

INSERT INTO vend.user_roles (user_id, role_id, granted_at)
SELECT u.id, r.role_id, u.created_at
FROM vend.users u
CROSS JOIN LATERAL (SELECT (u.id - 1) / :n_org AS j) x
CROSS JOIN LATERAL (
    SELECT CASE WHEN x.j = 0 THEN 1 WHEN x.j <= 2 THEN 2 WHEN x.j <= 10 THEN 3 WHEN x.j <= 12 THEN 4 ELSE 5 END
    UNION ALL
    SELECT 5 WHERE x.j IN (1, 2)
) r(role_id);

INSERT INTO vend.api_keys (id, organization_id, created_by, name, key_prefix, key_hash, scopes, created_at,
                           last_used_at, revoked_at) OVERRIDING SYSTEM VALUE
SELECT g, x.org, x.org, (ARRAY['Telemetry gateway', 'ERP export', 'Payment webhook', 'BI read-only'])[x.j + 1],
       'vh_live_' || substr(md5('vendhub-api-key-' || g), 1, 12),
       encode(sha256(convert_to('vendhub-api-secret-' || g, 'UTF8')), 'hex'),
       (ARRAY['{telemetry:write}', '{sales:read,inventory:read}', '{payments:write}', '{sales:read}'])[x.j + 1]::text[],
       '2024-01-15 10:00+00'::timestamptz + (g % 100 * 3) * interval '1 day',
       CASE WHEN x.j = 3 THEN NULL ELSE '2025-11-30 23:00+00'::timestamptz - pg_temp.pick(g, 30, 600) * interval '1 minute' END,
       CASE WHEN x.j = 3 AND g % 2 = 0 THEN '2025-06-01 12:00+00'::timestamptz END
FROM generate_series(1, :n_api_keys) g
CROSS JOIN LATERAL (SELECT ((g - 1) % :n_org) + 1 AS org, (g - 1) / :n_org AS j) x;

-- ---------------------------------------------------------------------------------------------
-- Sites, suppliers, products, planograms, machines
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.locations (id, organization_id, name, address_line, city, postal_code, latitude, longitude,
                            timezone, created_at) OVERRIDING SYSTEM VALUE
SELECT g, x.org,
       x.site || ' ' || c.city || ' #' || (x.j + 1),
       (10 + pg_temp.pick(g, 41, 190)) || ' ' || (ARRAY['Main Street', 'Station Road', 'Park Avenue', 'Industrial Way',
                                                        'University Road', 'Harbour Street'])[1 + pg_temp.pick(g, 42, 6)],
       c.city, c.zip_prefix || lpad(pg_temp.pick(g, 43, 1000)::text, 3, '0'),
       round((c.lat + (pg_temp.rnd(g, 44) - 0.5) * 0.12)::numeric, 6),
       round((c.lon + (pg_temp.rnd(g, 45) - 0.5) * 0.18)::numeric, 6),
       c.tz, '2023-01-10 09:00+00'::timestamptz + (g % 300 * 2) * interval '1 day'
FROM generate_series(1, :n_locations) g
CROSS JOIN LATERAL (
    SELECT ((g - 1) % :n_org) + 1 AS org, (g - 1) / :n_org AS j,
           1 + (((g - 1) % :n_org) + pg_temp.pick(g, 40, 3)) % 8 AS city_no,   -- an operator works in 3 cities
           (ARRAY['Hospital', 'Train station', 'University', 'Office park', 'Gym', 'Airport', 'Mall', 'Factory',
                  'School', 'Hotel'])[1 + pg_temp.pick(g, 46, 10)] AS site
) x
JOIN (VALUES (1, 'Paris', '75', 48.8566, 2.3522, 'Europe/Paris'), (2, 'Lyon', '69', 45.7640, 4.8357, 'Europe/Paris'),
             (3, 'Berlin', '10', 52.5200, 13.4050, 'Europe/Berlin'), (4, 'Munich', '80', 48.1351, 11.5820, 'Europe/Berlin'),
             (5, 'Milan', '20', 45.4642, 9.1900, 'Europe/Rome'), (6, 'Madrid', '28', 40.4168, -3.7038, 'Europe/Madrid'),
             (7, 'Amsterdam', '10', 52.3676, 4.9041, 'Europe/Amsterdam'), (8, 'Vienna', '10', 48.2082, 16.3738, 'Europe/Vienna'))
     AS c(no, city, zip_prefix, lat, lon, tz) ON c.no = x.city_no;

INSERT INTO vend.suppliers (id, organization_id, name, contact_email, phone, created_at) OVERRIDING SYSTEM VALUE
SELECT g, x.org, x.name, 'orders@' || regexp_replace(lower(x.name), '[^a-z0-9]+', '', 'g') || '.example',
       '+33 1 ' || lpad(pg_temp.pick(g, 50, 100000000)::text, 8, '0'), '2023-01-05 09:00+00'::timestamptz + (g % 300) * interval '1 day'
FROM generate_series(1, :n_suppliers) g
CROSS JOIN LATERAL (SELECT ((g - 1) % :n_org) + 1 AS org,
                           (ARRAY['Metro Cash & Carry', 'Snack Wholesale', 'Beverage Direct', 'Fresh Kitchen Co'])[(g - 1) / :n_org + 1] AS name) x;

-- 40 products per organization (catalog line j), with the organization's own price list.
INSERT INTO vend.products (id, organization_id, category_id, supplier_id, sku, name, price, unit_cost, is_active,
                           created_at, updated_at) OVERRIDING SYSTEM VALUE
SELECT g, x.org, c.category_id,
       CASE WHEN x.j % 10 = 9 THEN NULL ELSE x.org + :n_org * (x.j % 4) END,
       'SKU-' || lpad(x.j::text, 4, '0'), c.name,
       c.base_price + 0.10 * (x.org % 4), round((c.base_price + 0.10 * (x.org % 4)) * 0.45, 2),
       NOT (x.j = 39 AND x.org % 3 = 0),
       '2023-02-01 09:00+00'::timestamptz, '2025-08-01 09:00+00'::timestamptz + pg_temp.pick(g, 55, 30) * interval '1 day'
FROM generate_series(1, :n_products) g
CROSS JOIN LATERAL (SELECT ((g - 1) % :n_org) + 1 AS org, ((g - 1) / :n_org)::int AS j) x
JOIN catalog c ON c.j = x.j;

-- 4 planograms per organization, each for a different machine model. Planogram k of organization o
-- has id (o - 1) × 4 + k + 1; its 24 slots A1..C8 have ids (planogram - 1) × 24 + 1 .. + 24.
INSERT INTO vend.planograms (id, organization_id, machine_model_id, name, version, is_active, created_at)
OVERRIDING SYSTEM VALUE
SELECT g, x.org, x.model, 'Standard ' || mm.model_name || ' layout', 1, true,
       '2024-02-01 09:00+00'::timestamptz + (g % 300) * interval '1 day'
FROM generate_series(1, :n_planograms) g
CROSS JOIN LATERAL (SELECT (g - 1) / 4 + 1 AS org, ((((g - 1) / 4 + 1) * 5 + 3 * ((g - 1) % 4)) % 12) + 1 AS model) x
JOIN vend.machine_models mm ON mm.id = x.model;

INSERT INTO vend.planogram_slots (id, planogram_id, slot_code, product_id, capacity, par_level) OVERRIDING SYSTEM VALUE
SELECT (pg - 1) * 24 + s, pg, chr(64 + 1 + (s - 1) / 8) || ((s - 1) % 8 + 1),
       ((pg - 1) / 4 + 1) + :n_org * ((s * 7 + pg * 3) % 40),
       6 + (s * 5 + pg) % 10, (6 + (s * 5 + pg) % 10) / 2
FROM generate_series(1, :n_planograms) pg
CROSS JOIN generate_series(1, 24) s;

-- 30 machines per organization, placed at one of its 15 locations, running one of its 4 planograms.
INSERT INTO vend.machines (id, organization_id, location_id, machine_model_id, planogram_id, serial_number, status,
                           installed_at, last_seen_at, created_at, updated_at) OVERRIDING SYSTEM VALUE
SELECT g, x.org, x.org + :n_org * pg_temp.pick(g, 60, 15), p.machine_model_id, p.id,
       'VH-' || lpad(g::text, 7, '0'), x.status, x.installed_at,
       CASE WHEN x.status = 'retired' THEN x.installed_at + interval '400 days'
            ELSE '2025-11-30 23:59+00'::timestamptz - pg_temp.pick(g, 63, 3 * 24 * 60) * interval '1 minute' END,
       x.installed_at, '2025-11-01 00:00+00'::timestamptz
FROM generate_series(1, :n_machines) g
CROSS JOIN LATERAL (
    SELECT ((g - 1) % :n_org) + 1 AS org,
           CASE WHEN pg_temp.rnd(g, 62) < 0.94 THEN 'active' WHEN pg_temp.rnd(g, 62) < 0.97 THEN 'offline'
                WHEN pg_temp.rnd(g, 62) < 0.99 THEN 'maintenance' ELSE 'retired' END AS status,
           '2023-03-01 08:00+00'::timestamptz + pg_temp.pick(g, 64, 800) * interval '1 day' AS installed_at
) x
JOIN vend.planograms p ON p.id = (x.org - 1) * 4 + pg_temp.pick(g, 61, 4) + 1;

-- Plans for the big inserts below join these.
ANALYZE vend.organizations, vend.users, vend.locations, vend.products, vend.planograms, vend.planogram_slots,
        vend.machines;

INSERT INTO vend.inventory (id, machine_id, planogram_slot_id, product_id, quantity, capacity, updated_at)
OVERRIDING SYSTEM VALUE
SELECT (m.id - 1) * 24 + (ps.id - (m.planogram_id - 1) * 24), m.id, ps.id, ps.product_id,
       CASE WHEN m.status = 'retired' THEN 0 ELSE pg_temp.pick(m.id * 100 + ps.id, 70, ps.capacity + 1) END,
       ps.capacity,
       '2025-11-30 20:00+00'::timestamptz - pg_temp.pick(m.id * 100 + ps.id, 71, 3 * 24 * 60) * interval '1 minute'
FROM vend.machines m
JOIN vend.planogram_slots ps ON ps.planogram_id = m.planogram_id;

-- ---------------------------------------------------------------------------------------------
-- Field operations: refills every 3 days, cash collections weekly
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.refills (id, machine_id, performed_by, status, started_at, completed_at, notes) OVERRIDING SYSTEM VALUE
SELECT g, x.m, x.org + :n_org * (3 + pg_temp.pick(g, 81, 8)), x.status, x.started_at,
       CASE WHEN x.status = 'completed' THEN x.started_at + (10 + pg_temp.pick(g, 82, 35)) * interval '1 minute' END,
       CASE WHEN x.status = 'cancelled' THEN 'Site closed, no access' END
FROM generate_series(1, :n_refills) g
CROSS JOIN LATERAL (
    SELECT ((g - 1) % :n_machines) + 1 AS m, ((((g - 1) % :n_machines)) % :n_org) + 1 AS org,
           '2025-09-01 06:00+00'::timestamptz + ((g - 1) / :n_machines) * interval '3 days'
               + pg_temp.pick(g, 80, 12 * 60) * interval '1 minute' AS started_at,
           CASE WHEN pg_temp.rnd(g, 83) < 0.01 THEN 'cancelled'
                WHEN (g - 1) / :n_machines = 29 AND pg_temp.rnd(g, 84) < 0.05 THEN 'in_progress'
                ELSE 'completed' END AS status
) x;

-- 4 lines per refill, 4 different slots of the machine's planogram.
INSERT INTO vend.refill_items (id, refill_id, product_id, quantity, unit_cost) OVERRIDING SYSTEM VALUE
SELECT g, x.r, ps.product_id, 1 + pg_temp.pick(g, 90, 12), p.unit_cost
FROM generate_series(1, 4 * :n_refills) g
CROSS JOIN LATERAL (SELECT (g - 1) / 4 + 1 AS r, (g - 1) % 4 + 1 AS k) x
CROSS JOIN LATERAL (SELECT ((x.r - 1) % :n_machines) + 1 AS m, 1 + ((x.r * 5 + x.k * 7) % 24) AS s) y
JOIN vend.machines m ON m.id = y.m
JOIN vend.planogram_slots ps ON ps.id = (m.planogram_id - 1) * 24 + y.s
JOIN vend.products p ON p.id = ps.product_id;

INSERT INTO vend.cash_collections (id, machine_id, collected_by, collected_at, coin_amount, note_amount, total_amount)
OVERRIDING SYSTEM VALUE
SELECT g, x.m, x.org + :n_org * (3 + pg_temp.pick(g, 101, 8)),
       '2025-09-01 08:00+00'::timestamptz + (((g - 1) / :n_machines) * 7 + 6) * interval '1 day'
           + pg_temp.pick(g, 102, 8 * 60) * interval '1 minute',
       x.coins, x.notes, x.coins + x.notes
FROM generate_series(1, :n_collections) g
CROSS JOIN LATERAL (
    SELECT ((g - 1) % :n_machines) + 1 AS m, (((g - 1) % :n_machines) % :n_org) + 1 AS org,
           round((20 + pg_temp.rnd(g, 103) * 80)::numeric, 1) AS coins, 5.00 * pg_temp.pick(g, 104, 31) AS notes
) x;

-- ---------------------------------------------------------------------------------------------
-- Sales (busy machines sell more), cashless payments, price changes
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.sales (id, organization_id, location_id, machine_id, product_id, quantity, unit_price, total_amount,
                        tender, sold_at) OVERRIDING SYSTEM VALUE
SELECT g, m.organization_id, m.location_id, m.id, p.id, x.qty, p.price, x.qty * p.price, x.tender, x.sold_at
FROM generate_series(1, :n_sales) g
CROSS JOIN LATERAL (
    SELECT 1 + floor(:n_machines * power(pg_temp.rnd(g, 110), 1.3))::bigint AS m,
           1 + pg_temp.pick(g, 111, 24) AS s,
           CASE WHEN pg_temp.rnd(g, 112) < 0.05 THEN 2 ELSE 1 END AS qty,
           CASE WHEN pg_temp.rnd(g, 113) < 0.40 THEN 'cash' WHEN pg_temp.rnd(g, 113) < 0.85 THEN 'card' ELSE 'mobile' END AS tender,
           '2025-09-01 07:00+00'::timestamptz + ((g - 1)::bigint * 91 / :n_sales) * interval '1 day'
               + pg_temp.pick(g, 114, 14 * 3600) * interval '1 second' AS sold_at
) x
JOIN vend.machines m ON m.id = x.m
JOIN vend.planogram_slots ps ON ps.id = (m.planogram_id - 1) * 24 + x.s
JOIN vend.products p ON p.id = ps.product_id;

INSERT INTO vend.payments (id, sale_id, amount, currency, method, provider, provider_ref, status, refunded_amount,
                           captured_at) OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY s.id), s.id, s.total_amount, 'EUR', s.tender,
       CASE s.tender WHEN 'card' THEN 'adyen' ELSE 'stripe' END,
       CASE s.tender WHEN 'card' THEN 'psp_' ELSE 'pi_' END || md5('vendhub-payment-' || s.id),
       CASE WHEN pg_temp.rnd(s.id, 120) < 0.008 THEN 'refunded' ELSE 'captured' END,
       CASE WHEN pg_temp.rnd(s.id, 120) < 0.008 THEN s.total_amount ELSE 0 END,
       s.sold_at + (1 + pg_temp.pick(s.id, 121, 4)) * interval '1 second'
FROM vend.sales s
WHERE s.tender <> 'cash';

INSERT INTO vend.price_changes (id, product_id, old_price, new_price, changed_by, changed_at, reason) OVERRIDING SYSTEM VALUE
SELECT g, p.id, (p.price - 0.10 * (1 + pg_temp.pick(g, 131, 3)))::double precision, p.price,
       p.organization_id + :n_org * (1 + pg_temp.pick(g, 132, 2)),
       '2025-09-01 00:00+00'::timestamptz + pg_temp.pick(g, 133, 91 * 24 * 60) * interval '1 minute',
       (ARRAY['Supplier price increase', 'Annual price review', 'Promotion ended', 'Site-specific pricing'])[1 + pg_temp.pick(g, 134, 4)]
FROM generate_series(1, :n_price_changes) g
JOIN vend.products p ON p.id = 1 + pg_temp.pick(g, 130, :n_products);

-- ---------------------------------------------------------------------------------------------
-- Maintenance tickets and comments
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.maintenance_tickets (id, organization_id, machine_id, opened_by, assigned_to, status, priority, title,
                                      description, opened_at, resolved_at) OVERRIDING SYSTEM VALUE
SELECT g, x.org, x.m, x.org + :n_org * pg_temp.pick(g, 141, 15),
       CASE WHEN x.status = 'open' AND pg_temp.rnd(g, 142) < 0.5 THEN NULL ELSE x.org + :n_org * (11 + pg_temp.pick(g, 143, 2)) END,
       x.status,
       CASE WHEN pg_temp.rnd(g, 144) < 0.20 THEN 'low' WHEN pg_temp.rnd(g, 144) < 0.75 THEN 'normal'
            WHEN pg_temp.rnd(g, 144) < 0.95 THEN 'high' ELSE 'urgent' END,
       x.title, 'Reported via ' || (ARRAY['app', 'phone', 'telemetry alert', 'site contact'])[1 + pg_temp.pick(g, 145, 4)],
       x.opened_at,
       CASE WHEN x.status IN ('resolved', 'closed') THEN x.opened_at + (60 + pg_temp.pick(g, 146, 72 * 60)) * interval '1 minute' END
FROM generate_series(1, :n_tickets) g
CROSS JOIN LATERAL (
    SELECT 1 + pg_temp.pick(g, 140, :n_machines) AS m,
           (pg_temp.pick(g, 140, :n_machines) % :n_org) + 1 AS org,
           '2025-09-01 00:00+00'::timestamptz + ((g - 1)::bigint * 91 * 86400 / :n_tickets) * interval '1 second' AS opened_at,
           CASE WHEN (g - 0.5) / :n_tickets * 91 > 81
                THEN CASE WHEN pg_temp.rnd(g, 147) < 0.5 THEN 'open' WHEN pg_temp.rnd(g, 147) < 0.8 THEN 'in_progress' ELSE 'resolved' END
                ELSE CASE WHEN pg_temp.rnd(g, 147) < 0.03 THEN 'open' WHEN pg_temp.rnd(g, 147) < 0.05 THEN 'in_progress'
                          WHEN pg_temp.rnd(g, 147) < 0.60 THEN 'closed' ELSE 'resolved' END
           END AS status,
           (ARRAY['Coin mechanism jammed', 'Card reader offline', 'Cooling unit fault', 'Spiral motor stuck',
                  'Display not working', 'Door sensor error', 'Bill validator rejects notes',
                  'Network connectivity lost'])[1 + pg_temp.pick(g, 148, 8)] AS title
) x;

INSERT INTO vend.ticket_comments (id, ticket_id, author_id, body, created_at) OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY t.id, k), t.id,
       CASE WHEN k % 2 = 0 THEN coalesce(t.assigned_to, t.opened_by) ELSE t.opened_by END,
       (ARRAY['On site, investigating.', 'Part ordered, machine stays in service.', 'Customer reports it again.',
              'Replaced the part, tested 5 vends.', 'Waiting for site access.', 'Remote reset did not help.'])[1 + pg_temp.pick(t.id * 10 + k, 150, 6)],
       t.opened_at + k * interval '2 hours'
FROM vend.maintenance_tickets t
CROSS JOIN generate_series(1, 1 + (t.id % 5)::int) k;

-- ---------------------------------------------------------------------------------------------
-- Audit trail, telemetry, legacy import staging
-- ---------------------------------------------------------------------------------------------

INSERT INTO vend.audit_log (id, organization_id, actor_user_id, action, entity_type, entity_id, details, created_at)
OVERRIDING SYSTEM VALUE
SELECT g, x.org, CASE WHEN pg_temp.rnd(g, 161) < 0.1 THEN NULL ELSE x.org + :n_org * pg_temp.pick(g, 162, 15) END,
       a.action, a.entity_type, 1 + pg_temp.pick(g, 163, 1000),
       jsonb_build_object('ip', '10.' || pg_temp.pick(g, 164, 256) || '.' || pg_temp.pick(g, 165, 256) || '.' || pg_temp.pick(g, 166, 256),
                          'user_agent', 'vendhub-web/3.' || pg_temp.pick(g, 167, 20)),
       '2025-09-01 00:00+00'::timestamptz + ((g - 1)::bigint * 91 * 86400 / :n_audit) * interval '1 second'
FROM generate_series(1, :n_audit) g
CROSS JOIN LATERAL (SELECT ((g - 1) % :n_org) + 1 AS org, 1 + pg_temp.pick(g, 160, 6) AS a_no) x
JOIN (VALUES (1, 'user.login', 'user'), (2, 'machine.update', 'machine'), (3, 'price.change', 'product'),
             (4, 'planogram.publish', 'planogram'), (5, 'refill.complete', 'refill'), (6, 'ticket.close', 'maintenance_ticket'))
     AS a(no, action, entity_type) ON a.no = x.a_no;

-- Spread over 92 days: the last day (2025-12-01) arrives before its partition exists and lands in the
-- default partition.
INSERT INTO vend.telemetry_events (id, machine_id, created_at, event_type, temperature_c, payload) OVERRIDING SYSTEM VALUE
SELECT g, x.m, '2025-09-01 00:00+00'::timestamptz + ((g - 1)::bigint * 92 * 86400 / :n_telemetry) * interval '1 second',
       x.event_type,
       CASE WHEN x.event_type = 'temperature' THEN round((3 + pg_temp.rnd(g, 172) * 5)::numeric, 2) END,
       jsonb_build_object('fw', '4.2.' || (x.m % 7), 'rssi', -50 - pg_temp.pick(g, 173, 40))
FROM generate_series(1, :n_telemetry) g
CROSS JOIN LATERAL (
    SELECT 1 + pg_temp.pick(g, 170, :n_machines) AS m,
           CASE WHEN pg_temp.rnd(g, 171) < 0.60 THEN 'heartbeat' WHEN pg_temp.rnd(g, 171) < 0.85 THEN 'temperature'
                WHEN pg_temp.rnd(g, 171) < 0.89 THEN 'door_open' WHEN pg_temp.rnd(g, 171) < 0.93 THEN 'door_close'
                WHEN pg_temp.rnd(g, 171) < 0.96 THEN 'error' WHEN pg_temp.rnd(g, 171) < 0.98 THEN 'coin_jam'
                WHEN pg_temp.rnd(g, 171) < 0.995 THEN 'low_stock' ELSE 'power_loss' END AS event_type
) x;

INSERT INTO vend.legacy_imports (source_file, line_no, machine_serial, exported_at, raw_record, loaded_at)
SELECT 'vendcloud_export_2025-08_part' || ((g - 1) / 500 + 1) || '.csv', (g - 1) % 500 + 2,
       'VH-' || lpad(x.m::text, 7, '0'),
       '2025-08-01 00:00'::timestamp + pg_temp.pick(g, 181, 31 * 24 * 3600) * interval '1 second',
       jsonb_build_object('sku', 'SKU-' || lpad(pg_temp.pick(g, 182, 40)::text, 4, '0'), 'qty', 1,
                          'price_eur', to_char(1 + pg_temp.pick(g, 183, 30) * 0.1, 'FM0.00'), 'terminal', 'VC' || x.m),
       '2025-09-02 10:00+00'::timestamptz
FROM generate_series(1, :n_legacy) g
CROSS JOIN LATERAL (SELECT 1 + pg_temp.pick(g, 180, :n_machines) AS m) x;

-- ---------------------------------------------------------------------------------------------
-- Indexes and foreign keys back (each FK is validated against all loaded rows)
-- ---------------------------------------------------------------------------------------------

SELECT def FROM deferred_indexes ORDER BY name \gexec
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, name, def) FROM deferred_fks ORDER BY tbl, name \gexec

-- ---------------------------------------------------------------------------------------------
-- Identity sequences continue after the loaded ids
-- ---------------------------------------------------------------------------------------------

DO $$
DECLARE
    r  record;
    mx bigint;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, a.attname,
               pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) AS seq
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'vend' AND a.attidentity <> '' AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    LOOP
        EXECUTE format('SELECT max(%I) FROM %s', r.attname, r.rel) INTO mx;
        PERFORM setval(r.seq, coalesce(mx, 1), mx IS NOT NULL);
    END LOOP;
END
$$;

COMMIT;

-- Reconnect (the loading session flushes its statistics as it ends), then start this database's
-- statistics counters from zero: the load's own scans must not count as application traffic in the
-- usage checks (IDX005, IDX007). Needs the right to call pg_stat_reset() (superuser by default);
-- without it the counters are left as they are.
\connect
SELECT has_function_privilege('pg_catalog.pg_stat_reset()', 'EXECUTE') AS can_reset_stats \gset
\if :can_reset_stats
SELECT pg_stat_reset() AS stats_reset \gset
\else
\echo 'seed.sql: no privilege to call pg_stat_reset(); the load''s scans stay in pg_stat_user_tables'
\endif

-- Statistics and visibility map for every table (partitioned parents included: autovacuum never
-- analyzes those).
SELECT format('VACUUM (ANALYZE) %s', c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'vend' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname \gexec

\echo 'seeded vend (rows per table):'
SELECT c.relname AS "table", sum(coalesce(p.reltuples, c.reltuples))::bigint AS "rows"
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhparent = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhrelid
WHERE n.nspname = 'vend' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
GROUP BY c.relname
ORDER BY 1;
