"""The embedded ground truth: NAS-Bench-101 cells trained on scikit-learn's 8x8 digits, cached in SQLite.

Runs anywhere with no download. A queried cell is trained under one fixed, small protocol
(`DigitsProtocol`) three times with seeds that depend only on the repeat, and every repeat is stored in
an SQLite cache shared by all processes on the machine, so each (protocol, architecture, repeat) trains
once ever. Parallel processes coordinate through a `claims` table: whoever inserts the claim trains,
the others poll for the result; claims of dead processes (or older than `stale_after`) are taken over.

Isomorphic specs share a hash, so the network that is trained is built from a canonical vertex order of
the pruned spec: the stored numbers never depend on which of the equivalent specs was queried first.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from hashlib import sha256
from pathlib import Path

import numpy as np

from bench.errors import HarnessError
from bench.search.graph import HASH_OPS, hash_pruned, hash_spec, prune
from bench.search.graph import check_in_nb101 as _check_in_nb101
from bench.truth.base import ArchResult

log = logging.getLogger(__name__)

__all__ = [
    "DigitsBenchmark",
    "DigitsCacheError",
    "DigitsError",
    "DigitsProtocol",
    "IncompleteSpaceError",
    "ProtocolError",
    "RepeatResult",
    "canonical_spec",
    "default_cache_path",
    "load_digits_splits",
    "shipped_tables",
    "split_indices",
    "train_repeat",
]

SPLIT_SEED = 0
TEST_SIZE = 450  # 25 %: accuracy steps of 0.22 points, enough to tell architectures apart
VALID_SIZE = 360  # 20 %; the remaining 987 images are 'train'
SCHEMA_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_GLOB = "digits_space*.sqlite"


class DigitsError(HarnessError):
    """Base class of the errors a user of the digits benchmark can hit."""


class DigitsCacheError(DigitsError):
    """The SQLite cache cannot be opened or is not a digits cache."""


class IncompleteSpaceError(DigitsError):
    """A space was to be marked complete while some of its models still lack repeats."""


class ProtocolError(DigitsError, ValueError):
    """A DigitsProtocol field with an impossible value."""


# ---- data ------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32).reshape(-1, 1, 8, 8) / 16.0, digits.target.astype(np.int64)


def split_indices(seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Row indices of the fixed stratified split into sklearn's digits array (disjoint, covering)."""
    from sklearn.model_selection import train_test_split

    _, y = _digits()
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=TEST_SIZE, stratify=y, random_state=seed)
    train, valid = train_test_split(rest, test_size=VALID_SIZE, stratify=y[rest], random_state=seed)
    return {"train": train, "valid": valid, "test": test}


@lru_cache(maxsize=4)
def _splits(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    x, y = _digits()
    parts = split_indices(seed)
    # One scalar mean/std from the train split only: the valid/test images never leak into training.
    mean, std = float(x[parts["train"]].mean()), float(x[parts["train"]].std())
    return {name: (((x[p] - mean) / std).astype(np.float32), y[p]) for name, p in parts.items()}


def load_digits_splits(seed: int = SPLIT_SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fixed stratified train/valid/test split of the 1,797 digits (987/360/450 images).

    X is float32 N x 1 x 8 x 8, standardized with the train split's mean and std; y is int64. The
    train split is in shuffled order, so a consumer may cut it into halves by position. Fresh copies:
    callers may modify them.
    """
    return {k: (x.copy(), y.copy()) for k, (x, y) in _splits(seed).items()}


# ---- protocol --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsProtocol:
    """How one repeat of one architecture is trained. Every field is part of the cache key.

    Chosen to discriminate: digits is easy, so the budget is short (6 epochs, ~100 SGD steps) and the
    network small. On 100 uniformly sampled space-1 models (shared 2-core CPU) the mean test accuracies
    spread from 17 % to 96 % (std 19.5 points) and the repeats ranked the models alike (Spearman
    0.89-0.94) at ~1.4 s CPU per repeat. Reproduce with
    `python -m bench.tabulate --benchmark digits --space 1 --evaluate-protocol 100`.
    """

    version: str = "digits-v1"  # bump when the training code changes in a way the fields do not show
    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adam"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"  # "cosine" (per step, to 0) or "constant"
    # One stack of one cell at 8x8 (stem 16 channels): measured on 30 space-1 models, the repeats ranked
    # models far more consistently (Spearman ~0.96) than two stacks (~0.80-0.90) at the same cost.
    stem_channels: int = 16
    num_stacks: int = 1
    modules_per_stack: int = 1
    # PyTorch's momentum, not TF's decay: nasbench_pytorch's default 0.997 is the TF decay passed as
    # momentum (running stats = last batch). 0.003 (TF 0.997) needs thousands of steps to settle; this
    # protocol takes ~100, so the PyTorch default 0.1 is used (only for training-time running averages:
    # with bn_recalibrate the evaluated statistics come from the recalibration pass).
    bn_momentum: float = 0.1
    # Before evaluation, re-estimate every BN layer's statistics in one pass over the training data at the
    # final weights ("precise BN"), so evaluation depends on the final weights only, not on how the running
    # averages lagged them. ~5 % of the cost; with the cosine schedule it changed little when measured.
    bn_recalibrate: bool = True
    train_size: int | None = None  # stratified subset of the train split (fixed, not per repeat)
    split_seed: int = SPLIT_SEED
    seed: int = 0  # repeat r uses seed + r: a function of the repeat only, never of the query order
    repeats: int = 3
    device: str = "cpu"  # ground truth is CPU by default: numbers must not depend on the machine

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "stem_channels", "num_stacks", "modules_per_stack", "repeats")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ProtocolError(f"DigitsProtocol.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ProtocolError(f"DigitsProtocol.optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ProtocolError(
                f"DigitsProtocol.lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}"
            )
        if self.num_stacks > 3:
            raise ProtocolError(
                "DigitsProtocol.num_stacks must be <= 3: 8x8 images survive two 2x2 max-pools"
            )
        if self.train_size is not None and not 10 <= self.train_size <= 987:
            raise ProtocolError(
                f"DigitsProtocol.train_size must be None or in 10..987, got {self.train_size}"
            )

    def key(self) -> str:
        """A short digest of every field: a protocol change never mixes results in one cache."""
        payload = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return sha256(payload.encode("utf-8")).hexdigest()[:16]

    def repeat_seed(self, repeat: int) -> int:
        return self.seed + repeat

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def with_overrides(cls, base: DigitsProtocol, overrides: dict[str, str]) -> DigitsProtocol:
        """A copy of `base` with string values (from a CLI) converted to each field's type."""
        kinds = {f.name: str(f.type) for f in fields(cls)}
        values = asdict(base)
        for name, text in overrides.items():
            if name not in kinds:
                raise ProtocolError(
                    f"unknown DigitsProtocol field {name!r}; known: {', '.join(sorted(kinds))}"
                )
            kind = kinds[name]
            try:
                if text.lower() == "none" and "None" in kind:
                    values[name] = None
                elif kind == "bool":
                    if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError(text)
                    values[name] = text.lower() in ("1", "true", "yes")
                elif kind.startswith("int"):
                    values[name] = int(text)
                elif kind.startswith("float"):
                    values[name] = float(text)
                else:
                    values[name] = text
            except ValueError as exc:
                raise ProtocolError(
                    f"DigitsProtocol.{name}={text!r} is not a valid {kind}; fix the value"
                ) from exc
        return cls(**values)


# ---- one training repeat ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RepeatResult:
    valid_acc: float
    test_acc: float
    train_seconds: float  # wall clock of the training loop
    cpu_seconds: float  # CPU time of the whole repeat (build, train, evaluate): its cost on a busy machine
    params: int


def canonical_spec(
    matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """The pruned spec with interior vertices in one canonical topological order.

    Among all vertex orders that keep the matrix upper triangular, the smallest (op labels, matrix
    bytes) wins. At most 5! = 120 orders, so brute force is fine and obviously correct.
    """
    m, o = prune(matrix, ops)
    _check_in_nb101(m, o)
    n = len(o)
    best: tuple | None = None
    for perm in itertools.permutations(range(1, n - 1)):
        order = [0, *perm, n - 1]
        pm = m[np.ix_(order, order)]
        if np.tril(pm).any():
            continue
        key = (tuple(HASH_OPS.index(o[i]) for i in perm), pm.tobytes())
        if best is None or key < best[0]:
            best = (key, pm, [o[i] for i in order])
    assert best is not None  # the identity order is always valid
    return np.ascontiguousarray(best[1]), best[2]


def _count_params(net: object) -> int:
    import torch
    from nasbench_pytorch.model.model import Placeholder

    # Placeholder modules carry a dummy scalar that never enters the computation; do not count it.
    skip = {id(p) for m in net.modules() if isinstance(m, Placeholder) for p in m.parameters()}
    return int(sum(p.numel() for p in net.parameters() if id(p) not in skip and isinstance(p, torch.Tensor)))


def _recalibrate_bn(net: object, x: object, batch_size: int) -> None:
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the pass
    net.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            net(x[start : start + batch_size])


def train_repeat(
    matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str], protocol: DigitsProtocol, repeat: int
) -> RepeatResult:
    """Train one repeat of a cell under `protocol` and measure it; deterministic on CPU.

    One thread (parallelism comes from processes) and a forked RNG, so the caller's thread count and
    random state are left as they were: querying the benchmark never perturbs a running search.
    """
    import torch
    import torch.nn.functional as F
    from nasbench_pytorch.model import Network

    cm, cops = canonical_spec(matrix, ops)
    splits = _splits(protocol.split_seed)
    c0 = time.thread_time()  # after the once-per-process imports and data loading
    x_train, y_train = splits["train"]
    if protocol.train_size is not None and protocol.train_size < len(y_train):
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(
            np.arange(len(y_train)),
            train_size=protocol.train_size,
            stratify=y_train,
            random_state=protocol.split_seed,
        )
        x_train, y_train = x_train[np.sort(keep)], y_train[np.sort(keep)]
    device = torch.device(protocol.device)
    xt, yt = torch.as_tensor(x_train, device=device), torch.as_tensor(y_train, device=device)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            seed = protocol.repeat_seed(repeat)
            torch.manual_seed(seed)
            net = Network(
                (cm, cops),
                num_labels=10,
                in_channels=1,
                stem_out_channels=protocol.stem_channels,
                num_stacks=protocol.num_stacks,
                num_modules_per_stack=protocol.modules_per_stack,
                momentum=protocol.bn_momentum,
            ).to(device)
            params = [p for p in net.parameters()]
            if protocol.optimizer == "adam":
                opt: torch.optim.Optimizer = torch.optim.Adam(
                    params, lr=protocol.learning_rate, weight_decay=protocol.weight_decay
                )
            else:
                opt = torch.optim.SGD(
                    params,
                    lr=protocol.learning_rate,
                    momentum=protocol.momentum,
                    weight_decay=protocol.weight_decay,
                    nesterov=protocol.momentum > 0,
                )
            n = len(yt)
            steps = protocol.epochs * math.ceil(n / protocol.batch_size)
            sched = (
                torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
                if protocol.lr_schedule == "cosine"
                else None
            )
            order_gen = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            net.train()
            for _ in range(protocol.epochs):
                perm = torch.randperm(n, generator=order_gen).to(device)
                for start in range(0, n, protocol.batch_size):
                    idx = perm[start : start + protocol.batch_size]
                    loss = F.cross_entropy(net(xt[idx]), yt[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
            if protocol.bn_recalibrate:
                _recalibrate_bn(net, xt, protocol.batch_size)
            train_seconds = time.perf_counter() - t0
            net.eval()
            accs = []
            with torch.no_grad():
                for name in ("valid", "test"):
                    x, y = splits[name]
                    pred = net(torch.as_tensor(x, device=device)).argmax(1).cpu().numpy()
                    accs.append(float((pred == y).mean()))
            cpu_seconds = time.thread_time() - c0
    finally:
        torch.set_num_threads(threads)
    if not all(math.isfinite(a) for a in accs):
        raise RuntimeError("non-finite accuracy")  # cannot happen for argmax accuracy; guards the cache
    return RepeatResult(accs[0], accs[1], train_seconds, cpu_seconds, _count_params(net))


# ---- the SQLite cache ------------------------------------------------------------------------------

_SCHEMA = """
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

_RESULT_COLS = "repeat, valid_acc, test_acc, train_seconds, cpu_seconds, params"


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


def _pid_alive(pid: int) -> bool:
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


def _connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    # Autocommit mode: every write opens its own BEGIN IMMEDIATE, so no deferred read->write upgrade
    # can fail with SQLITE_BUSY without consulting the busy handler.
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _connect_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?immutable=1", uri=True)


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


TrainFn = Callable[[np.ndarray, list, DigitsProtocol, int], RepeatResult]


class DigitsBenchmark:
    """Lazily tabulated NAS-Bench-101 on 8x8 digits (implements `bench.truth.base.GroundTruth`)."""

    name = "digits"

    def __init__(
        self,
        cache_path: str | os.PathLike | None = None,
        protocol: DigitsProtocol = DigitsProtocol(),
        *,
        shipped: Sequence[str | os.PathLike] | None = None,
        train_fn: TrainFn | None = None,
        stale_after_s: float = 1800.0,
        poll_interval_s: float = 0.2,
        busy_timeout_s: float = 600.0,
    ) -> None:
        self.protocol = protocol
        self.key = protocol.key()
        self.cache_path = Path(cache_path) if cache_path is not None else default_cache_path()
        self.shipped = [Path(p) for p in shipped] if shipped is not None else shipped_tables()
        self._train_fn = train_fn
        self.stale_after_s = stale_after_s
        self.poll_interval_s = poll_interval_s
        self.busy_timeout_s = busy_timeout_s
        self._host = socket.gethostname()
        self._initialized = False

    def __repr__(self) -> str:
        return f"DigitsBenchmark(cache_path={str(self.cache_path)!r}, protocol_key={self.key!r})"

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
                conn = _connect(self.cache_path, self.busy_timeout_s)
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode = WAL")
                    with _write(conn):
                        for stmt in _SCHEMA.split(";"):
                            if stmt.strip():
                                conn.execute(stmt)
                        conn.execute(
                            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                        )
                        conn.execute(
                            "INSERT OR IGNORE INTO protocols VALUES (?, ?)",
                            (self.key, self.protocol.to_json()),
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
    def _conn(self) -> Iterator[sqlite3.Connection]:
        if not self._initialized:
            self._init_db()
        try:
            conn = _connect(self.cache_path, self.busy_timeout_s)
        except sqlite3.Error as exc:
            raise self._cache_error(exc) from exc
        try:
            yield conn
        finally:
            conn.close()

    # -- reading ---------------------------------------------------------------------------------------
    def _shipped_rows(self, arch_hash: str) -> dict[int, tuple]:
        rows: dict[int, tuple] = {}
        for path in self.shipped:
            try:
                conn = _connect_readonly(path)
                try:
                    for r in conn.execute(
                        f"SELECT {_RESULT_COLS} FROM results WHERE protocol_key=? AND arch_hash=?",
                        (self.key, arch_hash),
                    ):
                        rows.setdefault(int(r[0]), r)
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                log.warning("skipping unreadable shipped digits table %s (%s)", path, exc)
        return rows

    def _cached_rows(self, conn: sqlite3.Connection, arch_hash: str) -> dict[int, tuple]:
        return {
            int(r[0]): r
            for r in conn.execute(
                f"SELECT {_RESULT_COLS} FROM results WHERE protocol_key=? AND arch_hash=?",
                (self.key, arch_hash),
            )
        }

    def _result(self, arch_hash: str, rows: dict[int, tuple]) -> ArchResult:
        ordered = [rows[r] for r in range(self.protocol.repeats)]
        return ArchResult(
            arch_hash=arch_hash,
            valid_acc=tuple(float(r[1]) for r in ordered),
            test_acc=tuple(float(r[2]) for r in ordered),
            train_time=tuple(float(r[3]) if r[3] is not None else float("nan") for r in ordered),
            params=int(ordered[0][5]) if ordered[0][5] is not None else None,
        )

    def lookup(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> ArchResult | None:
        """The stored result of a spec, or None when some repeat is missing; never trains."""
        arch_hash = hash_spec(matrix, ops)
        rows = self._shipped_rows(arch_hash)
        if len(rows) < self.protocol.repeats:
            with self._conn() as conn:
                for r, row in self._cached_rows(conn, arch_hash).items():
                    rows.setdefault(r, row)
        if all(r in rows for r in range(self.protocol.repeats)):
            return self._result(arch_hash, rows)
        return None

    def all_rows(self) -> dict[str, dict[int, tuple]]:
        """Every stored repeat of this protocol: hash -> repeat -> row (shipped tables win)."""
        out: dict[str, dict[int, tuple]] = {}
        sql = f"SELECT arch_hash, {_RESULT_COLS} FROM results WHERE protocol_key=? AND repeat < ?"
        args = (self.key, self.protocol.repeats)
        for path in self.shipped:
            try:
                conn = _connect_readonly(path)
                try:
                    for h, *row in conn.execute(sql, args):
                        out.setdefault(h, {}).setdefault(int(row[0]), tuple(row))
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                log.warning("skipping unreadable shipped digits table %s (%s)", path, exc)
        with self._conn() as conn:
            for h, *row in conn.execute(sql, args):
                out.setdefault(h, {}).setdefault(int(row[0]), tuple(row))
        return out

    def complete_hashes(self) -> set[str]:
        """Hashes with every repeat stored (shipped tables and cache), for resumable tabulation."""
        return {h for h, reps in self.all_rows().items() if len(reps) == self.protocol.repeats}

    def stored_results(self, hashes: Sequence[str] | None = None) -> dict[str, ArchResult]:
        """The complete results among `hashes` (default: all), without training anything."""
        rows = self.all_rows()
        wanted = rows.keys() if hashes is None else [h for h in hashes if h in rows]
        return {h: self._result(h, rows[h]) for h in wanted if len(rows[h]) == self.protocol.repeats}

    # -- the GroundTruth interface ---------------------------------------------------------------------
    def query(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> ArchResult:
        """All repeats of a spec; trains (once ever, across processes) whatever repeat is missing."""
        cm, cops = canonical_spec(matrix, ops)
        arch_hash = hash_pruned(cm, cops)
        rows = self._shipped_rows(arch_hash)
        repeats = range(self.protocol.repeats)
        if all(r in rows for r in repeats):
            return self._result(arch_hash, rows)
        with self._conn() as conn:
            while True:
                for r, row in self._cached_rows(conn, arch_hash).items():
                    rows.setdefault(r, row)
                missing = [r for r in repeats if r not in rows]
                if not missing:
                    return self._result(arch_hash, rows)
                trained = False
                for r in missing:
                    if self._claim(conn, arch_hash, r):
                        rows[r] = self._train_and_store(conn, arch_hash, cm, cops, r)
                        trained = True
                        break  # re-read: others may have finished repeats meanwhile
                if not trained:
                    self._reclaim_stale(conn, arch_hash, missing)
                    time.sleep(self.poll_interval_s)

    def best_test_error(self, space: int) -> float | None:
        """Lowest mean test error over all unique models of `space`, once the space is fully tabulated."""
        row = self._space_row(space)
        return None if row is None else float(row[2])

    def best_valid_error(self, space: int) -> float | None:
        row = self._space_row(space)
        return None if row is None or row[3] is None else float(row[3])

    def _space_row(self, space: int) -> tuple | None:
        sql = (
            "SELECT n_models, best_hash, best_test_error, best_valid_error FROM spaces "
            "WHERE protocol_key=? AND space=? AND complete=1"
        )
        for path in self.shipped:
            try:
                conn = _connect_readonly(path)
                try:
                    row = conn.execute(sql, (self.key, int(space))).fetchone()
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                log.warning("skipping unreadable shipped digits table %s (%s)", path, exc)
                continue
            if row is not None:
                return row
        with self._conn() as conn:
            return conn.execute(sql, (self.key, int(space))).fetchone()

    def mark_complete(self, space: int, hashes: Sequence[str]) -> tuple[str, float]:
        """Record that every model of `space` is tabulated; returns (best hash, best mean test error)."""
        results = self.stored_results(hashes)
        missing = len(set(hashes)) - len(results)
        if missing or not results:
            raise IncompleteSpaceError(
                f"{missing} of {len(set(hashes))} models of space {space} lack repeats; "
                f"run `python -m bench.tabulate --benchmark digits --space {space}` first"
            )
        # Ties on the mean test error go to the better validation error, then to the hash: deterministic.
        err, verr, best = min((r.test_error_mean, r.valid_error_mean, h) for h, r in results.items())
        with self._conn() as conn, _write(conn):
            conn.execute(
                "INSERT OR REPLACE INTO spaces VALUES (?, ?, 1, ?, ?, ?, ?, ?)",
                (self.key, int(space), len(results), best, err, verr, time.time()),
            )
        return best, err

    # -- claims ----------------------------------------------------------------------------------------
    def _claim(self, conn: sqlite3.Connection, arch_hash: str, repeat: int) -> bool:
        owner = f"{self._host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with _write(conn):
            if conn.execute(
                "SELECT 1 FROM results WHERE protocol_key=? AND arch_hash=? AND repeat=?",
                (self.key, arch_hash, repeat),
            ).fetchone():
                return False
            cur = conn.execute(
                "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.key, arch_hash, repeat, owner, self._host, os.getpid(), time.time()),
            )
            return cur.rowcount == 1

    def _release(self, conn: sqlite3.Connection, arch_hash: str, repeat: int) -> None:
        with _write(conn):
            conn.execute(
                "DELETE FROM claims WHERE protocol_key=? AND arch_hash=? AND repeat=? AND pid=? AND host=?",
                (self.key, arch_hash, repeat, os.getpid(), self._host),
            )

    def _reclaim_stale(self, conn: sqlite3.Connection, arch_hash: str, repeats: Sequence[int]) -> None:
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
            dead = host == self._host and int(pid) != os.getpid() and not _pid_alive(int(pid))
            if dead or now - float(claimed) > self.stale_after_s:
                log.warning("taking over the stale digits claim of %s on %s repeat %d", owner, arch_hash, r)
                with _write(conn):
                    conn.execute(
                        "DELETE FROM claims WHERE protocol_key=? AND arch_hash=? AND repeat=? AND owner=?",
                        (self.key, arch_hash, r, owner),
                    )

    def _train_and_store(
        self, conn: sqlite3.Connection, arch_hash: str, matrix: np.ndarray, ops: list[str], repeat: int
    ) -> tuple:
        train = self._train_fn if self._train_fn is not None else train_repeat
        try:
            log.debug("training digits %s repeat %d", arch_hash, repeat)
            res = train(matrix, ops, self.protocol, repeat)
        except BaseException:
            self._release(conn, arch_hash, repeat)
            raise
        row = (repeat, res.valid_acc, res.test_acc, res.train_seconds, res.cpu_seconds, res.params)
        with _write(conn):
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
                (self.key, arch_hash, repeat, os.getpid(), self._host),
            )
        stored = self._cached_rows(conn, arch_hash)
        return stored.get(repeat, row)

    # -- export ----------------------------------------------------------------------------------------
    def export(self, path: str | os.PathLike, space: int, hashes: Sequence[str]) -> Path:
        """Write a compact, read-only-friendly copy of one complete space (to ship in bench/data)."""
        out = Path(path)
        if self._space_row(space) is None:
            raise IncompleteSpaceError(
                f"space {space} is not marked complete in {self.cache_path}; tabulate it before exporting"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.execute("BEGIN")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    dst.execute(stmt)
            dst.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            dst.execute("INSERT INTO protocols VALUES (?, ?)", (self.key, self.protocol.to_json()))
            wanted = set(hashes)
            with self._conn() as conn:
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
