"""Labelling: energies and forces of any structures from a quantum-chemistry engine.

``label_frames(frames, engine, output, indices=...)`` computes missing labels with a progress
bar and an append-only journal (``OUTPUT.journal.jsonl``, keyed by global frame index and
structure hash), so an interrupted run resumes, chunks merge and a full run reuses them.
Engines: ``xtb`` (GFN2-xTB via tblite, molecular or periodic) and ``pyscf`` (molecular DFT/HF).
"""

from ffpt.labelling.engines import ENGINES, Engine, PySCFEngine, XTBEngine, make_engine
from ffpt.labelling.label import label_frames, read_structures, structure_hash

__all__ = [
    "ENGINES",
    "Engine",
    "PySCFEngine",
    "XTBEngine",
    "label_frames",
    "make_engine",
    "read_structures",
    "structure_hash",
]
