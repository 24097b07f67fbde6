"""Walk an uploads folder: every entry becomes either a file to upload or a problem with a reason.

Relative paths (``/``-separated) become object keys, so the directory structure survives. Nothing is
skipped silently: a symlink (unless ``follow_symlinks``), an unreadable directory, a FIFO, a name that is
not a valid key or a file bigger than the destination allows each get one report line. The source is only
ever read (``os.scandir`` and ``stat``), never changed.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from golive.units import human_bytes  # noqa: F401 (golive.files.scan.human_bytes, as before)
from golive.errors import SourceError

log = logging.getLogger(__name__)

ProblemKind = Literal["symlink", "unreadable", "invalid-name", "too-large", "not-regular", "vanished",
                      "changed", "failed"]


class Problem(BaseModel):
    """One file golive did not upload (or could not verify), and why."""

    path: str
    kind: ProblemKind
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file found in the source; ``rel`` is its ``/``-separated path under the source root."""

    rel: str
    size: int
    mtime_ns: int


@dataclass
class Scan:
    files: list[LocalFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def name_problem(rel: str, key: str, max_key_bytes: int) -> str | None:
    """Why ``rel`` cannot be an object key, or None if it can.

    S3 keys are UTF-8 up to 1024 bytes. Names that are not UTF-8 (Linux allows any bytes) cannot be keys;
    control characters are legal in S3 but XML 1.0 cannot carry them, so ListObjects breaks on them and
    most tools (and browsers) cannot fetch them.
    """
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(rel)
        return f"name is not valid UTF-8 ({raw!r}); rename the file to upload it"
    bad = sorted({c for c in rel if ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad)
        return f"name contains control characters ({shown}) that object listings cannot carry; rename it"
    if len(encoded) > max_key_bytes:
        return f"key is {len(encoded)} bytes, over the {max_key_bytes}-byte limit; shorten the path"
    return None


def scan_source(root: str | os.PathLike, *, prefix: str = "", follow_symlinks: bool = False,
                max_size: int = 1 << 62, max_key_bytes: int = 1024,
                exclude: tuple[str, ...] = ()) -> Scan:
    """Walk ``root`` and sort what is there into files and problems.

    Args:
        root: the uploads folder.
        prefix: the destination key prefix (only to check key length).
        follow_symlinks: upload what symlinks point to instead of reporting them (directory loops are
            detected and reported).
        max_size: the destination's largest object; bigger files are reported.
        max_key_bytes: the destination's key length limit.
        exclude: absolute paths to leave out (golive's own state directory when it sits inside the source).

    Raises:
        SourceError: ``root`` does not exist, is not a directory or cannot be listed.
    """
    root = Path(root)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise SourceError(f"source folder {root} does not exist") from None
    except OSError as exc:
        raise SourceError(f"source folder {root}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SourceError(f"source {root} is not a folder")
    try:
        os.scandir(root).close()
    except OSError as exc:
        raise SourceError(f"source folder {root} cannot be listed: {exc.strerror}") from None

    out = Scan()
    excluded = {os.path.realpath(p) for p in exclude}
    seen_dirs = {(st.st_dev, st.st_ino)}
    stack: list[tuple[str, str]] = [("", str(root))]
    while stack:
        rel_dir, path = stack.pop()
        try:
            it = os.scandir(path)
        except OSError as exc:
            out.problems.append(Problem(path=_printable(rel_dir.rstrip("/")) or ".", kind="unreadable",
                                        reason=f"directory cannot be listed ({exc.strerror}); its files were not uploaded"))
            continue
        with it:
            for entry in it:
                rel = rel_dir + entry.name
                try:
                    _classify(entry, rel, out, stack, seen_dirs, excluded, follow_symlinks, prefix,
                              max_size, max_key_bytes)
                except FileNotFoundError:
                    out.problems.append(Problem(path=_printable(rel), kind="vanished", reason="disappeared while scanning"))
                except OSError as exc:
                    out.problems.append(Problem(path=_printable(rel), kind="unreadable", reason=f"cannot stat ({exc.strerror})"))
    out.files.sort(key=lambda f: f.rel)
    out.problems.sort(key=lambda p: p.path)
    log.info("scanned %s: %d files, %d problems", root, len(out.files), len(out.problems))
    return out


def _classify(entry: os.DirEntry, rel: str, out: Scan, stack, seen_dirs, excluded, follow, prefix,
              max_size, max_key_bytes) -> None:
    if entry.is_symlink():
        target = _printable(os.readlink(entry.path))
        if not follow:
            out.problems.append(Problem(path=_printable(rel), kind="symlink", reason=(
                f"symlink to {target}, not uploaded (pass --follow-symlinks to upload what it points to)")))
            return
        try:
            st = os.stat(entry.path)
        except FileNotFoundError:
            out.problems.append(Problem(path=_printable(rel), kind="symlink", reason=f"broken symlink to {target}"))
            return
    else:
        st = entry.stat(follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        if os.path.realpath(entry.path) in excluded:
            return
        if (st.st_dev, st.st_ino) in seen_dirs:
            out.problems.append(Problem(path=_printable(rel), kind="symlink", reason="directory loop (symlink back to a parent), not followed"))
            return
        seen_dirs.add((st.st_dev, st.st_ino))
        stack.append((rel + "/", entry.path))
        return
    if not stat.S_ISREG(st.st_mode):
        out.problems.append(Problem(path=_printable(rel), kind="not-regular", reason="not a regular file (FIFO, socket or device), not uploaded"))
        return
    why = name_problem(rel, prefix + rel, max_key_bytes)
    if why:
        out.problems.append(Problem(path=_printable(rel), kind="invalid-name", reason=why))
        return
    if st.st_size > max_size:
        out.problems.append(Problem(path=_printable(rel), kind="too-large", reason=(
            f"{human_bytes(st.st_size)} is over the destination's {human_bytes(max_size)} object limit")))
        return
    out.files.append(LocalFile(rel, st.st_size, st.st_mtime_ns))


def _printable(rel: str) -> str:
    """A name safe to print and to put in JSON: undecodable bytes as ``\\xff``, control characters as ``\\n``,
    ``\\x1b`` (and a backslash as ``\\\\`` then, so the escapes read one way); other names as they are."""
    if not any(ord(c) < 32 or 0xDC80 <= ord(c) <= 0xDCFF or ord(c) == 127 for c in rel):
        return rel
    out = []
    for c in rel:
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:  # a byte that is not UTF-8 (os.fsdecode's surrogate escape)
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 32 or o == 127 or c == "\\":
            out.append(c.encode("unicode_escape").decode("ascii"))
        else:
            out.append(c)
    return "".join(out)
