"""The digits benchmark's SQLite store: one cache shared by every process on the machine, plus read-only
tables shipped with the package.

Every row is keyed by (protocol key, architecture hash, repeat), so results of different protocols never
mix in one file. Parallel processes coordinate through a `claims` table: whoever inserts the claim
trains, the others poll for the result; claims of dead processes (or older than `stale_after_s`) are
taken over. Connections are in autocommit mode and every write opens its own BEGIN IMMEDIATE, so no
deferred read->write upgrade can fail with SQLITE_BUSY without consulting the busy handler.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.truth.digits_protocol import DigitsError

log = logging.getLogger(__name__)

__all__ = [
    "RESULT_COLS",
    "SCHEMA_VERSION",
    "SHIPPED_DIR",
    "DigitsCacheError",
    "DigitsStore",
    "connect",
    "connect_readonly",
    "create_schema",
    "default_cache_path",
    "pid_alive",
    "shipped_tables",
    "write_transaction",
]

SCHEMA_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_GLOB = "digits_space*.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS protocols (protocol_key TEXT PRIMARY KEY, protocol_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    protocol_key TEXT NOT NULL, arch_hash TEXT NOT NULL, repeat INTEGER NOT NULL,
    valid_acc REAL NOT NULL, test_acc REAL NOT NULL, train_seconds REAL, cpu_seconds REAL,
    params INTEGER, created REAL NOT NULL,
    PRIMARY KEY (protocol_key, arch_hash, repeat)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS specs (arch_hash TEXT PRIMARY KEY, matrix TEXT NOT NULL, ops TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    protocol_key TEXT NOT NULL, arch_hash TEXT NOT NULL, repeat INTEGER NOT NULL,
    owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, claimed REAL NOT NULL,
    PRIMARY KEY (protocol_key, arch_hash, repeat)
);
CREATE TABLE IF NOT EXISTS spaces (
    protocol_key TEXT NOT NULL, space INTEGER NOT NULL, complete INTEGER NOT NULL, n_models INTEGER,
    best_hash TEXT, best_test_error REAL, best_valid_error REAL, marked REAL,
    PRIMARY KEY (protocol_key, space)
);
"""

# A stored repeat, as every read returns it: (repeat, valid_acc, test_acc, train_seconds, cpu_seconds,
# params).
RESULT_COLS = "repeat, valid_acc, test_acc, train_seconds, cpu_seconds, params"


class DigitsCacheError(DigitsError):
    """The SQLite cache cannot be opened or is not a digits cache."""


def default_cache_path() -> Path:
    """$NB1SHOT1_CACHE/digits.sqlite or the user cache directory's digits.sqlite."""
    env = os.environ.get("NB1SHOT1_CACHE")
    if env:
        return Path(env) / "digits.sqlite"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("nasbench-1shot1-harness")) / "digits.sqlite"


def shipped_tables(directory: Path = SHIPPED_DIR) -> list[Path]:
    """Read-only tabulated databases that ship with the package, consulted before the cache."""
    return sorted(directory.glob(SHIPPED_GLOB)) if directory.is_dir() else []


def pid_alive(pid: int) -> bool:
    """Whether a process of this host may still finish its claim (zombies cannot)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but will never finish its claim
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A read-write connection in autocommit mode (writes go through `write_transaction`)."""
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection to a file nobody writes (a shipped table)."""
    return sqlite3.connect(path.resolve().as_uri() + "?immutable=1", uri=True)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def create_schema(conn: sqlite3.Connection) -> None:
    """Every table of the schema (idempotent)."""
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


class DigitsStore:
    """One protocol's rows in the cache at `cache_path` and in the shipped tables (which win)."""

    def __init__(
        self,
        cache_path: Path,
        protocol_key: str,
        protocol_json: str,
        shipped: Sequence[Path],
        *,
        stale_after_s: float = 1800.0,
        busy_timeout_s: float = 600.0,
    ) -> None:
        self.cache_path = cache_path
        self.key = protocol_key
        self.protocol_json = protocol_json
        self.shipped = list(shipped)
        self.stale_after_s = stale_after_s
        self.busy_timeout_s = busy_timeout_s
        self.host = socket.gethostname()
        self._initialized = False

    # -- connections ---------------------------------------------------------------------------------
    def _init_db(self) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DigitsCacheError(
                f"cannot create the digits cache directory {self.cache_path.parent} ({exc}); "
                "pass a writable cache_path or set NB1SHOT1_CACHE"
            ) from exc
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                conn = connect(self.cache_path, self.busy_timeout_s)
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode = WAL")
                    with write_transaction(conn):
                        create_schema(conn)
                        conn.execute(
                            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                        )
                        conn.execute(
                            "INSERT OR IGNORE INTO protocols VALUES (?, ?)", (self.key, self.protocol_json)
                        )
                    version = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()[0]
                finally:
                    conn.close()
                break
            except sqlite3.OperationalError as exc:
                # Switching a brand-new file to WAL can race other processes doing the same.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise self._cache_error(exc) from exc
            except sqlite3.DatabaseError as exc:
                raise self._cache_error(exc) from exc
        if version != str(SCHEMA_VERSION):
            raise DigitsCacheError(
                f"{self.cache_path} has digits cache schema {version}, this code reads {SCHEMA_VERSION}; "
                "delete the file or pass another cache_path"
            )
        self._initialized = True

    def _cache_error(self, exc: Exception) -> DigitsCacheError:
        return DigitsCacheError(
            f"cannot use the digits cache {self.cache_path} ({exc}); "
            "delete the file or pass another cache_path"
        )

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection to the cache (created with its schema on first use)."""
        if not self._initialized:
            self._init_db()
        try:
            conn = connect(self.cache_path, self.busy_timeout_s)
        except sqlite3.Error as exc:
            raise self._cache_error(exc) from exc
        try:
            yield conn
        finally:
            conn.close()

    def _shipped_query(self, sql: str, args: tuple) -> Iterator[list[tuple]]:
        """The rows of `sql` in each readable shipped table, in order (unreadable ones are skipped)."""
        for path in self.shipped:
            try:
                conn = connect_readonly(path)
                try:
                    rows = conn.execute(sql, args).fetchall()
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                log.warning("skipping unreadable shipped digits table %s (%s)", path, exc)
                continue
            yield rows

    # -- reading ---------------------------------------------------------------------------------------
    def shipped_rows(self, arch_hash: str) -> dict[int, tuple]:
        """repeat -> stored row of one architecture in the shipped tables (the first table wins)."""
        rows: dict[int, tuple] = {}
        sql = f"SELECT {RESULT_COLS} FROM results WHERE protocol_key=? AND arch_hash=?"
        for found in self._shipped_query(sql, (self.key, arch_hash)):
            for r in found:
                rows.setdefault(int(r[0]), r)
        return rows

    def cached_rows(self, conn: sqlite3.Connection, arch_hash: str) -> dict[int, tuple]:
        """repeat -> stored row of one architecture in the cache."""
        return {
            int(r[0]): r
            for r in conn.execute(
                f"SELECT {RESULT_COLS} FROM results WHERE protocol_key=? AND arch_hash=?",
                (self.key, arch_hash),
            )
        }

    def all_rows(self, repeats: int) -> dict[str, dict[int, tuple]]:
        """Every stored repeat < `repeats`: hash -> repeat -> row (shipped tables win)."""
        out: dict[str, dict[int, tuple]] = {}
        sql = f"SELECT arch_hash, {RESULT_COLS} FROM results WHERE protocol_key=? AND repeat < ?"
        args = (self.key, repeats)
        for found in self._shipped_query(sql, args):
            for h, *row in found:
                out.setdefault(h, {}).setdefault(int(row[0]), tuple(row))
        with self.connection() as conn:
            for h, *row in conn.execute(sql, args):
                out.setdefault(h, {}).setdefault(int(row[0]), tuple(row))
        return out

    def space_row(self, space: int) -> tuple | None:
        """(n_models, best_hash, best_test_error, best_valid_error) of a space marked complete, or None."""
        sql = (
            "SELECT n_models, best_hash, best_test_error, best_valid_error FROM spaces "
            "WHERE protocol_key=? AND space=? AND complete=1"
        )
        for found in self._shipped_query(sql, (self.key, int(space))):
            if found:
                return found[0]
        with self.connection() as conn:
            return conn.execute(sql, (self.key, int(space))).fetchone()

    # -- writing ---------------------------------------------------------------------------------------
    def mark_space(
        self, space: int, n_models: int, best_hash: str, best_err: float, best_verr: float
    ) -> None:
        """Record a space as complete, with its optimum."""
        with self.connection() as conn, write_transaction(conn):
            conn.execute(
                "INSERT OR REPLACE INTO spaces VALUES (?, ?, 1, ?, ?, ?, ?, ?)",
                (self.key, int(space), n_models, best_hash, best_err, best_verr, time.time()),
            )

    def store_result(
        self, conn: sqlite3.Connection, arch_hash: str, matrix: np.ndarray, ops: Sequence[str], row: tuple
    ) -> tuple:
        """Store one trained repeat (`row` as RESULT_COLS) and drop its claim; returns the stored row."""
        repeat = row[0]
        with write_transaction(conn):
            # OR IGNORE: if a claim was wrongly judged stale and both finished, the first result stays.
            conn.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.key, arch_hash, *row, time.time()),
            )
            conn.execute(
                "INSERT OR IGNORE INTO specs VALUES (?, ?, ?)",
                (arch_hash, json.dumps(np.asarray(matrix).tolist()), json.dumps(list(ops))),
            )
            conn.execute(
                "DELETE FROM claims WHERE protocol_key=? AND arch_hash=? AND repeat=? AND pid=? AND host=?",
                (self.key, arch_hash, repeat, os.getpid(), self.host),
            )
        return self.cached_rows(conn, arch_hash).get(repeat, row)

    # -- claims ----------------------------------------------------------------------------------------
    def claim(self, conn: sqlite3.Connection, arch_hash: str, repeat: int) -> bool:
        """Claim a missing repeat for this process; False when it is stored or claimed already."""
        owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with write_transaction(conn):
            if conn.execute(
                "SELECT 1 FROM results WHERE protocol_key=? AND arch_hash=? AND repeat=?",
                (self.key, arch_hash, repeat),
            ).fetchone():
                return False
            cur = conn.execute(
                "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.key, arch_hash, repeat, owner, self.host, os.getpid(), time.time()),
            )
            return cur.rowcount == 1

    def release(self, conn: sqlite3.Connection, arch_hash: str, repeat: int) -> None:
        """Drop this process's claim (its training failed)."""
        with write_transaction(conn):
            conn.execute(
                "DELETE FROM claims WHERE protocol_key=? AND arch_hash=? AND repeat=? AND pid=? AND host=?",
                (self.key, arch_hash, repeat, os.getpid(), self.host),
            )

    def reclaim_stale(self, conn: sqlite3.Connection, arch_hash: str, repeats: Sequence[int]) -> None:
        """Drop the claims on these repeats whose owner died (same host) or that are too old."""
        now = time.time()
        for r in repeats:
            row = conn.execute(
                "SELECT owner, host, pid, claimed FROM claims "
                "WHERE protocol_key=? AND arch_hash=? AND repeat=?",
                (self.key, arch_hash, r),
            ).fetchone()
            if row is None:
                continue
            owner, host, pid, claimed = row
            dead = host == self.host and int(pid) != os.getpid() and not pid_alive(int(pid))
            if dead or now - float(claimed) > self.stale_after_s:
                log.warning("taking over the stale digits claim of %s on %s repeat %d", owner, arch_hash, r)
                with write_transaction(conn):
                    conn.execute(
                        "DELETE FROM claims WHERE protocol_key=? AND arch_hash=? AND repeat=? AND owner=?",
                        (self.key, arch_hash, r, owner),
                    )

    # -- export ----------------------------------------------------------------------------------------
    def export(self, out: Path, space: int, hashes: Sequence[str]) -> Path:
        """Write a compact copy of one space's rows of the cache (to ship in bench/truth/shipped)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.execute("BEGIN")
            create_schema(dst)
            dst.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            dst.execute("INSERT INTO protocols VALUES (?, ?)", (self.key, self.protocol_json))
            wanted = set(hashes)
            with self.connection() as conn:
                conn.execute("CREATE TEMP TABLE wanted (h TEXT PRIMARY KEY)")
                conn.executemany("INSERT INTO wanted VALUES (?)", [(h,) for h in wanted])
                rows = conn.execute(
                    "SELECT r.* FROM results r JOIN wanted w ON r.arch_hash = w.h WHERE r.protocol_key=?",
                    (self.key,),
                ).fetchall()
                specs = conn.execute("SELECT s.* FROM specs s JOIN wanted w ON s.arch_hash = w.h").fetchall()
                srow = conn.execute(
                    "SELECT * FROM spaces WHERE protocol_key=? AND space=?", (self.key, int(space))
                ).fetchone()
            dst.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            dst.executemany("INSERT INTO specs VALUES (?, ?, ?)", specs)
            if srow is not None:
                dst.execute("INSERT INTO spaces VALUES (?, ?, ?, ?, ?, ?, ?, ?)", srow)
            dst.execute("COMMIT")
            dst.execute("VACUUM")
        finally:
            dst.close()
        os.replace(tmp, out)
        return out
