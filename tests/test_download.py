"""Downloads from a loopback HTTP server: refused, truncated, wrong checksum, retry; unsafe archives."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eenet.data import ChecksumError
from eenet.download import DownloadError, download, safe_extract

PAYLOAD = bytes(range(256)) * 400


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = PAYLOAD
        self.send_response(200)
        if self.path == "/truncated":
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_download_verifies_and_writes(server, tmp_path):
    dest = download(f"{server}/data.bin", tmp_path / "data.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD


def test_wrong_checksum_leaves_nothing_and_a_retry_succeeds(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumError, match="md5 is"):
        download(f"{server}/data.bin", dest, md5="0" * 32)
    assert list(tmp_path.iterdir()) == []
    download(f"{server}/data.bin", dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD


def test_truncated_download_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="truncated"):
        download(f"{server}/truncated", tmp_path / "data.bin")
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_is_named(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DownloadError, match="could not download .*refused"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", timeout=5)
    assert list(tmp_path.iterdir()) == []


def _tar(tmp_path, name: str, link: bool = False):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
    return path


def test_safe_extract_extracts_plain_members(tmp_path):
    out = safe_extract(_tar(tmp_path, "cifar/data_batch_1"), tmp_path / "out")
    assert [p.read_bytes() for p in out] == [b"hello"]


@pytest.mark.parametrize(("name", "link"), [("../evil", False), ("/abs/evil", False), ("cifar/../../evil", False), ("lnk", True)])
def test_safe_extract_refuses_escaping_members(tmp_path, name, link):
    with pytest.raises(ValueError, match="refusing archive member"):
        safe_extract(_tar(tmp_path, name, link), tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not any((tmp_path / "out").iterdir())
