"""Where the data comes from: folders, archives and the pinned, checked, cached download."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harmrank.common.errors import UpstreamError
from harmrank.reproduce import source

ServeApp = Callable[[Starlette], str]


class ArchiveServer:
    """Serves archives by name over HTTP and counts the downloads."""

    def __init__(self, archives: dict[str, bytes]) -> None:
        self.archives = archives
        self.hits = 0
        self.app = Starlette(routes=[Route("/{name}", self.serve)])

    async def serve(self, request: Request) -> Response:
        self.hits += 1
        data = self.archives.get(request.path_params["name"])
        if data is None:
            return Response("Not Found", status_code=404)
        return Response(data, media_type="application/zip")


def test_pinned_digest_matches_the_shipped_data(paper_data: Path) -> None:
    assert source.content_sha256(paper_data) == source.STUDY_CONTENT_SHA256


def test_folder_is_used_as_is(paper_data: Path) -> None:
    root, label = source.resolve(str(paper_data))
    assert root == paper_data
    assert label == str(paper_data)


def test_parent_folder_is_searched(paper_data: Path) -> None:
    root, _ = source.resolve(str(paper_data.parent))
    assert root == paper_data


def test_default_download_is_checked_and_cached(
    serve_app: ServeApp, paper_zip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ArchiveServer({"study.zip": paper_zip})
    monkeypatch.setenv("HARMRANK_STUDY_ARCHIVE_URL", serve_app(server.app) + "/study.zip")
    root, label = source.resolve(None)
    assert (root / "gpt4o_predictions.csv").is_file()
    assert source.STUDY_CONTENT_SHA256 in label
    again, _ = source.resolve(None)
    assert again == root
    assert server.hits == 1  # the second call is answered from the cache


def test_download_with_other_content_is_refused_and_not_cached(
    serve_app: ServeApp, paper_data: Path, monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(paper_data.rglob("*.csv")):
            data = path.read_bytes()
            if path.name == "gpt4o_predictions.csv":
                data = data.replace(b"N/A", b"1", 1)  # one changed byte is enough
            zf.writestr("top/" + path.relative_to(paper_data).as_posix(), data)
    server = ArchiveServer({"study.zip": buffer.getvalue()})
    monkeypatch.setenv("HARMRANK_STUDY_ARCHIVE_URL", serve_app(server.app) + "/study.zip")
    with pytest.raises(source.DataSourceError, match="does not match the pinned"):
        source.resolve(None)
    assert not any((private_cache / "data").glob("*/*"))


def test_download_failure_names_the_url_and_status(serve_app: ServeApp) -> None:
    base = serve_app(ArchiveServer({}).app)
    with pytest.raises(UpstreamError, match=r"missing\.zip failed: HTTP 404"):
        source.resolve(base + "/missing.zip")


def test_unreachable_url_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="ConnectError"):
        source.resolve("http://127.0.0.1:9/archive.zip")


def test_local_zip_and_tar_archives(paper_data: Path, paper_zip: bytes, tmp_path: Path) -> None:
    zip_path = tmp_path / "study.zip"
    zip_path.write_bytes(paper_zip)
    tar_path = tmp_path / "study.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(paper_data, arcname="LLM-Harm")
    for archive in (zip_path, tar_path):
        root, _ = source.resolve(str(archive))
        assert source.content_sha256(root) == source.STUDY_CONTENT_SHA256


def test_unsafe_archive_paths_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape/gpt4o_predictions.csv", "x")
    with pytest.raises(source.DataSourceError, match="unsafe path"):
        source.resolve(str(archive))


def test_missing_path_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(source.DataSourceError, match="no such folder, archive or URL"):
        source.resolve(str(tmp_path / "nothing-here"))
    with pytest.raises(source.DataSourceError, match=r"no gpt4o_predictions\.csv"):
        source.resolve(str(tmp_path))
