"""Model stage: the equivariant NewtonNet, energy/force wrappers and checkpoints."""

from ffpt.model.checkpoint import (
    build_model,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from ffpt.model.forces import EnergyForces, batch_energy_forces
from ffpt.model.newtonnet import NewtonNet

__all__ = [
    "EnergyForces",
    "NewtonNet",
    "batch_energy_forces",
    "build_model",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
