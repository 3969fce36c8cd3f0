"""Turn command-line/config teacher specifications into teacher objects."""

from __future__ import annotations

from collections.abc import Sequence

from ffpt.teachers.base import Teacher, get_teacher


def parse_species(
    spec: str | Sequence[str] | None, default: Sequence[str]
) -> list[tuple[str, float]]:
    """``"H2O2"``, ``"H2,O2,H2O"``, ``"H2O:3,H2O2:1"`` or ``"all"`` -> [(species, weight)]."""
    if spec is None or spec == "all" or (not isinstance(spec, str) and list(spec) == ["all"]):
        return [(s, 1.0) for s in default]
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, _, weight = item.partition(":")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(
                f"bad species entry '{item}': write NAME or NAME:WEIGHT, e.g. H2O:0.5"
            ) from None
        out.append((name.strip(), w))
    if not out:
        raise ValueError(f"no species in '{spec}'")
    return out


def build_teachers(
    teacher: str,
    species: str | Sequence[str] | None = None,
    smiles: Sequence[str] | str | None = None,
    structure: Sequence[str] | str | None = None,
    **options,
) -> tuple[list[Teacher], list[float]]:
    """Teachers and mixture weights for a teacher name plus species/smiles/structures.

    * ``tip3p-flex``: water only;
    * ``tip3p-flex-liquid``: ``molecules=`` "8" or "1:1,4:2" (one teacher per size, weights);
      other options (``periodic``, ``density``, ``references``...) go to every teacher;
    * ``qforce-h2``: ``species`` (default ``all`` = the eight combustion species, equal weights);
    * ``gaff``: one teacher per SMILES / structure file (equal weights; default aspirin).
    """
    name = teacher.lower().replace("_", "-")
    smiles = [smiles] if isinstance(smiles, str) else list(smiles or [])
    structure = [structure] if isinstance(structure, str) else list(structure or [])
    if teacher.endswith(".json"):  # a fitted EAM: one teacher per structure file
        teachers = [get_teacher(teacher, structure=s, **options) for s in structure]
        return teachers or [get_teacher(teacher, **options)], [1.0] * max(1, len(teachers))
    if name == "gaff":
        if species:
            raise ValueError("the gaff teacher takes --smiles or --structure, not --species")
        mols = [{"smiles": s} for s in smiles] + [{"structure": s} for s in structure]
        if not mols:
            mols = [{}]
        teachers = [get_teacher("gaff", **m, **options) for m in mols]
        return teachers, [1.0] * len(teachers)
    if smiles or structure:
        raise ValueError(f"--smiles/--structure only apply to the gaff teacher, not '{teacher}'")
    if name == "qforce-h2":
        from ffpt.teachers.qforce_h2 import SPECIES_NAMES

        pairs = parse_species(species, SPECIES_NAMES)
        return [get_teacher(name, species=s, **options) for s, _ in pairs], [w for _, w in pairs]
    if name == "tip3p-flex-liquid":
        if species:
            raise ValueError("tip3p-flex-liquid takes --molecules N (or 'N:W,M:V'), not --species")
        pairs = parse_species(str(options.pop("molecules", 4)), ["4"])
        try:
            counts = [int(n) for n, _ in pairs]
        except ValueError:
            raise ValueError(
                f"--molecules must be N or N:WEIGHT,M:WEIGHT (integers N), got {pairs}"
            ) from None
        return [get_teacher(name, n_molecules=n, **options) for n in counts], [w for _, w in pairs]
    if name == "tip3p-flex":
        pairs = parse_species(species, ["H2O"])
        if len(pairs) != 1:
            raise ValueError("tip3p-flex describes one species (H2O)")
        return [get_teacher(name, species=pairs[0][0], **options)], [1.0]
    return [get_teacher(name, **options)], [1.0]
