"""The suite's own servers work as users' servers would: password auth, a real S3 API."""

from __future__ import annotations

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
