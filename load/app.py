"""The VendHub application workload (examples/workload.sql W1–W7) on the `vend` schema.

Load the example first (--pgready-init-sql examples/schema.sql, examples/roles.sql, examples/seed.sql).
Each query is one request named after it (W1 … W7); W3 sells one item in one transaction (writes).
Value ranges follow workload.sql: org 1..n_org, machine 1..30·n_org, location 1..15·n_org, read once
from the database so any seed scale works. The mix leans on reads like the real application does.
"""

import random
import uuid

from locust import task

from pytest_pgready.workload.user import PgUser, Rollback

SINCE = "2025-11-24 00:00:00+00"
UNTIL = "2025-12-01 00:00:00+00"
RANGES = "SELECT (SELECT max(id) FROM vend.organizations), (SELECT max(id) FROM vend.machines), " \
         "(SELECT max(id) FROM vend.locations)"

W1 = """SELECT ps.slot_code, p.sku, p.name, i.quantity, i.capacity, ps.par_level, i.updated_at
FROM vend.inventory i
JOIN vend.planogram_slots ps ON ps.id = i.planogram_slot_id
JOIN vend.products p ON p.id = i.product_id
WHERE i.machine_id = %(machine_id)s
ORDER BY ps.slot_code"""

W2 = """SELECT s.id, s.sold_at, m.serial_number, p.name AS product, s.quantity, s.total_amount, s.tender
FROM vend.sales s
JOIN vend.machines m ON m.id = s.machine_id
JOIN vend.products p ON p.id = s.product_id
WHERE s.location_id = %(location_id)s AND s.sold_at >= %(since)s
ORDER BY s.sold_at DESC
LIMIT 50"""

W3_SLOT = """SELECT planogram_slot_id FROM vend.inventory
WHERE machine_id = %(machine_id)s AND quantity > 0 ORDER BY planogram_slot_id LIMIT 1"""
W3_TAKE = """UPDATE vend.inventory SET quantity = quantity - 1
WHERE machine_id = %(machine_id)s AND planogram_slot_id = %(slot_id)s AND quantity > 0
RETURNING product_id"""
W3_SALE = """INSERT INTO vend.sales (organization_id, location_id, machine_id, product_id, quantity, unit_price,
                        total_amount, tender, sold_at)
SELECT m.organization_id, m.location_id, m.id, p.id, 1, p.price, p.price, %(tender)s, now()
FROM vend.machines m JOIN vend.products p ON p.id = %(product_id)s
WHERE m.id = %(machine_id)s
RETURNING id, total_amount"""
W3_PAY = """INSERT INTO vend.payments (sale_id, amount, currency, method, provider, provider_ref, status, captured_at)
VALUES (%(sale_id)s, %(amount)s, 'EUR', %(tender)s, 'adyen', %(provider_ref)s, 'captured', now())"""

W4 = """SELECT t.id, t.priority, t.status, t.title, t.opened_at, m.serial_number, l.name AS location,
       u.full_name AS assignee
FROM vend.maintenance_tickets t
JOIN vend.machines m ON m.id = t.machine_id
JOIN vend.locations l ON l.id = m.location_id
LEFT JOIN vend.users u ON u.id = t.assigned_to
WHERE t.organization_id = %(org_id)s AND t.status IN ('open', 'in_progress')
ORDER BY CASE t.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END, t.opened_at
LIMIT 100"""

W5 = """SELECT date_trunc('day', s.sold_at AT TIME ZONE 'UTC') AS day, count(*) AS sales, sum(s.total_amount) AS revenue
FROM vend.sales s
WHERE s.organization_id = %(org_id)s AND s.sold_at >= %(since)s AND s.sold_at < %(until)s
GROUP BY 1
ORDER BY 1"""

W6 = """SELECT m.id, m.serial_number, l.name AS location, count(*) AS slots_below_par
FROM vend.machines m
JOIN vend.inventory i ON i.machine_id = m.id
JOIN vend.planogram_slots ps ON ps.id = i.planogram_slot_id
JOIN vend.locations l ON l.id = m.location_id
WHERE m.organization_id = %(org_id)s AND m.status = 'active' AND i.quantity < ps.par_level
GROUP BY m.id, m.serial_number, l.name
ORDER BY slots_below_par DESC, m.id
LIMIT 20"""

W7 = """SELECT created_at, event_type, temperature_c, payload
FROM vend.telemetry_events
WHERE machine_id = %(machine_id)s AND created_at >= %(since)s
ORDER BY created_at DESC
LIMIT 20"""

_ranges: dict[str, int] = {}


class VendUser(PgUser):
    def on_start(self) -> None:
        super().on_start()
        if not _ranges and self.conn is not None:
            orgs, machines, locations = self.conn.execute(RANGES).fetchone()
            _ranges.update(orgs=orgs or 1, machines=machines or 1, locations=locations or 1)

    def _args(self) -> dict:
        r = _ranges or {"orgs": 1, "machines": 1, "locations": 1}
        return {"org_id": random.randint(1, r["orgs"]), "machine_id": random.randint(1, r["machines"]),
                "location_id": random.randint(1, r["locations"]), "since": SINCE, "until": UNTIL,
                "tender": random.choice(("card", "mobile"))}

    @task(30)
    def w1_machine_inventory(self) -> None:
        self.sql("W1 machine inventory", W1, self._args())

    @task(15)
    def w2_recent_sales(self) -> None:
        self.sql("W2 recent sales", W2, self._args())

    @task(20)
    def w3_sell(self) -> None:
        a = self._args()
        with self.transaction("W3 sell") as cur:
            slot = cur.execute(W3_SLOT, a).fetchone()
            if slot is None:
                raise Rollback()  # sold out: the application shows "empty", not an error
            a["slot_id"] = slot[0]
            taken = cur.execute(W3_TAKE, a).fetchone()
            if taken is None:
                raise Rollback()  # someone bought the last one first
            a["product_id"] = taken[0]
            a["sale_id"], a["amount"] = cur.execute(W3_SALE, a).fetchone()
            a["provider_ref"] = f"psp_pgready_{uuid.uuid4().hex}"
            cur.execute(W3_PAY, a)

    @task(10)
    def w4_open_tickets(self) -> None:
        self.sql("W4 open tickets", W4, self._args())

    @task(5)
    def w5_daily_revenue(self) -> None:
        self.sql("W5 daily revenue", W5, self._args())

    @task(5)
    def w6_refill_worklist(self) -> None:
        self.sql("W6 refill worklist", W6, self._args())

    @task(15)
    def w7_latest_telemetry(self) -> None:
        self.sql("W7 latest telemetry", W7, self._args())
