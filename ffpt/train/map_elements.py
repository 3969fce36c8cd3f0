"""Fine-tuning into new elements: ``map_elements: {Ge: Si}`` (``ffpt train --map-elements
Ge=Si``) starts a Ge model from a Si checkpoint (``init_from``).

Rule: the new element gets a copy of its source element's embedding row, energy scale and
energy shift, and the model keeps all its old elements. So the mapped model predicts for Ge
exactly what the source model predicts for the same structure with Ge relabelled Si. The
fine-tuning start then refits the per-element energy shifts on the FT data as for any
fine-tuning (``ffpt.train.strategies.prepare_energy_head``): at FT step 0 forces equal the
source model's, and energies differ by ``n_Ge * (shift_Ge_refit - shift_Si)``.
"""

from __future__ import annotations

import torch
from ase.data import atomic_numbers

from ffpt.model.newtonnet import NewtonNet


def parse_mapping(spec) -> dict[str, str]:
    """``{"Ge": "Si"}``, ``"Ge=Si,Sn=Si"`` or ``["Ge=Si"]`` -> ``{"Ge": "Si"}``, checked."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        items = [(str(k).strip(), str(v).strip()) for k, v in spec.items()]
    else:
        parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in
                                                               str(s).split(",")]
        items = []
        for p in (p.strip() for p in parts):
            if not p:
                continue
            new, eq, old = p.partition("=")
            if not eq:
                raise ValueError(f"map_elements entry {p!r} must look like NEW=OLD, e.g. Ge=Si")
            items.append((new.strip(), old.strip()))
    for new, old in items:
        for sym in (new, old):
            if sym not in atomic_numbers or sym == "X":
                raise ValueError(f"map_elements {new}={old}: {sym!r} is not an element symbol")
    return dict(items)


def map_model_elements(model: NewtonNet, mapping: dict[str, str], model_cfg: dict,
                       source: str = "init_from") -> NewtonNet:
    """A copy of ``model`` (built with ``model_cfg``, the checkpoint's ``model_config``) whose
    elements also hold the keys of ``mapping``, each initialised from the element it maps to
    (see module docstring). Mapping an element the model already has, or to an element the
    model lacks, raises ``ValueError``."""
    from ffpt.model.checkpoint import build_model

    for new, old in mapping.items():
        if old not in model.elements:
            raise ValueError(f"cannot map {new} to {old}: the model ({source}) has elements "
                             f"{model.elements}; map {new} to one of them, e.g. {new}="
                             f"{model.elements[0]}")
        if new in model.elements:
            raise ValueError(f"cannot map {new} to {old}: the model ({source}) already has "
                             f"{new}; remove {new} from map_elements")
    if not mapping:
        return model
    elements = sorted({*model.elements, *mapping}, key=lambda s: atomic_numbers[s])
    idx = torch.as_tensor([model.elements.index(mapping.get(e, e)) for e in elements])
    new = build_model(model_cfg, elements).to(next(model.parameters()).dtype)
    state = model.state_dict()
    for key in ("embedding.weight", "shift", "scale"):
        state[key] = state[key].index_select(0, idx)
    new.load_state_dict(state)
    return new
