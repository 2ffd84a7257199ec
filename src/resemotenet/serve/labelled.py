"""The labelled faces as a ``folder:`` dataset: ``train|test/<emotion>/<id>.jpg`` and ``groups.csv``
(``file,group``), so every split made from it (``--data folder:DIR``) keeps a group in one part.

``DIR/labelled`` in the review folder is kept as it stands (``LiveFolder``): the database is the
truth and the folder is derived from it, so it is rebuilt whole on every start and then changed
face by face after each label and undo (a hard link in or out, ``groups.csv`` replaced). A crash
between a label's commit and its link leaves the folder one face behind until the next start;
never a face in the wrong part. ``write_folder`` writes the same layout anywhere, built under a
temporary name and swapped in whole; ``zip_bytes`` zips it.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import threading
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from .errors import Unavailable
from .store import PARTS

MARK = ".resemotenet-review-dataset"  # in a folder write_folder made (and may therefore replace)
Face = tuple[str, Path, str]  # (name in the dataset, crop file, group)


def groups_csv(rows: Iterable[tuple[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "group"])
    w.writerows(rows)
    return buf.getvalue()


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:
        pass
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(src, dst)


def _replace_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_folder(dst: Path, faces: Iterable[Face]) -> dict[str, Any]:
    """The faces as a dataset in ``dst``: built beside it, then swapped in, so a reader sees the old
    dataset or the new one, never half. ``dst`` may be missing, empty, or one this function wrote."""
    if dst.exists() and not (dst / MARK).is_file() and (not dst.is_dir() or any(dst.iterdir())):
        raise ConfigError(f"{dst}: exists and is not a dataset the review store wrote; give another folder")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
    rows, parts = [], Counter()
    try:
        tmp.mkdir()
        for name, path, group in faces:
            _link(path, tmp / name)
            rows.append((name, group))
            parts[name.split("/", 1)[0]] += 1
        (tmp / "groups.csv").write_text(groups_csv(rows))
        (tmp / MARK).write_text("written by resemotenet's review store from review.sqlite3; replaced as it changes\n")
        if dst.exists():
            dst.rename(old)
        tmp.rename(dst)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Unavailable(f"cannot write the labelled faces to {dst.name}/ ({exc.strerror or exc})") from None
    return {"folder": str(dst), "faces": len(rows), "groups": len({g for _, g in rows})} | {p: parts[p] for p in PARTS}


def zip_bytes(faces: Iterable[Face]) -> bytes:
    buf, rows = io.BytesIO(), []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, path, group in faces:
            try:
                zf.writestr(name, path.read_bytes())
            except OSError:
                continue  # gone since it was listed: left out (the next start's sweep marks it)
            rows.append((name, group))
        zf.writestr("groups.csv", groups_csv(rows))
    return buf.getvalue()


def remove_leftovers(folder: Path) -> None:
    """Temporary and replaced copies a ``write_folder`` cut short left beside ``folder``."""
    for p in (*folder.parent.glob(f".{folder.name}.tmp-*"), *folder.parent.glob(f".{folder.name}.old-*")):
        shutil.rmtree(p, ignore_errors=True)


class LiveFolder:
    """``DIR/labelled``, kept as the database says. Its upkeep never fails a label: if the folder
    cannot be written (or is not the store's own), it is left alone and ``ok`` is False."""

    def __init__(self, folder: Path):
        self.folder, self.lock, self.ok = folder, threading.RLock(), False
        remove_leftovers(folder)

    def rebuild(self, faces: Iterable[Face]) -> dict[str, Any]:
        with self.lock:
            try:
                out = write_folder(self.folder, faces)
            except (ConfigError, Unavailable):
                self.ok = False
                raise
            self.ok = True
            return out

    def put(self, face: Face, rows: list[tuple[str, str]]) -> None:
        self._change(lambda: _link(face[1], self.folder / face[0]), rows)

    def drop(self, name: str, rows: list[tuple[str, str]]) -> None:
        def step() -> None:
            path = self.folder / name
            path.unlink(missing_ok=True)
            for d in (path.parent, path.parent.parent):  # an empty class folder is an error to the reader
                if d != self.folder and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()

        self._change(step, rows)

    def _change(self, step: Any, rows: list[tuple[str, str]]) -> None:
        with self.lock:
            if not self.ok:
                return
            try:
                step()
                _replace_text(self.folder / "groups.csv", groups_csv(rows))
            except OSError:
                self.ok = False  # rebuilt whole on the next start (or the next write_folder)
