"""Checkpoint -> self-describing TorchScript artifact for ``pair_style ffpt`` and ASE.

The artifact is a ``torch.jit.save`` archive of the model wrapped in the deploy interface
``forward(pos, species, edge_index, edge_shift, nlocal) -> (energy, atomic_energies, forces,
virial)`` (or an AOTInductor ``.pt2`` package, ``aoti.py``). Its metadata lives in the archive
as the record ``extra/ffpt_metadata.txt``: plain ``key=value`` lines that the C++ pair style
parses without Python (the pair_nequip way: nothing but the element of each LAMMPS type is
repeated in the LAMMPS input), with a content hash over weights, code and metadata
(``trust.py``). The archive is built in memory and written atomically (a full disk gives an
``OSError`` and leaves no temp file).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ffpt.data.frames import atomic_write
from ffpt.model.checkpoint import DTYPES

METADATA_FILE = "ffpt_metadata.txt"  # record extra/<METADATA_FILE> (trust.METADATA_RECORD)
FORMAT_TAG = "ffpt-deployed-model"
FORMAT_VERSION = 2  # bump when the C++ side must change; the plugin checks it
# 2: metadata record in both formats, content hash, masses
INTERFACE = "EnergyForces(pos,species,edge_index,edge_shift,nlocal)->(E,E_i,F,W)"
FORMATS = ("torchscript", "aotinductor")


@dataclass
class ArtifactMetadata:
    """What the LAMMPS pair style and ``load_deployed`` read from an artifact.

    The one contract between Python and C++: ``to_dict`` / ``from_dict`` (``key=value`` lines in
    the record ``extra/ffpt_metadata.txt``); CMake passes ``FORMAT_TAG``, ``FORMAT_VERSION`` and
    the record name to the plugin as compile definitions.
    """

    elements: list[str]
    cutoff: float
    num_interactions: int
    dtype: str
    ffpt_version: str
    weights_sha256: str
    masses: list[float] = field(default_factory=list)  # standard atomic masses (u), 0 = unknown
    artifact_sha256: str = ""  # content hash of records + metadata (ffpt/deploy/trust.py)
    format: str = FORMAT_TAG
    format_version: int = FORMAT_VERSION
    interface: str = INTERFACE
    torch_version: str = field(default_factory=lambda: torch.__version__.split("+")[0])
    source: str = ""
    node_features: int = 0  # doubles per atom exchanged between layers; 0: no per-layer pieces
    layer_hops: int = 1  # edges one interaction reaches (2 with latent displacements)

    @property
    def receptive_field(self) -> float:
        """Angstrom: information travels ``num_interactions`` edges of length <= ``cutoff``."""
        return self.num_interactions * self.cutoff

    def to_dict(self) -> dict[str, str]:
        return {
            "format": self.format,
            "format_version": str(self.format_version),
            "interface": self.interface,
            "elements": " ".join(self.elements),
            "masses": " ".join(f"{m:.6f}" for m in self.masses),
            "cutoff": repr(float(self.cutoff)),
            "num_interactions": str(self.num_interactions),
            "dtype": self.dtype,
            "ffpt_version": self.ffpt_version,
            "torch_version": self.torch_version,
            "weights_sha256": self.weights_sha256,
            "source": self.source.replace("\n", " "),
            "exchange": "shell layer" if self.node_features else "shell",
            "node_features": str(self.node_features),
            "layer_hops": str(self.layer_hops),
            "artifact_sha256": self.artifact_sha256,
        }

    @classmethod
    def from_dict(cls, kv: dict[str, str]) -> ArtifactMetadata:
        if kv.get("format") != FORMAT_TAG:
            raise ValueError("not an ffpt artifact (no ffpt metadata); create one with ffpt-deploy")
        try:
            return cls(
                elements=kv["elements"].split(),
                masses=[float(m) for m in kv.get("masses", "").split()],
                cutoff=float(kv["cutoff"]),
                num_interactions=int(kv["num_interactions"]),
                dtype=kv["dtype"],
                ffpt_version=kv["ffpt_version"],
                weights_sha256=kv["weights_sha256"],
                artifact_sha256=kv.get("artifact_sha256", ""),
                format=kv["format"],
                format_version=int(kv["format_version"]),
                interface=kv.get("interface", ""),
                torch_version=kv.get("torch_version", ""),
                source=kv.get("source", ""),
                node_features=int(kv.get("node_features", "0")),
                layer_hops=int(kv.get("layer_hops", "1")),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"ffpt metadata is incomplete or malformed ({exc}); "
                             "redeploy with ffpt-deploy") from exc

    def to_text(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.to_dict().items())

    @classmethod
    def from_text(cls, text: str) -> ArtifactMetadata:
        return cls.from_dict(dict(line.split("=", 1) for line in text.splitlines() if "=" in line))


def weights_sha256(module: nn.Module) -> str:
    """Hash of all parameters and buffers (names, dtypes, shapes, values)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _energy_forces(model: nn.Module) -> nn.Module:
    """Wrap a NewtonNet-signature model in the deploy interface."""
    from ffpt.deploy.layered import LayeredEnergyForces, supports_layers
    from ffpt.model.forces import EnergyForces

    return LayeredEnergyForces(model) if supports_layers(model) else EnergyForces(model)


def _script(module: nn.Module) -> torch.jit.ScriptModule:
    from e3nn.util.jit import compile as e3nn_compile

    compiled = e3nn_compile(module)
    if not isinstance(compiled, torch.jit.ScriptModule):
        compiled = torch.jit.script(compiled)
    return compiled


def deploy_model(
    model: nn.Module,
    output: str | os.PathLike,
    dtype: str = "float64",
    source: str = "",
    fmt: str = "torchscript",
) -> ArtifactMetadata:
    """Write ``model`` (with ``elements``, ``cutoff``, ``num_interactions``) to ``output``.

    ``fmt``: ``torchscript`` (any file name) or ``aotinductor`` (``.pt2``, see ``aoti.py``).
    """
    import ffpt

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if (fmt == "aotinductor") != str(output).endswith(".pt2"):
        raise ValueError("AOTInductor artifacts, and only they, must end in .pt2 "
                         f"(got {output} for --format {fmt})")
    for attr in ("elements", "cutoff", "num_interactions"):
        if not hasattr(model, attr):
            raise TypeError(f"model has no attribute {attr!r}; is it an ffpt model?")
    model = model.to(DTYPES[dtype]).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    meta = ArtifactMetadata(
        elements=list(model.elements),
        masses=standard_masses(list(model.elements)),
        cutoff=float(model.cutoff),
        num_interactions=int(model.num_interactions),
        dtype=dtype,
        ffpt_version=ffpt.__version__,
        weights_sha256=weights_sha256(model),
        source=source,
    )
    output = Path(output)
    if fmt == "aotinductor":
        from ffpt.deploy.aoti import INTERFACE as AOTI_INTERFACE
        from ffpt.deploy.aoti import compile_package

        meta.interface = AOTI_INTERFACE
        archive = compile_package(model, DTYPES[dtype])
    else:
        buf = io.BytesIO()
        torch.jit.save(_script(_energy_forces(model)), buf)
        archive = buf.getvalue()
        from ffpt.deploy.layered import layer_hops, node_features, supports_layers

        if supports_layers(model):
            meta.node_features, meta.layer_hops = node_features(model), layer_hops(model)
    data = seal_archive(archive, meta)
    write_artifact(output, data)
    if fmt == "aotinductor":  # deployed on this machine: its native code may be loaded here
        from ffpt.deploy.trust import add_trusted, file_sha256

        add_trusted(file_sha256(data), str(output.resolve()))
    return meta


def standard_masses(elements: list[str]) -> list[float]:
    """Standard atomic masses (u) of element symbols (0 for unknown symbols)."""
    from ase.data import atomic_masses, atomic_numbers

    return [float(atomic_masses[atomic_numbers[e]]) if e in atomic_numbers else 0.0
            for e in elements]


def seal_archive(archive: bytes, meta: ArtifactMetadata) -> bytes:
    """Add the metadata record, with the content hash of the archive and metadata, to
    ``archive`` (bytes of a PyTorch zip archive); sets ``meta.artifact_sha256``."""
    from ffpt.deploy.trust import METADATA_RECORD, content_sha256, read_records

    top, records = read_records(archive, "<new artifact>")
    meta.artifact_sha256 = ""
    meta.artifact_sha256 = content_sha256(records, meta.to_text())
    buf = io.BytesIO(archive)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(f"{top}/{METADATA_RECORD}", meta.to_text())
    return buf.getvalue()


def write_artifact(output: Path, data: bytes) -> None:
    """Atomic write; on failure (full disk, no permission) one clear ``OSError``, no temp left."""
    import shutil

    output.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(output.parent).free
    if free < len(data) + (1 << 20):
        raise OSError(f"cannot write {output}: only {free / 1e6:.1f} MB free on its disk, the "
                      f"artifact needs {len(data) / 1e6:.1f} MB; free space or choose another -o")
    try:
        atomic_write(output, lambda f: f.write(data))
    except OSError as exc:
        raise OSError(f"cannot write {output}: {exc.strerror or exc}; free space, fix the "
                      "permissions or choose another -o") from exc


def deploy_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike | None = None,
    dtype: str = "float64",
    fmt: str = "torchscript",
) -> tuple[Path, ArtifactMetadata]:
    """``ffpt-deploy``: load a training checkpoint and write the artifact.

    The default output is ``<checkpoint stem>-deployed.pt`` (``.pt2``) beside the checkpoint.
    """
    from ffpt.model import load_model

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    suffix = ".pt2" if fmt == "aotinductor" else ".pt"
    out = Path(output) if output else checkpoint.with_name(f"{checkpoint.stem}-deployed{suffix}")
    if out.resolve() == checkpoint.resolve():
        raise ValueError("the output would overwrite the checkpoint; choose another -o path")
    model = load_model(checkpoint, dtype=DTYPES[dtype])
    meta = deploy_model(model, out, dtype=dtype, source=str(checkpoint.resolve()), fmt=fmt)
    return out, meta
