"""The pgbench TPC-B-like transaction on the pgready_load tables: three updates, a select and an insert,
committed together and timed as one request ("tpcb"). Writes: it is what makes replication lag move."""

import random

from locust import task

from pytest_pgready.workload.user import PgUser

UPDATE_ACCOUNT = "UPDATE pgready_load.accounts SET val = val + %s WHERE aid = %s"
SELECT_ACCOUNT = "SELECT val FROM pgready_load.accounts WHERE aid = %s"
UPDATE_TELLER = "UPDATE pgready_load.tellers SET val = val + %s WHERE tid = %s"
UPDATE_BRANCH = "UPDATE pgready_load.branches SET val = val + %s WHERE bid = %s"
INSERT_HISTORY = "INSERT INTO pgready_load.history (tid, bid, aid, delta) VALUES (%s, %s, %s, %s)"


class TpcbUser(PgUser):
    @task
    def tpcb(self) -> None:
        ds = self.spec["dataset"]
        aid = random.randint(1, int(ds["accounts"]))
        bid = random.randint(1, int(ds["branches"]))
        tid = random.randint(1, int(ds["tellers"]))
        delta = random.randint(-5000, 5000)
        with self.transaction("tpcb") as cur:
            cur.execute(UPDATE_ACCOUNT, (delta, aid))
            cur.execute(SELECT_ACCOUNT, (aid,))
            cur.fetchone()
            cur.execute(UPDATE_TELLER, (delta, tid))
            cur.execute(UPDATE_BRANCH, (delta, bid))
            cur.execute(INSERT_HISTORY, (tid, bid, aid, delta))
