"""Deployment: checkpoint -> TorchScript artifact for ``pair_style ffpt`` and ASE."""

from __future__ import annotations

from ffpt.deploy.artifact import DeployedCalculator, DeployedModel, load_deployed, read_metadata
from ffpt.deploy.deploy import ArtifactMetadata, deploy_checkpoint, deploy_model

__all__ = [
    "ArtifactMetadata",
    "DeployedCalculator",
    "DeployedModel",
    "deploy_checkpoint",
    "deploy_model",
    "load_deployed",
    "read_metadata",
]
