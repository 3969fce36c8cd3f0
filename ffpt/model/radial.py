"""Radial basis with a smooth cutoff envelope."""

from __future__ import annotations

import math

import torch
from torch import nn


class BesselBasis(nn.Module):
    """e_n(r) = sqrt(2/rc) sin(n pi r / rc) / r, n = 1..num_radial (DimeNet/NewtonNet)."""

    def __init__(self, cutoff: float, num_radial: int):
        super().__init__()
        self.cutoff = float(cutoff)
        self.prefactor = math.sqrt(2.0 / cutoff)
        self.register_buffer("freq", torch.arange(1, num_radial + 1) * math.pi / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.freq.to(r.dtype) * r) / r


class PolynomialEnvelope(nn.Module):
    """u(d) = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1) - p(p+1)/2 d^(p+2), d = r/rc.

    u(rc) = u'(rc) = u''(rc) = 0, and u = 0 beyond the cutoff.
    """

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.p
        d = r / self.cutoff
        dp = d**p
        u = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * dp
            + p * (p + 2) * dp * d
            - 0.5 * p * (p + 1) * dp * d * d
        )
        return torch.where(d < 1.0, u, torch.zeros_like(u))
