"""The suite's own servers work as users' servers would: password auth, a real S3 API."""

from __future__ import annotations

import psycopg
import pytest

from tests.distributed._servers import MotoServer, PostgresServer


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
