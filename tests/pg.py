"""A throwaway PostgreSQL server for the tests, from the machine's own binaries (no mocks).

    server = PgServer.start()        # initdb in a temp folder, pg_ctl start on a free port
    url = server.fresh_database()    # CREATE DATABASE … TEMPLATE <migrated template>
    server.restart()                 # pg_ctl stop -m fast, start again on the same port
    server.stop()

Invariants: the server listens on 127.0.0.1 and a socket in its own folder only, trusts local
connections (user `postgres`), runs with fsync off, keeps its data in memory (/dev/shm, when it
has room: a database is copied in ~20 ms there, ~300 ms on this disk), and is stopped and
removed at the end of the session; each test's database is dropped after the test. As root
(CI and these machines) it runs as the `postgres` user that Debian's package creates, since
PostgreSQL refuses to run as root. `find_bindir()` is None when no
binaries are installed: the tests then skip, except under CI (env `CI` set), where they fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
TEMPLATE = "sora_template"


def find_bindir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: `pg_config --bindir`, else Debian's
    /usr/lib/postgresql/<version>/bin (newest), else PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    candidates += [Path(p) for p in debian]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _reap_orphans() -> None:
    """Stop and remove the servers of test sessions that died without stopping theirs (killed
    by a timeout): their folder names an owner process that is gone."""
    bindir = find_bindir()
    for base in {tempfile.gettempdir(), "/dev/shm"}:
        for folder in Path(base).glob("sora-pg-*"):
            try:
                owner = int((folder / "owner").read_text())
                os.kill(owner, 0)
                continue  # its session is alive
            except ProcessLookupError:
                pass
            except (OSError, ValueError):
                continue  # not ours to judge (no owner file, or another user's)
            if bindir is not None and (folder / "data" / "postmaster.pid").exists():
                as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
                stop = [*as_user, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m"]
                subprocess.run([*stop, "immediate", "-w", "stop"], capture_output=True, check=False)
            shutil.rmtree(folder, ignore_errors=True)


def _memory_dir() -> str | None:
    """/dev/shm when it is there with 1 GiB free (a container's is often 64 MB), else None
    (the usual temp folder)."""
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if stat.f_bavail * stat.f_frsize >= 1 << 30 else None


def _version(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end on its own loop in a worker thread (from sync fixtures,
    whatever loop the test runner has)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class PgServer:
    bindir: Path
    folder: Path
    port: int
    _as_user: list[str] = field(default_factory=list)
    _databases: int = 0
    _copy: str = ""  # " STRATEGY FILE_COPY" from PostgreSQL 15 on: about twice as fast here

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PgServer:
        bindir = find_bindir()
        if bindir is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl)")
        _reap_orphans()
        folder = Path(tempfile.mkdtemp(prefix="sora-pg-", dir=_memory_dir()))
        (folder / "owner").write_text(str(os.getpid()))
        as_user: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")  # KeyError: no postgres user to run it as
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(bindir, folder, free_port(), as_user)
        server._run(
            "initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "--locale=C",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        server._pg_ctl_start()
        run_async(server._make_template())
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.bindir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stderr or done.stdout}"
            )

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, *, remove: bool = True) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if remove:
            shutil.rmtree(self.folder, ignore_errors=True)

    def restart(self) -> None:
        """Stop (fast: every connection is cut) and start again on the same port and data."""
        self.stop(remove=False)
        self._pg_ctl_start()

    async def _make_template(self) -> None:
        from bot.infra.store import open_store

        version = int(await self._admin("SHOW server_version_num") or 0)
        self._copy = " STRATEGY FILE_COPY" if version >= 150000 else ""
        await self._admin(f"CREATE DATABASE {TEMPLATE}")
        store = await open_store(self.url(TEMPLATE), pool_size=1)
        await store.close()

    async def _admin(self, sql: str) -> str | None:
        """One statement on the `postgres` database; the first value it returns, as text."""
        import asyncpg

        conn = await asyncpg.connect(self.url("postgres"))
        try:
            value = await conn.fetchval(sql)
            return None if value is None else str(value)
        finally:
            await conn.close()

    def fresh_database(self) -> str:
        """A new database, already migrated (a copy of the template): its URL."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}_{int(time.time() * 1000) % 100000}"
        run_async(self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}{self._copy}"))
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a test's database (its connections, if a test left any, are cut)."""
        name = url.rsplit("/", 1)[-1]
        run_async(self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def empty_database(self) -> str:
        """A new database with no schema at all (migration tests): its URL."""
        self._databases += 1
        name = f"e{os.getpid()}_{self._databases}_{int(time.time() * 1000) % 100000}"
        run_async(self._admin(f"CREATE DATABASE {name} TEMPLATE template0"))
        return self.url(name)
