"""The suite's own servers work as users' servers would: password auth, a real S3 API."""

from __future__ import annotations

import httpx
import pytest

from tests.distributed._servers import MotoServer, PostgresServer
from tests.distributed.conftest import need

psycopg = need("psycopg")


def test_postgres_accepts_the_right_password_and_refuses_a_wrong_one(
    postgres: PostgresServer, pg_url: str
) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres.url(password="wrong"), connect_timeout=5)


def test_moto_serves_s3_through_s3fs(moto: MotoServer, bucket: str, s3_env: dict[str, str]) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)  # endpoint and keys from the environment only
    fs.pipe_file(f"{bucket}/a/b.txt", b"hello")
    assert moto.objects(bucket) == {"a/b.txt": 5}


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_server_that_cannot_start_skips_with_the_reason_but_fails_under_ci(
    ci: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.distributed.conftest import unavailable

    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="cannot start PostgreSQL: no binaries"):
        unavailable("cannot start PostgreSQL: no binaries")


def test_moto_keeps_answering_after_its_log_outgrows_a_pipe_buffer(moto: MotoServer, bucket: str) -> None:
    """moto logs a line per request; with stderr on a pipe nobody read, ~64 kB of log blocked the server
    mid-suite. 1,500 requests write well over that; the server must still answer, and the log is kept."""
    with httpx.Client(base_url=moto.endpoint, timeout=10.0) as http:
        for index in range(1_500):
            http.head(f"/{bucket}/missing-{index:05d}-" + "x" * 40)
    assert moto.objects(bucket) == {}
    assert len(moto.log()) > 64 * 1024, "the flood wrote more than a pipe holds"
