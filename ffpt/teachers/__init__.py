"""Classical force-field teachers that label pre-training data.

>>> from ffpt.teachers import get_teacher
>>> t = get_teacher("qforce-h2", species="H2O2")
>>> energy, forces = t.label(positions)  # (F,), (F, N, 3); eV, eV/Angstrom

Names: ``tip3p-flex`` (water), ``tip3p-flex-liquid`` (``n_molecules=`` waters, cluster or
``periodic=True`` box, full flexible TIP3P with Ewald), ``qforce-h2`` (``species=`` H, O, H2,
O2, OH, H2O, HO2, H2O2), ``gaff`` (``smiles=`` or ``structure=``; needs OpenMM +
openmmforcefields). Built-ins are imported on first use (``ffpt.teachers.base._BUILTIN``).
"""

from ffpt.teachers.base import (
    Teacher,
    TeacherCalculator,
    available_teachers,
    get_teacher,
    register,
)

__all__ = ["Teacher", "TeacherCalculator", "available_teachers", "get_teacher", "register"]
