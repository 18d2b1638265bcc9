"""Every shape a secret takes in text we print is masked."""

import pytest

from pytest_pgready.redact import redact_dsn, redact_obj, redact_text, remember_secret


@pytest.mark.parametrize("raw, secret", [
    ("postgresql://app:s3cr3t-pw@db:5432/shop", "s3cr3t-pw"),
    ("postgres://app:s3cr3t-pw@db/shop?sslmode=require", "s3cr3t-pw"),
    ("postgresql://app@db/shop?password=s3cr3t-pw", "s3cr3t-pw"),
    ("host=db user=app password=s3cr3t-pw dbname=shop", "s3cr3t-pw"),
    ("host=db password='s3 cr3t pw' dbname=shop", "s3 cr3t pw"),
])
def test_dsn_forms(raw, secret):
    assert secret not in redact_dsn(raw)
    assert secret not in redact_text(f"could not connect with {raw}: refused")


@pytest.mark.parametrize("text, secret", [
    ("PGPASSWORD=hunter2-xyz pg_dump -h db", "hunter2-xyz"),
    ("ALTER ROLE app PASSWORD 'hunter2-xyz'", "hunter2-xyz"),
    ("CREATE ROLE app LOGIN PASSWORD 'it''s-hunter2'", "it''s-hunter2"),
    ("primary_conninfo = 'host=p user=r password=hunter2-xyz'", "hunter2-xyz"),
])
def test_free_text_forms(text, secret):
    assert secret not in redact_text(text)


def test_remembered_secret_is_masked_anywhere():
    remember_secret("pw-only-seen-once-77")
    out = redact_obj({"evidence": ["failed: pw-only-seen-once-77 rejected"], "k": {"pw-only-seen-once-77": 1}})
    assert "pw-only-seen-once-77" not in repr(out)


def test_pgpassword_env_is_masked(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "env-secret-991")
    assert "env-secret-991" not in redact_text("auth with env-secret-991 failed")
