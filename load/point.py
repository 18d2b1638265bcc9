"""Read-only point lookups by primary key on a pgbench-like accounts table (schema pgready_load).

The plugin creates and drops the table around the run (workload = "point"); the key range comes in the
run spec (spec["dataset"]["accounts"]). The same query as pgbench's `SELECT val … WHERE aid = :aid`
(benchmarks/bench_load.py runs both).
"""

import random

from locust import task

from pytest_pgready.workload.user import PgUser

POINT = "SELECT val FROM pgready_load.accounts WHERE aid = %s"


class PointUser(PgUser):
    def on_start(self) -> None:
        self.accounts = int(self.spec["dataset"]["accounts"])
        super().on_start()

    @task
    def point(self) -> None:
        self.sql("point", POINT, (1 + int(random.random() * self.accounts),))  # randint, at a fifth of the cost
