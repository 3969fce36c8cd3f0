"""Checkpoint -> self-describing TorchScript artifact for ``pair_style ffpt`` and ASE.

The artifact is a ``torch.jit.save`` archive of the model wrapped in the deploy interface
``forward(pos, species, edge_index, edge_shift, nlocal) -> (energy, atomic_energies, forces,
virial)``. Its metadata lives in the archive as the extra file ``ffpt_metadata.txt``: plain
``key=value`` lines that the C++ pair style parses without Python (the pair_nequip way: nothing
but the element of each LAMMPS type is repeated in the LAMMPS input).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ffpt.data.frames import atomic_target

METADATA_FILE = "ffpt_metadata.txt"
FORMAT_TAG = "ffpt-deployed-model"
FORMAT_VERSION = 1  # bump when the C++ side must change; the plugin checks it
INTERFACE = "EnergyForces(pos,species,edge_index,edge_shift,nlocal)->(E,E_i,F,W)"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
FORMATS = ("torchscript", "aotinductor")


@dataclass
class ArtifactMetadata:
    """What the LAMMPS pair style and ``load_deployed`` read from an artifact."""

    elements: list[str]
    cutoff: float
    num_interactions: int
    dtype: str
    ffpt_version: str
    weights_sha256: str
    format: str = FORMAT_TAG
    format_version: int = FORMAT_VERSION
    interface: str = INTERFACE
    torch_version: str = field(default_factory=lambda: torch.__version__.split("+")[0])
    source: str = ""

    @property
    def receptive_field(self) -> float:
        """Angstrom: information travels ``num_interactions`` edges of length <= ``cutoff``."""
        return self.num_interactions * self.cutoff

    def to_text(self) -> str:
        rows = {
            "format": self.format,
            "format_version": str(self.format_version),
            "interface": self.interface,
            "elements": " ".join(self.elements),
            "cutoff": repr(float(self.cutoff)),
            "num_interactions": str(self.num_interactions),
            "dtype": self.dtype,
            "ffpt_version": self.ffpt_version,
            "torch_version": self.torch_version,
            "weights_sha256": self.weights_sha256,
            "source": self.source.replace("\n", " "),
        }
        return "".join(f"{k}={v}\n" for k, v in rows.items())

    @classmethod
    def from_text(cls, text: str) -> ArtifactMetadata:
        kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        if kv.get("format") != FORMAT_TAG:
            raise ValueError("not an ffpt artifact (no ffpt metadata); create one with ffpt-deploy")
        return cls(
            elements=kv["elements"].split(),
            cutoff=float(kv["cutoff"]),
            num_interactions=int(kv["num_interactions"]),
            dtype=kv["dtype"],
            ffpt_version=kv["ffpt_version"],
            weights_sha256=kv["weights_sha256"],
            format=kv["format"],
            format_version=int(kv["format_version"]),
            interface=kv.get("interface", ""),
            torch_version=kv.get("torch_version", ""),
            source=kv.get("source", ""),
        )


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
    from ffpt.deploy.toy import ToyEnergyForces, ToyModel

    if isinstance(model, ToyModel):
        return ToyEnergyForces(model)
    from ffpt.model.forces import EnergyForces

    return EnergyForces(model)


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
        cutoff=float(model.cutoff),
        num_interactions=int(model.num_interactions),
        dtype=dtype,
        ffpt_version=ffpt.__version__,
        weights_sha256=weights_sha256(model),
        source=source,
    )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "aotinductor":
        from ffpt.deploy.aoti import INTERFACE as AOTI_INTERFACE
        from ffpt.deploy.aoti import compile_package

        meta.interface = AOTI_INTERFACE
        text = meta.to_text()
        compile_package(model, output, DTYPES[dtype],
                        dict(line.split("=", 1) for line in text.splitlines()))
        return meta
    scripted = _script(_energy_forces(model))
    with atomic_target(output) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files={METADATA_FILE: meta.to_text()})
    return meta


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
