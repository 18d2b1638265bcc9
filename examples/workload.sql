-- VendHub representative application queries (the shapes the load workload will drive).
--
--   psql -v ON_ERROR_STOP=1 -f examples/workload.sql                                  # defaults below
--   psql -v ON_ERROR_STOP=1 -v machine_id=120 -v org_id=4 -f examples/workload.sql    # other values
--
-- Plain SQL with psql :variables; a Locust user replaces each :name with a bind parameter ($n / %s) and
-- draws the values from the ranges below (which hold for every seed scale; n_org = round(10 × scale)).
-- W3 WRITES: it sells one item (inventory - 1, a sale, a payment). The rest is read-only.
--
-- Variables (default; valid range):
--   :org_id        1                          organization, 1 .. n_org
--   :machine_id    17                         machine, 1 .. 30 × n_org (machine k belongs to org ((k-1) % n_org) + 1)
--   :location_id   7                          location, 1 .. 15 × n_org
--   :slot_id       planogram slot of :machine_id that still has stock (looked up when not given)
--   :since         '2025-11-24 00:00:00+00'  start of the "recent" window (seed data: 2025-09-01 .. 2025-11-30)
--   :until         '2025-12-01 00:00:00+00'  end of the reporting window
--   :tender        'card'                     'card' or 'mobile' (cash sales have no payment row)
--   :provider_ref  'psp_wl_<md5 of now>'      the payment provider's reference, unique per payment
--
-- Run as vend_app (search_path vend, statement_timeout 5s): every name is schema-qualified anyway.

\set ON_ERROR_STOP on
\if :{?org_id}
\else
\set org_id 1
\endif
\if :{?machine_id}
\else
\set machine_id 17
\endif
\if :{?location_id}
\else
\set location_id 7
\endif
\if :{?since}
\else
\set since '2025-11-24 00:00:00+00'
\endif
\if :{?until}
\else
\set until '2025-12-01 00:00:00+00'
\endif
\if :{?tender}
\else
\set tender card
\endif
\if :{?provider_ref}
\else
SELECT 'psp_wl_' || md5(clock_timestamp()::text) AS provider_ref \gset
\endif
\if :{?slot_id}
\else
SELECT planogram_slot_id AS slot_id FROM vend.inventory
WHERE machine_id = :machine_id AND quantity > 0 ORDER BY planogram_slot_id LIMIT 1 \gset
\endif

-- W1. Point lookup: a machine's current inventory, slot by slot (operator app, machine screen).
\echo W1 machine inventory
SELECT ps.slot_code, p.sku, p.name, i.quantity, i.capacity, ps.par_level, i.updated_at
FROM vend.inventory i
JOIN vend.planogram_slots ps ON ps.id = i.planogram_slot_id
JOIN vend.products p ON p.id = i.product_id
WHERE i.machine_id = :machine_id
ORDER BY ps.slot_code;

-- W2. Recent sales of a location, newest first (site manager dashboard).
\echo W2 recent sales of a location
SELECT s.id, s.sold_at, m.serial_number, p.name AS product, s.quantity, s.total_amount, s.tender
FROM vend.sales s
JOIN vend.machines m ON m.id = s.machine_id
JOIN vend.products p ON p.id = s.product_id
WHERE s.location_id = :location_id
  AND s.sold_at >= :'since'
ORDER BY s.sold_at DESC
LIMIT 50;

-- W3. Record a cashless sale: decrement the slot, insert the sale and its payment, in one transaction.
-- When the UPDATE returns no row the slot is sold out and the application rolls back (psql stops
-- here with "no rows returned for \gset").
\echo W3 record a sale and its payment
BEGIN;
UPDATE vend.inventory
   SET quantity = quantity - 1
 WHERE machine_id = :machine_id AND planogram_slot_id = :slot_id AND quantity > 0
RETURNING product_id \gset
INSERT INTO vend.sales (organization_id, location_id, machine_id, product_id, quantity, unit_price, total_amount,
                        tender, sold_at)
SELECT m.organization_id, m.location_id, m.id, p.id, 1, p.price, p.price, :'tender', now()
FROM vend.machines m
JOIN vend.products p ON p.id = :product_id
WHERE m.id = :machine_id
RETURNING id AS sale_id, total_amount \gset
INSERT INTO vend.payments (sale_id, amount, currency, method, provider, provider_ref, status, captured_at)
VALUES (:sale_id, :total_amount, 'EUR', :'tender', 'adyen', :'provider_ref', 'captured', now())
RETURNING id AS payment_id, sale_id, amount;
COMMIT;

-- W4. Open maintenance tickets of an organization, most urgent first (technician dispatch board).
\echo W4 open maintenance tickets of an organization
SELECT t.id, t.priority, t.status, t.title, t.opened_at, m.serial_number, l.name AS location,
       u.full_name AS assignee
FROM vend.maintenance_tickets t
JOIN vend.machines m ON m.id = t.machine_id
JOIN vend.locations l ON l.id = m.location_id
LEFT JOIN vend.users u ON u.id = t.assigned_to
WHERE t.organization_id = :org_id
  AND t.status IN ('open', 'in_progress')
ORDER BY CASE t.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END, t.opened_at
LIMIT 100;

-- W5. Daily revenue of an organization over a window (finance report).
\echo W5 daily revenue of an organization
SELECT date_trunc('day', s.sold_at AT TIME ZONE 'UTC') AS day, count(*) AS sales, sum(s.total_amount) AS revenue
FROM vend.sales s
WHERE s.organization_id = :org_id
  AND s.sold_at >= :'since' AND s.sold_at < :'until'
GROUP BY 1
ORDER BY 1;

-- W6. Refill worklist: the organization's active machines with slots below par level (route planning).
\echo W6 refill worklist of an organization
SELECT m.id, m.serial_number, l.name AS location, count(*) AS slots_below_par
FROM vend.machines m
JOIN vend.inventory i ON i.machine_id = m.id
JOIN vend.planogram_slots ps ON ps.id = i.planogram_slot_id
JOIN vend.locations l ON l.id = m.location_id
WHERE m.organization_id = :org_id AND m.status = 'active' AND i.quantity < ps.par_level
GROUP BY m.id, m.serial_number, l.name
ORDER BY slots_below_par DESC, m.id
LIMIT 20;

-- W7. Latest telemetry of a machine (partition pruning on created_at).
\echo W7 latest telemetry of a machine
SELECT created_at, event_type, temperature_c, payload
FROM vend.telemetry_events
WHERE machine_id = :machine_id AND created_at >= :'since'
ORDER BY created_at DESC
LIMIT 20;
