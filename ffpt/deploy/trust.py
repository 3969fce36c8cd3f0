"""Artifact integrity and trust: the content hash and the allow-list of compiled artifacts.

An artifact (TorchScript ``.pt`` or AOTInductor ``.pt2``) is a PyTorch zip archive whose
records live under one top-level folder; ffpt adds the record ``extra/ffpt_metadata.txt``.

- **Content hash** (``artifact_sha256`` in the metadata): SHA-256 over every record except the
  metadata record and ``.data/serialization_id`` (a writer id), in sorted name order, each as
  ``name \\n size \\n bytes``, then ``extra/ffpt_metadata.txt \\n`` and the metadata lines except
  the ``artifact_sha256`` line. It covers weights, code and metadata: an edit is caught.
  ``pair_style ffpt`` computes the same hash in C++ (``lammps_plugin/sha256.h``).
- **Allow-list**: compiled ``.pt2`` artifacts contain native code, so they are loaded only if
  the SHA-256 of the whole file is listed in ``$FFPT_TRUST_FILE`` (default
  ``$XDG_CACHE_HOME/ffpt/trusted-artifacts``, ``~/.cache/...``), which ``ffpt-deploy`` writes on
  this machine, or on explicit opt-in. Lines are ``sha256sum`` style: ``<hex>  <path>``.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

METADATA_RECORD = "extra/ffpt_metadata.txt"
HASH_KEY = "artifact_sha256"
UNHASHED = (METADATA_RECORD, ".data/serialization_id")
REDEPLOY = "redeploy with ffpt-deploy"


class ArtifactError(ValueError):
    """Not an ffpt artifact, or one that was modified after deployment."""


class UntrustedArtifactError(ArtifactError):
    """A compiled (.pt2) artifact that this machine did not deploy and nobody trusted."""


def read_records(data: bytes, path: str | os.PathLike) -> tuple[str, dict[str, bytes]]:
    """``(top folder, {record name: bytes})`` of a PyTorch zip archive (no code is loaded)."""
    kind = "an AOTInductor package" if str(path).endswith(".pt2") else "a TorchScript archive"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1 or len(set(names)) != len(names) or any(
                    "/" not in n or ".." in n.split("/") or n.startswith("/") for n in names):
                raise ArtifactError(f"{path} is not an ffpt artifact (malformed archive)")
            return tops.pop(), {n.split("/", 1)[1]: zf.read(n) for n in names}
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path} is not an ffpt artifact (not {kind}); "
                            "create it with ffpt-deploy") from exc


def metadata_text(records: dict[str, bytes], path: str | os.PathLike) -> str:
    """The ffpt metadata record, or an error that says what the file is instead."""
    if METADATA_RECORD in records:
        return records[METADATA_RECORD].decode()
    names = list(records)
    if "data.pkl" in records and not any(n.startswith(("code/", "data/aotinductor/"))
                                         for n in names):
        raise ArtifactError(f"{path} is a training checkpoint, not a deployed artifact; deploy it "
                            f"first: ffpt-deploy {path}")
    what = ("an AOTInductor package" if any(n.startswith("data/aotinductor/") for n in names)
            else "a TorchScript file")
    raise ArtifactError(f"{path} is {what} but not an ffpt artifact (no {METADATA_RECORD}); "
                        "create it with ffpt-deploy")


def content_sha256(records: dict[str, bytes], text: str) -> str:
    """The content hash (see the module docstring)."""
    h = hashlib.sha256()
    for name in sorted(n for n in records if n not in UNHASHED):
        h.update(f"{name}\n{len(records[name])}\n".encode())
        h.update(records[name])
    h.update(f"{METADATA_RECORD}\n".encode())
    h.update(canonical_metadata(text).encode())
    return h.hexdigest()


def canonical_metadata(text: str) -> str:
    """Metadata lines without the hash line, each ending in a newline."""
    return "".join(f"{line}\n" for line in text.split("\n")
                   if line and not line.startswith(f"{HASH_KEY}="))


def verify_content(records: dict[str, bytes], text: str, recorded: str,
                   path: str | os.PathLike) -> None:
    """Raise :class:`ArtifactError` unless the records and metadata match the recorded hash."""
    if not recorded:
        raise ArtifactError(f"{path} has no {HASH_KEY} (deployed by an older ffpt); {REDEPLOY}")
    if content_sha256(records, text) != recorded:
        raise ArtifactError(f"{path}: artifact modified after deployment (weights, code or "
                            f"metadata do not match its recorded hash); {REDEPLOY}")


def trust_file() -> Path:
    """The allow-list of compiled artifacts (``$FFPT_TRUST_FILE`` or the user cache)."""
    if os.environ.get("FFPT_TRUST_FILE"):
        return Path(os.environ["FFPT_TRUST_FILE"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ffpt" / "trusted-artifacts"


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_trusted(digest: str) -> bool:
    path = trust_file()
    if not path.is_file():
        return False
    return any(line.split()[:1] == [digest] for line in path.read_text().splitlines())


def add_trusted(digest: str, label: str) -> Path:
    """Append ``digest`` to the allow-list (one ``O_APPEND`` write; created 0600)."""
    path = trust_file()
    if is_trusted(digest):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{digest}  {label}\n".encode())
    finally:
        os.close(fd)
    return path


def untrusted_message(path: str | os.PathLike, digest: str) -> str:
    return (f"{path} is a compiled AOTInductor artifact that was not deployed on this machine "
            f"(sha256 {digest[:16]}... is not in {trust_file()}); it contains native code that "
            f"would run with your rights. Only if you trust its source: ffpt-deploy --trust "
            f"{path}, or load_deployed(..., allow_compiled=True) / pair_style ffpt trust yes")
