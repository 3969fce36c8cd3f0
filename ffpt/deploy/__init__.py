"""Deployment: checkpoint -> verified artifact (TorchScript or AOTInductor) for
``pair_style ffpt`` and ASE; integrity hash and trust model in :mod:`ffpt.deploy.trust`."""

from __future__ import annotations

from ffpt.deploy.artifact import (
    DeployedCalculator,
    DeployedModel,
    load_deployed,
    read_metadata,
    verify_artifact,
)
from ffpt.deploy.deploy import ArtifactMetadata, deploy_checkpoint, deploy_model
from ffpt.deploy.trust import ArtifactError, UntrustedArtifactError

__all__ = [
    "ArtifactError",
    "ArtifactMetadata",
    "DeployedCalculator",
    "DeployedModel",
    "UntrustedArtifactError",
    "deploy_checkpoint",
    "deploy_model",
    "load_deployed",
    "read_metadata",
    "verify_artifact",
]
