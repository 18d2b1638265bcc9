"""Calibration workload: `SELECT 1` at saturation. Its throughput is the harness ceiling (PERF006):
no server work to speak of, so what limits it is the load generator itself."""

from locust import task

from pytest_pgready.workload.user import PgUser


class Select1User(PgUser):
    @task
    def select1(self) -> None:
        self.sql("select1", "SELECT 1")
