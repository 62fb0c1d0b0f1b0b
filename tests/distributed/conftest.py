"""Fixtures of the distributed suite: one PostgreSQL cluster and one S3 endpoint per session.

A server that cannot be started skips the tests that need it, with the reason, on a user's machine;
under ``CI=true`` the same is a failure, so CI can never go green by skipping the suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.distributed._servers import MotoServer, PostgresServer, ServerUnavailable


def unavailable(reason: str) -> NoReturn:
    """Skip with the reason; under CI=true fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        unavailable(f"psycopg is not installed ({exc}); run tox -e distributed")
    try:
        server = PostgresServer()
        server.__enter__()
    except (ServerUnavailable, OSError) as exc:
        unavailable(f"cannot start PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.__exit__()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh database for one test."""
    return postgres.create_database("t_" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    try:
        import s3fs  # noqa: F401
    except ImportError as exc:
        unavailable(f"s3fs is not installed ({exc}); run tox -e distributed")
    try:
        server = MotoServer().__enter__()
    except ServerUnavailable as exc:
        unavailable(f"cannot start the S3 endpoint: {exc}")
    try:
        yield server
    finally:
        server.__exit__()


@pytest.fixture
def s3_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS variables pointing at the moto endpoint, set in this process and returned for children."""
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    return moto.env


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    """A fresh, empty bucket."""
    name = "b-" + uuid.uuid4().hex[:12]
    moto.create_bucket(name)
    return name
