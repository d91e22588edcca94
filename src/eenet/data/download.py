"""Downloads that fail loudly and leave nothing half-written; archive extraction that cannot escape.

Building blocks for the datasets that come from the network (CIFAR, ImageNet archives, HF files).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from eenet.io import atomic_path

__all__ = ["ChecksumError", "DownloadError", "download", "safe_extract"]


class ChecksumError(RuntimeError):
    """A downloaded or mirrored file does not have the expected content."""


class DownloadError(RuntimeError):
    """A download that could not complete (refused, timed out, cut short, HTTP error)."""


def download(url: str, dest: str | os.PathLike[str], md5: str | None = None, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Stream ``url`` into ``dest``: written to a temporary sibling, checked, then renamed into place.

    Raises:
        DownloadError: connection refused or lost, HTTP error, fewer bytes than the server announced.
        ChecksumError: the content does not have the expected ``md5`` / ``sha256``.
    In every failure ``dest`` is left as it was (absent, or the previous file) and no temporary file remains,
    so the next run simply retries.
    """
    dest = Path(dest)
    hashes = {name: hashlib.new(name) for name, want in (("md5", md5), ("sha256", sha256)) if want}
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest) as tmp:
            expected = resp.headers.get("Content-Length")
            received = 0
            with open(tmp, "wb") as fh:
                while block := resp.read(1 << 20):
                    fh.write(block)
                    received += len(block)
                    for h in hashes.values():
                        h.update(block)
            if expected is not None and received != int(expected):
                raise DownloadError(f"{url}: truncated, received {received} of {expected} bytes")
            for name, want in (("md5", md5), ("sha256", sha256)):
                if want and hashes[name].hexdigest() != want:
                    raise ChecksumError(f"{url}: {name} is {hashes[name].hexdigest()}, expected {want}; nothing was kept")
    except http.client.IncompleteRead as exc:
        raise DownloadError(f"{url}: truncated, the connection closed after {len(exc.partial)} more bytes") from exc
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"could not download {url}: {exc.reason}") from exc
    except (TimeoutError, ConnectionError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc
    return dest


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise ValueError(f"refusing archive member {member.name!r}: absolute path or '..'")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"refusing archive member {member.name!r}: links and special files are not extracted")
    if not (root / name).resolve().is_relative_to(root):
        raise ValueError(f"refusing archive member {member.name!r}: it would land outside {root}")


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    members: Sequence[str] | None = None,
    check: Callable[[tarfile.TarInfo], None] | None = None,
) -> list[Path]:
    """Extract a tar archive (any compression) into ``dest`` after checking every member.

    Args:
        members: extract only these member names, in this order (all members when ``None``).
        check: called with each selected member's ``TarInfo`` before anything is extracted; it raises to refuse.
    Returns:
        The paths of the extracted files, in member order.
    Raises:
        ValueError: a member with an absolute path, a ``..`` component, a link or a special file; nothing
            is extracted then.
        KeyError: a name of ``members`` is not in the archive; nothing is extracted then.
    """
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        selected = []
        for member in tar.getmembers() if members is None else map(tar.getmember, members):
            _check_member(member, root)
            if check is not None:
                check(member)
            selected.append(member)
        tar.extractall(root, members=selected, filter="data")
    return [root / m.name for m in selected if m.isfile()]
