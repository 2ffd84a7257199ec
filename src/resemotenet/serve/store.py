"""The review store's files: one SQLite database (``DIR/review.sqlite3``, WAL) and the crops
beside it (``DIR/crops/<id>.jpg``). ``review.ReviewStore`` says what the rows mean; this module
keeps them consistent with the files through any crash.

The one rule: a crop is written under a temporary name, synced and renamed into place BEFORE its
row commits, so a committed row always had its crop. A crash between the two leaves a crop with
no row; ``sweep`` (run on every start) deletes those and any temporary file, and marks rows whose
crop has gone since (removed by hand, a restored backup) so they leave the queue instead of
failing later. A label is a row update and never touches a file; commits are synchronous (FULL),
so a label the service answered for survives a kill or a power cut.

One service owns a review folder at a time (an exclusive lock on ``DIR/review.lock``): a second
writer's sweep could take the crop of a row the first has not committed yet.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from .errors import Unavailable

DB_NAME, LOCK_NAME, CROPS = "review.sqlite3", "review.lock", "crops"
TMP_PREFIX = ".tmp-"
LAYOUT = "sqlite-1"  # meta 'layout': the file-based layout (pending/, labelled/) was migrated
HOLD_OUT_EVERY = 5  # the 1st, 6th, 11th, ... group to get a label is held out, with all its faces
PARTS = ("train", "test")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,            -- queue order, lowest first ('skip' moves an item to the back)
    source TEXT NOT NULL,            -- 'upload', 'job-<id>', 'live-<n>', ...
    track INTEGER,
    grp TEXT NOT NULL,               -- faces that belong together: never split between train and test
    captured REAL NOT NULL,          -- capture time, seconds since the epoch
    reason TEXT NOT NULL CHECK (reason IN ('uncertain', 'audit')),
    score REAL,
    top2 TEXT,                       -- JSON [[label, p], [label, p]]
    probabilities TEXT,              -- JSON {label: p}
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'labelled', 'no_face')),
    label TEXT,
    labelled_at REAL,
    part TEXT CHECK (part IN ('train', 'test')),
    crop_missing INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_queue ON items (state, crop_missing, seq);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, part TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
COLUMNS = (
    "id",
    "seq",
    "source",
    "track",
    "grp",
    "captured",
    "reason",
    "score",
    "top2",
    "probabilities",
    "state",
    "label",
    "labelled_at",
    "part",
)


def _unwritable(exc: BaseException) -> Unavailable:
    return Unavailable(f"the review store cannot write ({exc}); nothing was changed")


class Database:
    """The connection (one, shared by threads under a lock), the crop files and the sweep."""

    def __init__(self, root: Path):
        self.root, self.crops = root, root / CROPS
        self.crops.mkdir(parents=True, exist_ok=True)
        self._lock_file = _exclusive(root / LOCK_NAME)
        self.lock = threading.RLock()
        path = root / DB_NAME
        try:
            self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigError(f"{path}: not a usable review database ({exc})") from None

    def close(self) -> None:
        with self.lock:
            conn = getattr(self, "conn", None)
            if conn is not None:
                conn.close()
                self.conn = None  # type: ignore[assignment]
            if self._lock_file is not None:
                self._lock_file.close()  # releases the folder lock
                self._lock_file = None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it commits, or none of it (a full disk included: 503)."""
        with self.lock:
            if self.conn is None:
                raise Unavailable("the review store is closed")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _unwritable(exc) from None
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise _unwritable(exc) from None
                raise

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            if self.conn is None:
                raise Unavailable("the review store is closed")
            return self.conn.execute(sql, args).fetchall()

    def scalar(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    # ---- crops ---------------------------------------------------------------------------------

    def crop_path(self, item_id: str) -> Path:
        return self.crops / f"{item_id}.jpg"

    def write_crop(self, item_id: str, data: bytes) -> Path:
        """Temp file, fsync, rename: the crop is whole under its name or not there at all."""
        final, tmp = self.crop_path(item_id), self.crops / f"{TMP_PREFIX}{item_id}.jpg"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def insert(self, row: dict[str, Any], crop: bytes) -> None:
        """The crop first, then its row (see the module doc); the crop goes again if the row fails.
        ``row['id']`` must be new: a failed insert removes the crop of that id."""
        self.write_crop(row["id"], crop)
        try:
            with self.write() as c:
                row = dict(row, seq=_next_seq(c))
                names = [k for k in COLUMNS if k in row]
                c.execute(
                    f"INSERT INTO items ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    tuple(row[k] for k in names),
                )
        except BaseException:
            self.crop_path(row["id"]).unlink(missing_ok=True)
            raise

    def exists(self, item_id: str) -> bool:
        return self.scalar("SELECT COUNT(*) FROM items WHERE id = ?", (item_id,)) > 0

    def mark_missing(self, item_id: str) -> None:
        try:
            with self.write() as c:
                c.execute("UPDATE items SET crop_missing = 1 WHERE id = ?", (item_id,))
        except Unavailable:
            pass  # the next start's sweep marks it

    def sweep(self) -> dict[str, int]:
        """Make files and rows agree after any crash: temporary files and crops without a row go;
        rows whose crop is gone are marked (and unmarked if it came back). Returns the counts."""
        out: Counter[str] = Counter()
        with self.lock:
            ids = {r[0] for r in self.conn.execute("SELECT id FROM items")}
            present = set()
            for f in self.crops.iterdir():
                if f.name.startswith(TMP_PREFIX) or (f.suffix == ".jpg" and f.stem not in ids):
                    f.unlink(missing_ok=True)
                    out["temp_files" if f.name.startswith(TMP_PREFIX) else "orphan_crops"] += 1
                elif f.suffix == ".jpg":
                    present.add(f.stem)
            rows = self.conn.execute("SELECT id, crop_missing FROM items").fetchall()
            gone = [r[0] for r in rows if not r[1] and r[0] not in present]
            back = [r[0] for r in rows if r[1] and r[0] in present]
            with self.write() as c:
                c.executemany("UPDATE items SET crop_missing = 1 WHERE id = ?", [(i,) for i in gone])
                c.executemany("UPDATE items SET crop_missing = 0 WHERE id = ?", [(i,) for i in back])
        out["missing_crops"] = len(gone)
        return {k: out[k] for k in ("orphan_crops", "temp_files", "missing_crops")}

    # ---- held-out parts by group -----------------------------------------------------------------

    @staticmethod
    def group_part(c: sqlite3.Connection, group: str, part: str | None = None) -> str:
        """The part of a group, decided once when its first face gets a label (inside a write):
        the 1st, 6th, 11th ... group is held out. ``part`` fixes it (migrated faces keep theirs)."""
        row = c.execute("SELECT part FROM groups WHERE name = ?", (group,)).fetchone()
        if row is not None:
            return row[0]
        n = c.execute("SELECT COUNT(*) FROM groups").fetchone()[0]
        part = part or ("test" if n % HOLD_OUT_EVERY == 0 else "train")
        c.execute("INSERT INTO groups (name, part, seq) VALUES (?, ?, ?)", (group, part, n))
        return part

    # ---- the file-based layout of earlier versions ----------------------------------------------

    def migrate(self, labels: tuple[str, ...], id_ok: Any) -> int:
        """Move an earlier review folder (``pending/<id>.json+jpg``, ``labelled/[train|test/]<class>/<id>.jpg``)
        into the database, once. Each crop is copied, its row committed, and only then the old files
        removed, so a crash midway loses nothing and a rerun finishes the job. Returns faces moved."""
        if self.scalar("SELECT value FROM meta WHERE key = 'layout'") == LAYOUT:
            return 0
        moved = self._migrate_pending(id_ok) + self._migrate_labelled(labels, id_ok)
        with self.write() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('layout', ?)", (LAYOUT,))
        for d in ("pending", "labelled"):
            _remove_empty(self.root / d)
        return moved

    def _migrate_pending(self, id_ok: Any) -> int:
        moved, pending = 0, self.root / "pending"
        files = sorted(pending.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)) if pending.is_dir() else []
        for meta_file in files:
            jpg = meta_file.with_suffix(".jpg")
            if id_ok(meta_file.stem) and jpg.is_file() and not self.exists(meta_file.stem):
                try:
                    meta = json.loads(meta_file.read_text())
                except (OSError, ValueError):
                    meta = {}
                source = str(meta.get("source") or "migrated")
                row = {
                    "id": meta_file.stem,
                    "source": source,
                    "track": meta.get("track"),
                    "grp": str(meta.get("group") or source),
                    "captured": float(meta.get("time") or meta_file.stat().st_mtime),
                    "reason": meta.get("reason") if meta.get("reason") in ("uncertain", "audit") else "uncertain",
                    "score": meta.get("score"),
                    "top2": json.dumps(meta.get("top2")),
                    "probabilities": json.dumps(meta.get("probabilities")),
                }
                self.insert(row, jpg.read_bytes())
                moved += 1
            meta_file.unlink(missing_ok=True)  # a json without its crop was the old layout's broken item
            jpg.unlink(missing_ok=True)
        return moved

    def _migrate_labelled(self, labels: tuple[str, ...], id_ok: Any) -> int:
        moved, base = 0, self.root / "labelled"
        found = [(p, label, base / p / label) for p in PARTS for label in labels]
        found += [(None, label, base / label) for label in labels]  # the oldest layout: no parts
        for part, label, folder in found:
            for f in sorted(folder.glob("*.jpg")) if folder.is_dir() else []:
                if not id_ok(f.stem):
                    continue
                group = f"migrated/{f.stem}"  # nothing says which faces belonged together: each alone
                row = {"id": f.stem, "source": "migrated", "grp": group, "captured": f.stat().st_mtime}
                if not self.exists(f.stem):  # else: a crash after its row committed; finish the move
                    self.insert(row | {"reason": "uncertain"}, f.read_bytes())
                with self.write() as c:
                    got = self.group_part(c, group, part)
                    c.execute(
                        "UPDATE items SET state = 'labelled', label = ?, labelled_at = ?, part = ? WHERE id = ?",
                        (label, time.time(), got, f.stem),
                    )
                f.unlink()
                moved += 1
        return moved


def _next_seq(c: sqlite3.Connection) -> int:
    return int(c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM items").fetchone()[0])


def _remove_empty(folder: Path) -> None:
    """Remove a folder tree that holds no files (the old layout's emptied folders)."""
    if not folder.is_dir():
        return
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


def _exclusive(path: Path) -> Any:
    """An open lock file holding an exclusive lock (POSIX ``flock``; elsewhere no lock is taken)."""
    f = open(path, "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        import fcntl
    except ImportError:  # Windows: one service per folder is then the operator's care
        return f
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise ConfigError(f"{path.parent}: the review folder is in use by another process") from None
    return f
