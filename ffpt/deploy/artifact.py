"""Load a deployed artifact in Python and evaluate it exactly as ``pair_style ffpt`` does.

Nothing is loaded before the artifact is verified: the file is read once, its content hash
(weights, code, metadata) is checked, a compiled ``.pt2`` must be on this machine's allow-list
(or ``allow_compiled=True``), and then exactly the verified bytes are loaded (``trust.py``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ffpt.data.frames import MIN_DISTANCE
from ffpt.deploy.deploy import DTYPES, FORMAT_VERSION, ArtifactMetadata
from ffpt.deploy.trust import (
    METADATA_RECORD,
    ArtifactError,
    UntrustedArtifactError,
    file_sha256,
    is_trusted,
    metadata_text,
    read_records,
    untrusted_message,
    verify_content,
)
from ffpt.model.forces import virial_to_stress

MAX_FORCE = 1e4  # eV/A: larger forces mean broken coordinates or a broken model


def _read(path: Path) -> tuple[bytes, dict[str, bytes], ArtifactMetadata]:
    if not path.is_file():
        raise FileNotFoundError(f"deployed model {path} does not exist")
    data = path.read_bytes()
    records = read_records(data, path)[1]
    text = metadata_text(records, path)
    try:
        meta = ArtifactMetadata.from_text(text)
    except ValueError as exc:
        raise ArtifactError(f"{path}: {exc}") from exc
    return data, records, meta


def read_metadata(path: str | os.PathLike) -> ArtifactMetadata:
    """Metadata of an artifact, read from the archive without loading (or verifying) its code."""
    return _read(Path(path))[2]


def verify_artifact(path: str | os.PathLike,
                    allow_compiled: bool = False) -> tuple[ArtifactMetadata, dict[str, bytes]]:
    """Metadata and records of a verified artifact; :class:`ArtifactError` if it was modified
    after deployment, :class:`UntrustedArtifactError` for a compiled artifact not trusted here."""
    path = Path(path)
    data, records, meta = _read(path)
    if meta.format_version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format version {meta.format_version}, this ffpt reads "
            f"{FORMAT_VERSION}; re-deploy the checkpoint with this ffpt")
    verify_content(records, records[METADATA_RECORD].decode(), meta.artifact_sha256,
                   path)
    if path.suffix == ".pt2" and not allow_compiled:
        digest = file_sha256(data)
        if not is_trusted(digest):
            raise UntrustedArtifactError(untrusted_message(path, digest))
    return meta, records


class DeployedModel:
    """A loaded artifact: ``module`` (TorchScript), ``metadata``, and ``evaluate``."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu",
                 allow_compiled: bool = False) -> None:
        self.path = Path(path)
        self.metadata, records = verify_artifact(self.path, allow_compiled)
        self.device = torch.device(device)
        # as in pair_style ffpt: the profiling executor re-specialises on every new edge count
        # and runs ~2x slower than eager; the legacy executor matches eager (process-wide)
        torch._C._jit_set_profiling_executor(False)
        self.aoti = self.path.suffix == ".pt2"
        if self.aoti:
            from ffpt.deploy.aoti import load_package

            index = self.device.index if self.device.type == "cuda" else -1
            try:
                self.module = load_package(records, -1 if index is None else index)
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ArtifactError(f"{self.path}: cannot load the compiled package ({first}); "
                                    "redeploy with ffpt-deploy on this machine") from exc
        else:
            buf = io.BytesIO(_rebuild_zip(records))
            self.module = torch.jit.load(buf, map_location=self.device)
        self.dtype = DTYPES[self.metadata.dtype]
        self.elements = list(self.metadata.elements)
        self.cutoff = self.metadata.cutoff
        self.num_interactions = self.metadata.num_interactions

    def species(self, symbols: list[str]) -> np.ndarray:
        index = {s: k for k, s in enumerate(self.elements)}
        unknown = sorted(set(symbols) - set(index))
        if unknown:
            raise ValueError(f"elements {unknown} are not in the model (it knows {self.elements})")
        return np.array([index[s] for s in symbols], dtype=np.int64)

    def evaluate(self, atoms) -> dict[str, np.ndarray | float]:
        """Energy (eV), atomic energies, forces (eV/A) and virial (eV) of an ``ase.Atoms``."""
        from ffpt.data.graph import neighbor_graph

        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = np.asarray(atoms.cell.array) if pbc.any() else None
        edge_index, shifts = neighbor_graph(atoms.positions, cell, pbc, self.cutoff)
        _check_distances(atoms.positions, edge_index, shifts)
        kw = {"dtype": self.dtype, "device": self.device}
        n = len(atoms)
        args = (
            torch.as_tensor(atoms.positions, **kw),
            torch.as_tensor(self.species(atoms.get_chemical_symbols()), device=self.device),
            torch.as_tensor(edge_index, device=self.device),
            torch.as_tensor(shifts, **kw),
        )
        out = self.module(*args, torch.ones(n, **kw)) if self.aoti else self.module(*args, n)
        e, ei, f, w = (t.detach().cpu().double().numpy() for t in out)
        _check_outputs(self.path, e, f)
        return {"energy": float(e), "energies": ei, "forces": f, "virial": w}

    def calculator(self) -> DeployedCalculator:
        return DeployedCalculator(self)


class DeployedCalculator(Calculator):
    """ASE calculator running a deployed artifact (energy, energies, forces, stress)."""

    implemented_properties = ("energy", "free_energy", "energies", "forces", "stress")

    def __init__(self, model: DeployedModel | str | os.PathLike, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model if isinstance(model, DeployedModel) else DeployedModel(model)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        r = self.model.evaluate(self.atoms)
        self.results = {
            "energy": r["energy"],
            "free_energy": r["energy"],
            "energies": r["energies"],
            "forces": r["forces"],
        }
        if self.atoms.pbc.all():
            self.results["stress"] = virial_to_stress(r["virial"], self.atoms.get_volume())


def load_deployed(path: str | os.PathLike, device: str = "cpu",
                  allow_compiled: bool = False) -> DeployedModel:
    """Load an ``ffpt-deploy`` artifact; ``.calculator()`` gives an ASE calculator.

    A compiled ``.pt2`` artifact (native code) loads only if this machine deployed it (its
    SHA-256 is in the allow-list, ``ffpt.deploy.trust``) or with ``allow_compiled=True``.
    """
    return DeployedModel(path, device=device, allow_compiled=allow_compiled)


def _rebuild_zip(records: dict[str, bytes]) -> bytes:
    """A TorchScript archive holding exactly the verified records."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records.items():
            zf.writestr(f"archive/{name}", data)
    return buf.getvalue()


def _check_distances(pos: np.ndarray, edge_index: np.ndarray, shifts: np.ndarray) -> None:
    """Atoms closer than ``MIN_DISTANCE``: broken coordinates, not a physical structure."""
    if edge_index.shape[1] == 0:
        return
    d = np.linalg.norm(pos[edge_index[1]] - pos[edge_index[0]] + shifts, axis=1)
    k = int(np.argmin(d))
    if d[k] < MIN_DISTANCE:
        i, j = sorted(int(a) for a in edge_index[:, k])
        raise ValueError(f"atoms {i} and {j} are {d[k]:.3g} A apart (closer than {MIN_DISTANCE} "
                         "A): the structure is broken; fix the coordinates")


def _check_outputs(path: Path, energy: float, forces: np.ndarray) -> None:
    """Non-finite or absurd model outputs: an error naming the atom."""
    if not np.isfinite(energy):
        raise ValueError(f"{path}: the model returned a non-finite energy (NaN or Inf); check "
                         "the structure and the model")
    fmax = np.linalg.norm(forces, axis=1) if len(forces) else np.zeros(0)
    bad = np.flatnonzero(~np.isfinite(fmax) | (fmax > MAX_FORCE))
    if len(bad):
        raise ValueError(f"{path}: force on atom {int(bad[0])} is {fmax[bad[0]]:.3g} eV/A (> "
                         f"{MAX_FORCE:g} or not finite): broken structure or model")
