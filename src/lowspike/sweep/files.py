"""Files as bytes and back: what travels between the driver's workspace, Ray's object store
and a task's scratch directory.

A *tree* is a mapping ``{relative posix path: bytes}``; a file out is a tree of one entry.
Writes into the workspace replace the old file or directory with one rename, so a reader
sees the old version or the new one, never a mixture.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Mapping

Tree = dict[str, bytes]


def is_within(path: str, folder: str) -> bool:
    """``path`` equals ``folder`` or lies under it (both relative posix paths)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def read_tree(root: Path, relative: str, exclude: Iterable[str] = ()) -> Tree:
    """The files under ``root/relative`` (a file or a directory) as ``{path relative to root:
    bytes}``, leaving out every path within one of ``exclude``; a missing path gives ``{}``."""
    excluded = [e for e in exclude]
    start = root / relative
    if not start.exists():
        return {}
    files = [start] if start.is_file() else sorted(p for p in start.rglob("*") if p.is_file())
    tree: Tree = {}
    for path in files:
        name = path.relative_to(root).as_posix()
        if "__pycache__" in name.split("/") or any(is_within(name, e) for e in excluded):
            continue
        tree[name] = path.read_bytes()
    return tree


def write_tree(root: Path, tree: Mapping[str, bytes]) -> None:
    """Write every file of ``tree`` under ``root`` (parents created, existing files replaced)."""
    for name, data in tree.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_bytes(data)


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file under ``source`` to the same place under ``target`` (a copy where
    the two lie on different file systems); existing files in ``target`` are replaced."""
    for path in source.rglob("*"):
        if not path.is_file() or path.name == ".complete":
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.is_symlink() or destination.exists():
            destination.unlink()
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


def subtree(tree: Mapping[str, bytes], relative: str) -> Tree:
    """The entries of ``tree`` within ``relative``."""
    return {name: data for name, data in tree.items() if is_within(name, relative)}


def replace_in_workspace(root: Path, relative: str, tree: Mapping[str, bytes], is_dir: bool) -> None:
    """Put the file or directory ``relative`` of ``tree`` into ``root``, replacing what was there
    with one ``rename``: the new version is written beside the target first, and never into
    the old file (which may be a hard link into DVC's cache)."""
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.sweep-{uuid.uuid4().hex[:8]}"
    if is_dir:
        staging.mkdir()
        prefix = relative.rstrip("/") + "/"
        write_tree(staging, {name[len(prefix):]: data for name, data in tree.items()})
    else:
        staging.write_bytes(tree[relative])
    old = None
    if is_dir and (target.is_symlink() or target.is_file()):
        target.unlink()
    elif target.is_dir() and not target.is_symlink():
        old = target.parent / f".{target.name}.sweep-old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
