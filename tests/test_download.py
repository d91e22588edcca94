"""Downloads from a loopback HTTP server: refused, truncated, wrong checksum, retry; unsafe archives."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import FMNIST, copy_workflow, needs_fmnist, serve, snakemake, tiny_config

from eenet.data import load_images
from eenet.data.download import ChecksumError, DownloadError, download, safe_extract
from eenet.data.fetch import fetch_dataset

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


# ---------------------------------------------------------------------------------------------------
# the dataset fetch through a URL mirror, and the download rule itself


def test_fetch_from_a_url_mirror_verifies_and_loads(tiny_dataset, tmp_path):
    mirror, arrays = tiny_dataset
    srv, url = serve(mirror)
    try:
        fetch_dataset("tiny", tmp_path / "data", url)
    finally:
        srv.shutdown()
        srv.server_close()
    images, _ = load_images("tiny", tmp_path / "data", train=False)
    assert images.shape == (5, 1, 28, 28)
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["Tiny"]  # no download leftovers


def test_truncated_mirror_download_keeps_nothing_and_the_next_run_retries(tiny_dataset, tmp_path):
    mirror, _ = tiny_dataset
    dest = tmp_path / "data"
    srv, url = serve(mirror, cut={"t10k-images-idx3-ubyte.gz"})
    try:
        with pytest.raises(DownloadError, match="truncated"):
            fetch_dataset("tiny", dest, url)
    finally:
        srv.shutdown()
        srv.server_close()
    assert not (dest / "Tiny" / "raw" / "t10k-images-idx3-ubyte").exists()
    assert not [p for p in dest.rglob("*") if p.name.startswith(".")]
    srv, url = serve(mirror)
    try:
        fetch_dataset("tiny", dest, url)
    finally:
        srv.shutdown()
        srv.server_close()
    assert (dest / "Tiny" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_truncated_archive_in_a_local_mirror_is_named(tiny_dataset, tmp_path):
    mirror, _ = tiny_dataset
    gz = mirror / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(ChecksumError, match="truncated or corrupt archive"):
        fetch_dataset("tiny", tmp_path / "data", str(mirror))
    assert not (tmp_path / "data" / "Tiny" / "raw" / "train-images-idx3-ubyte").exists()


@needs_fmnist
def test_download_rule_through_a_url_mirror_and_a_refused_connection(tmp_path):
    tiny = tiny_config()
    copy_workflow(tmp_path, tiny)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    (tmp_path / "config" / "config.yaml").write_text(tiny.replace(str(FMNIST), f"http://127.0.0.1:{closed_port}"))
    proc = snakemake(tmp_path, "data/fashion_mnist/manifest.json", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "download_dataset" / "fashion_mnist.log").read_text()
    assert "DownloadError: could not download" in log and "refused" in log
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    srv, url = serve(FMNIST)
    try:
        (tmp_path / "config" / "config.yaml").write_text(tiny.replace(str(FMNIST), url))
        snakemake(tmp_path, "data/fashion_mnist/manifest.json")
    finally:
        srv.shutdown()
        srv.server_close()
    manifest = json.loads((tmp_path / "data" / "fashion_mnist" / "manifest.json").read_text())
    assert manifest["source"] == url and len(manifest["files"]) == 4


def test_torchvision_download_failure_says_how_to_work_offline(tiny_dataset, tmp_path, monkeypatch):
    import torchvision.datasets

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{closed_port}/"])
    with pytest.raises(DownloadError, match="(?s)could not download tiny with torchvision .*Connection refused.*set datasets.tiny.mirror"):
        fetch_dataset("tiny", tmp_path / "data", None)
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
