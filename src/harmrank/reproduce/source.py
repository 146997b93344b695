"""Where the study's data comes from: a local folder, a local archive, or a pinned download.

GitHub regenerates repository archives, so their bytes (and SHA-256) are not stable over time.
What we pin instead is the SHA-256 of the data itself: a digest over the CSV files' relative
paths and bytes. A download is unpacked into a temporary folder, its content digest checked,
and only then moved into the cache, so a bad or partial download never poisons the cache.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx

from harmrank.common.errors import BadRequest, UpstreamError

STUDY_REPOSITORY = "https://github.com/psunlpgroup/LLM-Harm"
STUDY_COMMIT = "21028997aa0ee6fd0c46e420a669627689f1730c"
STUDY_ARCHIVE_URL = f"{STUDY_REPOSITORY}/archive/{STUDY_COMMIT}.zip"
STUDY_CONTENT_SHA256 = "f0c59d8def9c4e2e8ade03433adcac8cd35d433adc72ddf06f2e966ce320bb68"
MARKER = "gpt4o_predictions.csv"
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=120.0)

Progress = Callable[[int, int | None], None]


class DataSourceError(BadRequest):
    error_type = "data_source"


def cache_dir() -> Path:
    base = os.environ.get("HARMRANK_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "harmrank" if base else Path.home() / ".cache" / "harmrank"


def content_sha256(folder: Path) -> str:
    """SHA-256 over every CSV under ``folder``: relative path, length and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.csv")):
        data = path.read_bytes()
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def find_study_root(folder: Path) -> Path:
    """The folder holding the judge files (an archive nests it one level or more down)."""
    if (folder / MARKER).is_file():
        return folder
    for marker in sorted(folder.rglob(MARKER)):
        return marker.parent
    raise DataSourceError(f"{folder}: no {MARKER} found; is this the study's data?")


def _extract(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_members(archive, zf.namelist())
            zf.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
    else:
        raise DataSourceError(f"{archive}: not a zip or tar archive")


def _check_members(archive: Path, names: list[str]) -> None:
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise DataSourceError(f"{archive}: unsafe path in archive: {name!r}")


def _download(url: str, target: Path, progress: Progress | None) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise UpstreamError(f"download of {url} failed: HTTP {response.status_code}")
            total = (
                int(response.headers["content-length"])
                if "content-length" in response.headers
                else None
            )
            done = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"download of {url} failed: {type(exc).__name__}: {exc}") from exc


def _verified(folder: Path, expected: str | None, origin: str) -> Path:
    root = find_study_root(folder)
    if expected is not None:
        actual = content_sha256(root)
        if actual != expected:
            raise DataSourceError(
                f"{origin}: content SHA-256 {actual} does not match the pinned {expected}"
            )
    return root


def fetch(url: str, *, expected_sha256: str | None, progress: Progress | None = None) -> Path:
    """Download ``url`` once into the cache, verified; later calls answer from the cache."""
    key = hashlib.sha256(f"{url}\0{expected_sha256}".encode()).hexdigest()[:16]
    cached = cache_dir() / "data" / key
    if cached.is_dir():
        return _verified(cached, expected_sha256, str(cached))
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cached.parent) as tmp:
        archive = Path(tmp) / "archive"
        _download(url, archive, progress)
        unpacked = Path(tmp) / "unpacked"
        _extract(archive, unpacked)
        _verified(unpacked, expected_sha256, url)
        unpacked.rename(cached)
    return _verified(cached, None, str(cached))


def resolve(data: str | None, *, progress: Progress | None = None) -> tuple[Path, str]:
    """The study folder for ``--data`` (folder, archive or URL; None: pinned download), a label."""
    if data is None:
        # A mirror may stand in for GitHub; the pinned content digest is checked all the same.
        url = os.environ.get("HARMRANK_STUDY_ARCHIVE_URL", STUDY_ARCHIVE_URL)
        root = fetch(url, expected_sha256=STUDY_CONTENT_SHA256, progress=progress)
        return root, f"{url} (content sha256 {STUDY_CONTENT_SHA256})"
    if data.startswith(("http://", "https://")):
        return fetch(data, expected_sha256=None, progress=progress), data
    path = Path(data).expanduser()
    if path.is_dir():
        return find_study_root(path), str(path)
    if path.is_file():
        unpacked = cache_dir() / "local" / hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if not unpacked.is_dir():
            with tempfile.TemporaryDirectory(dir=_ensure(unpacked.parent)) as tmp:
                _extract(path, Path(tmp) / "unpacked")
                (Path(tmp) / "unpacked").rename(unpacked)
        return find_study_root(unpacked), str(path)
    raise DataSourceError(f"--data {data}: no such folder, archive or URL")


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
