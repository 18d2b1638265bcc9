"""Read-only point lookups by primary key on a pgbench-like accounts table (schema pgready_load).

The plugin creates and drops the table around the run (workload = "point"); the key range comes in the
run spec (spec["dataset"]["accounts"]).
"""

import random

from locust import task

from pytest_pgready.workload.user import PgUser

POINT = "SELECT val FROM pgready_load.accounts WHERE aid = %s"


class PointUser(PgUser):
    @task
    def point(self) -> None:
        n = int(self.spec["dataset"]["accounts"])
        self.sql("point", POINT, (random.randint(1, n),))
