"""Classical force-field teachers that label pre-training data.

>>> from ffpt.teachers import get_teacher
>>> t = get_teacher("qforce-h2", species="H2O2")
>>> energy, forces = t.label(positions)  # (F,), (F, N, 3); eV, eV/Angstrom

Names: ``tip3p-flex`` (water), ``qforce-h2`` (``species=`` H, O, H2, O2, OH, H2O, HO2,
H2O2), ``gaff`` (``smiles=`` or ``structure=``; needs OpenMM + openmmforcefields).
"""

from ffpt.teachers.base import (
    Teacher,
    TeacherCalculator,
    available_teachers,
    get_teacher,
    register,
)

__all__ = ["Teacher", "TeacherCalculator", "available_teachers", "get_teacher", "register"]
