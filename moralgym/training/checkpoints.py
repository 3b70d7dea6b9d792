"""Checkpoint I/O: atomic writes, a manifest of every file's size and SHA-256, verification on load.

A checkpoint is ``OUTPUT_DIR/checkpoints/episode-NNNNNN/`` (adapters, value heads, ``trainer_state.pt``) plus
``manifest.json``: the episode, the run's config and, per file, its size in bytes and SHA-256. It is written into a
hidden temporary directory next to it and renamed into place, so a kill mid-write never leaves a half checkpoint
under a checkpoint's name. :func:`find_checkpoint` checks the newest one against its manifest and falls back to the
newest one that passes, reporting every damaged file it skipped by name.

Checkpoints written before manifests existed (no ``manifest.json``) are accepted when their files load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
_NAME = re.compile(r"^episode-(\d+)$")


class CheckpointError(Exception):
    """A checkpoint that fails verification; the message names the checkpoint, the file and what is wrong."""


def checkpoint_dirs(output_dir: str | os.PathLike) -> list[Path]:
    """``episode-N`` checkpoint directories of a run, oldest first (temporary directories excluded)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def checkpoint_episode(directory: str | os.PathLike) -> int:
    match = _NAME.match(Path(directory).name)
    if match is None:
        raise ValueError(f"{directory} is not a checkpoint directory (episode-N)")
    return int(match.group(1))


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def write_checkpoint(directory: str | os.PathLike, write: Callable[[Path], None], info: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: ``write(tmp)`` fills a temporary directory, the manifest (``info`` plus every
    file's size and SHA-256) is added, everything is fsynced, then the directory is renamed to ``directory``."""
    directory = Path(directory)
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{directory.name}.*"):  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{directory.name}.tmp-{os.getpid()}"
    try:
        tmp.mkdir()
        write(tmp)
        files = {}
        for path in _files(tmp):
            files[path.relative_to(tmp).as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
            _fsync(path)
        manifest = {"format": MANIFEST_FORMAT, **info, "files": files}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        _fsync(tmp / MANIFEST_FILE)
        for sub in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            _fsync(sub)
        if directory.exists():
            old = parent / f".{directory.name}.old-{os.getpid()}"
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
        _fsync(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The checkpoint's manifest, ``None`` for a checkpoint written before manifests; raises if unreadable."""
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no 'files' table")
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable manifest ({error})") from None
    return manifest


def verify_checkpoint(directory: str | os.PathLike) -> dict[str, Any] | None:
    """Check every file of a checkpoint against its manifest (size, then SHA-256); returns the manifest (``None``
    for a pre-manifest checkpoint, whose files are test-loaded instead). Raises :class:`CheckpointError`."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        _try_load_legacy(directory)
        return None
    if STATE_FILE not in manifest["files"]:
        raise CheckpointError(f"{directory / MANIFEST_FILE}: lists no {STATE_FILE}")
    for name, entry in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing")
        size = path.stat().st_size
        if size != entry["size"]:
            raise CheckpointError(f"{path}: {size} bytes, the manifest says {entry['size']} (truncated or damaged)")
        if sha256_file(path) != entry["sha256"]:
            raise CheckpointError(f"{path}: SHA-256 differs from the manifest (damaged)")
    return manifest


def _try_load_legacy(directory: Path) -> None:
    import torch

    state = directory / STATE_FILE
    if not state.is_file():
        raise CheckpointError(f"{state}: missing")
    try:
        torch.load(state, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any failure to load means a damaged file
        raise CheckpointError(f"{state}: does not load ({type(error).__name__}: {error})") from None
    from safetensors.torch import load_file

    for path in sorted(directory.glob("adapter_*/*.safetensors")):
        try:
            load_file(str(path))
        except Exception as error:  # noqa: BLE001
            raise CheckpointError(f"{path}: does not load ({type(error).__name__}: {error})") from None


def find_checkpoint(output_dir: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that verifies, and one message per newer checkpoint that did not (naming the file)."""
    problems: list[str] = []
    for directory in reversed(checkpoint_dirs(output_dir)):
        try:
            verify_checkpoint(directory)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        return directory, problems
    return None, problems


def checkpoint_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The run config a checkpoint was written with (from its manifest, or from ``trainer_state.pt``)."""
    manifest = read_manifest(directory)
    if manifest is not None and isinstance(manifest.get("config"), dict):
        return manifest["config"]
    import torch

    return dict(torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=False)["config"])
