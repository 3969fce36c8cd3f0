"""Security and data safety of deployed artifacts (issue 14; docs/safety.md).

No code from an artifact runs before the artifact is verified: a ``.pt2`` whose compiled
library was swapped for one with a constructor never runs it (``read_metadata``,
``load_deployed``, ``ffpt metad``, LAMMPS ``pair_coeff``); edits of weights or metadata are
caught by the content hash; failed loads and failed writes leave nothing behind; a training
checkpoint given as an artifact gets a hint; broken structures give an error naming atoms.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from toy_model import ToyModel

from ffpt.deploy import (
    ArtifactError,
    UntrustedArtifactError,
    deploy_model,
    load_deployed,
    read_metadata,
)
from ffpt.deploy.trust import METADATA_RECORD, content_sha256

EVIL_C = r"""
#include <stdio.h>
__attribute__((constructor)) static void ffpt_evil(void) {
  FILE *f = fopen("%s", "w");
  if (f) { fputs("constructor ran\n", f); fclose(f); }
}
"""

BOX = """units metal
atom_style atomic
region b block 0 8 0 8 0 8
create_box 2 b
create_atoms 1 single 1 1 1
create_atoms 2 single 1.9 1.6 1
create_atoms 2 single 0.2 1.6 1
mass 1 15.999
mass 2 1.008
pair_style ffpt {options}
pair_coeff * * {model} O H
run 0
print "PE $(pe:%.12g)"
"""


@pytest.fixture(scope="module")
def pt2(tmp_path_factory) -> Path:
    """A real (tiny) AOTInductor artifact, compiled once (~30 s) and trusted by its deploy."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("pt2") / "toy.pt2"
    deploy_model(ToyModel(["H", "O"], cutoff=3.0, num_interactions=1), path, fmt="aotinductor")
    return path


@pytest.fixture(scope="module")
def evil_so(tmp_path_factory) -> tuple[bytes, Path]:
    """A shared library whose constructor writes a marker file; (bytes, marker path)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to build the malicious library")
    d = tmp_path_factory.mktemp("evil")
    marker = d / "MARKER"
    (d / "evil.c").write_text(EVIL_C % marker)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(d / "evil.so"), str(d / "evil.c")],
                   check=True, capture_output=True)
    return (d / "evil.so").read_bytes(), marker


def _swap_library(src: Path, dst: Path, payload: bytes, reseal: bool) -> Path:
    """Copy of ``src`` with its compiled wrapper library replaced by ``payload``; ``reseal``
    recomputes the content hash (the algorithm is public, so an attacker can)."""
    with zipfile.ZipFile(src) as zin:
        infos = zin.infolist()
        data = {i.filename: zin.read(i) for i in infos}
    top = infos[0].filename.split("/", 1)[0]
    for name in data:
        if name.endswith(".wrapper.so"):
            data[name] = payload
    meta_name = f"{top}/{METADATA_RECORD}"
    if reseal:
        text = data[meta_name].decode()
        records = {n.split("/", 1)[1]: b for n, b in data.items()}
        digest = content_sha256(records, text)
        data[meta_name] = "".join(
            f"artifact_sha256={digest}\n" if line.startswith("artifact_sha256=") else f"{line}\n"
            for line in text.splitlines()).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for info in infos:
            zout.writestr(info, data[info.filename])
    return dst


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """TMPDIR for this test only, to see what loaders leave behind."""
    d = tmp_path / "tmpdir"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return d


def _leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.startswith(("aotinductor_", "ffpt-aoti"))]


@pytest.mark.parametrize("reseal", [False, True], ids=["hash-stale", "hash-recomputed"])
def test_swapped_library_never_runs_in_python(pt2, evil_so, tmp_path, private_tmp, reseal):
    payload, marker = evil_so
    evil = _swap_library(pt2, tmp_path / "evil.pt2", payload, reseal)
    assert read_metadata(evil).elements == ["H", "O"]  # reads the archive, loads nothing
    expected = (UntrustedArtifactError, "not deployed on this machine") if reseal else (
        ArtifactError, "artifact modified after deployment")
    with pytest.raises(expected[0], match=expected[1]) as exc:
        load_deployed(evil)
    assert "\n" not in str(exc.value)
    from ffpt.calculator import load_calculator  # what ffpt metad and ffpt scan use

    with pytest.raises(Exception, match=expected[1]):  # the CLI may wrap it
        load_calculator(evil)
    assert not marker.exists(), "the library's constructor ran"
    assert _leftovers(private_tmp) == []


def _lammps_run(workdir: Path, model: Path, options: str = "", env: dict | None = None):
    from ffpt.lammps import plugin_built, run_lammps

    if not plugin_built():
        pytest.skip("plugin not built: run `ffpt build-plugin`")
    workdir.mkdir(exist_ok=True)
    (workdir / "in.lmp").write_text(BOX.format(options=options, model=model))
    return run_lammps("in.lmp", workdir, check=False, env=env)


@pytest.mark.lammps
def test_swapped_library_never_runs_in_lammps(pt2, evil_so, tmp_path):
    payload, marker = evil_so
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    for reseal, expected in ((False, "artifact modified after deployment"),
                             (True, "not deployed on this machine")):
        evil = _swap_library(pt2, tmp_path / f"evil{reseal}.pt2", payload, reseal)
        run = _lammps_run(tmp_path / f"run{reseal}", evil, env={"TMPDIR": str(tmpdir)})
        assert run.returncode != 0 and expected in run.stdout, run.stdout[-2000:]
        assert not marker.exists(), "the library's constructor ran inside LAMMPS"
    assert _leftovers(tmpdir) == []


@pytest.mark.lammps
def test_compiled_artifact_trust_opt_in_lammps(pt2, tmp_path):
    """A genuine .pt2 from another machine (empty allow-list): refused; `trust yes` runs it."""
    env = {"FFPT_TRUST_FILE": str(tmp_path / "empty-list")}
    run = _lammps_run(tmp_path / "a", pt2, env=env)
    assert run.returncode != 0 and "pair_style ffpt trust yes" in run.stdout
    run = _lammps_run(tmp_path / "b", pt2, options="trust yes", env=env)
    assert run.returncode == 0, run.stdout[-2000:]
    assert np.isfinite(float(next(ln.split()[1] for ln in run.stdout.splitlines()
                                  if ln.startswith("PE "))))
    # trusted but broken (no valid library): one error, the private folder is removed
    broken = _swap_library(pt2, tmp_path / "broken.pt2", b"not a shared library", reseal=True)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    run = _lammps_run(tmp_path / "c", broken, options="trust yes",
                      env={**env, "TMPDIR": str(tmpdir)})
    assert run.returncode != 0 and "cannot load AOTInductor package" in run.stdout
    assert _leftovers(tmpdir) == []


def test_compiled_artifact_trust_opt_in_python(pt2, tmp_path, monkeypatch):
    """Empty allow-list: refused; ``allow_compiled=True`` or ``ffpt-deploy --trust`` admit it,
    and the verified package evaluates like the TorchScript artifact of the same model."""
    from click.testing import CliRunner

    from ffpt.deploy.cli import deploy

    copy = tmp_path / "copy.pt2"
    shutil.copy(pt2, copy)
    monkeypatch.setenv("FFPT_TRUST_FILE", str(tmp_path / "list"))
    with pytest.raises(UntrustedArtifactError, match="allow_compiled=True"):
        load_deployed(copy)
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    e1 = load_deployed(copy, allow_compiled=True).evaluate(atoms)["energy"]
    res = CliRunner().invoke(deploy, [str(copy), "--trust"])
    assert res.exit_code == 0 and "trusted" in res.output, res.output
    e2 = load_deployed(copy).evaluate(atoms)["energy"]
    assert e1 == e2 and np.isfinite(e1)


def test_failed_compiled_load_cleans_up(pt2, tmp_path, private_tmp):
    """A trusted-but-broken package (no valid library): one clear error, no temp folder left."""
    broken = _swap_library(pt2, tmp_path / "broken.pt2", b"not a shared library", reseal=True)
    with pytest.raises(ArtifactError, match="cannot load the compiled package") as exc:
        load_deployed(broken, allow_compiled=True)
    assert "\n" not in str(exc.value)
    assert _leftovers(private_tmp) == []


def _edit(src: Path, dst: Path, key: str | None = None, value: str = "",
          record: str | None = None) -> Path:
    """Copy of an artifact with one metadata value changed (hash kept) or one record byte
    flipped."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if key and info.filename.endswith(METADATA_RECORD):
                data = "".join(f"{key}={value}\n" if ln.startswith(f"{key}=") else f"{ln}\n"
                               for ln in data.decode().splitlines()).encode()
            if record and info.filename.endswith("/" + record):
                data = bytes([data[0] ^ 1]) + data[1:]
            zout.writestr(info, data)
    return dst


@pytest.mark.parametrize(("key", "value"), [("cutoff", "5.0"), ("elements", "O H"),
                                            ("num_interactions", "3"), ("masses", "1 1"),
                                            (None, "data/0")])
def test_hand_edits_are_caught(tmp_path, key, value):
    """Edited metadata or weights (TorchScript): refused before use, one line naming the fix."""
    art = tmp_path / "toy.pt"
    deploy_model(ToyModel(["H", "O"], cutoff=3.0), art)
    edited = (_edit(art, tmp_path / "e.pt", key, value) if key
              else _edit(art, tmp_path / "e.pt", record=value))
    with pytest.raises(ArtifactError, match=r"modified after deployment.*redeploy"):
        load_deployed(edited)
    load_deployed(art)  # the original still loads


def test_edited_compiled_metadata_is_caught(pt2, tmp_path):
    edited = _edit(pt2, tmp_path / "e.pt2", "cutoff", "6.0")
    with pytest.raises(ArtifactError, match="modified after deployment"):
        load_deployed(edited, allow_compiled=True)


def test_checkpoint_is_not_an_artifact(tmp_path):
    from ffpt.model import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "model.ckpt", ToyModel(["H", "O"], cutoff=3.0), {})
    with pytest.raises(ArtifactError, match=f"training checkpoint.*ffpt-deploy {ckpt}"):
        load_deployed(ckpt)


def test_close_atoms_and_absurd_forces_python(tmp_path):
    art = tmp_path / "toy.pt"
    deploy_model(ToyModel(["H", "O"], cutoff=3.0), art)
    model = load_deployed(art)
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [0.96, 0, 1e-9]])
    with pytest.raises(ValueError, match="atoms 1 and 2 are 1e-09 A apart"):
        model.evaluate(atoms)


FULL_DISK = """
import resource, signal, sys
from ffpt.deploy.cli import main
import torch, e3nn  # imported before the limit
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
sys.argv = ["ffpt-deploy", sys.argv[1], "-o", sys.argv[2]]
main()
"""


def test_deploy_on_full_disk_fails_cleanly(tmp_path):
    """Writing the artifact fails (file-size limit = a full disk): exit 1 with one line, no
    abort inside libtorch, no temp file left."""
    from ffpt.model import build_model, save_checkpoint

    cfg = {"features": 16, "num_radial": 8, "cutoff": 4.0, "num_interactions": 2}
    ckpt = save_checkpoint(tmp_path / "m.ckpt", build_model(cfg, ["H", "O"]), cfg)
    out = tmp_path / "out" / "m.pt"
    out.parent.mkdir()
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(ckpt), str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and f"cannot write {out}" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert list(out.parent.iterdir()) == []
