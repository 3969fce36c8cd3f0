"""``FrameSet``: a flat, scalable container of labelled structures (the ffpt data format).

All frames are stored concatenated (like a CSR matrix), so 100k+ frames of small
molecules cost a few arrays, not 100k Python objects. Units are fixed and explicit:
positions and cells in Angstrom, energies in eV, forces in eV/Angstrom, stress in eV/Angstrom^3
(ASE sign convention, Voigt order not used: full 3x3).

File format (``.npz``, written atomically, read without pickle):

=============  ==============  ==========================================
key            shape           meaning
=============  ==============  ==========================================
numbers        (n_total,)      atomic numbers
positions      (n_total, 3)    Angstrom
n_atoms        (n_frames,)     atoms per frame
energy         (n_frames,)     eV (optional)
forces         (n_total, 3)    eV/Angstrom (optional)
cell           (n_frames,3,3)  Angstrom, rows are lattice vectors (optional)
pbc            (n_frames, 3)   bool (optional; default all False)
stress         (n_frames,3,3)  eV/Angstrom^3 (optional)
info_json      ()              JSON string: provenance (teacher, sigma, seed, units...)
=============  ==============  ==========================================
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
#: atoms closer than this (Angstrom) in a data file are an error: coincident atoms. Kept far
#: below 0.1 A because sigma = 0.2 A rattled PT frames legitimately bring O-H to ~0.05 A.
MIN_DISTANCE = 0.01


@dataclass
class FrameSet:
    """Concatenated frames; see module docstring for units and layout."""

    numbers: np.ndarray
    positions: np.ndarray
    n_atoms: np.ndarray
    energy: np.ndarray | None = None
    forces: np.ndarray | None = None
    cell: np.ndarray | None = None
    pbc: np.ndarray | None = None
    stress: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    #: where the data came from, named in validation errors (not stored)
    source: InitVar[str] = "<memory>"

    def __post_init__(self, source: str) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.n_atoms = np.asarray(self.n_atoms, dtype=np.int64).reshape(-1)
        if self.energy is not None:
            self.energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64).reshape(-1, 3)
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=np.float64).reshape(-1, 3, 3)
        if self.pbc is not None:
            self.pbc = np.asarray(self.pbc, dtype=bool).reshape(-1, 3)
        if self.stress is not None:
            self.stress = np.asarray(self.stress, dtype=np.float64).reshape(-1, 3, 3)
        self.validate(source)

    # ------------------------------------------------------------------ basics
    @property
    def n_frames(self) -> int:
        return len(self.n_atoms)

    def __len__(self) -> int:
        return self.n_frames

    @property
    def offsets(self) -> np.ndarray:
        """Start index of each frame in the concatenated atom arrays (length n_frames+1)."""
        return np.concatenate([[0], np.cumsum(self.n_atoms)])

    @property
    def elements(self) -> list[str]:
        """Chemical symbols present, sorted by atomic number."""
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in np.unique(self.numbers)]

    def validate(self, source: str = "<memory>") -> None:
        """Raise ``ValueError`` naming the source and frame for inconsistent or non-finite data."""
        n_total = int(self.n_atoms.sum())
        if len(self.numbers) != n_total or len(self.positions) != n_total:
            raise ValueError(
                f"{source}: n_atoms sums to {n_total} but numbers/positions have "
                f"{len(self.numbers)}/{len(self.positions)} rows"
            )
        if self.forces is not None and len(self.forces) != n_total:
            raise ValueError(f"{source}: forces have {len(self.forces)} rows, expected {n_total}")
        for name in ("energy", "cell", "pbc", "stress"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != self.n_frames:
                raise ValueError(
                    f"{source}: '{name}' has {len(arr)} entries for {self.n_frames} frames"
                )
        if np.any(self.numbers <= 0) or np.any(self.numbers > 118):
            bad = int(np.argmax((self.numbers <= 0) | (self.numbers > 118)))
            raise ValueError(
                f"{source}: frame {self.frame_of_atom(bad)} has invalid atomic number "
                f"{self.numbers[bad]}"
            )
        for name in ("positions", "forces"):
            arr = getattr(self, name)
            if arr is not None and not np.all(np.isfinite(arr)):
                bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
                frame = self.frame_of_atom(bad)
                raise ValueError(
                    f"{source}: frame {frame} has non-finite {name} (NaN/inf) on atom "
                    f"{bad - int(self.offsets[frame])}; remove or relabel it"
                )
        for name in ("energy", "cell", "stress"):
            arr = getattr(self, name)
            if arr is not None and not np.all(np.isfinite(arr)):
                bad = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0, 0])
                raise ValueError(
                    f"{source}: frame {bad} has non-finite {name} (NaN/inf); remove or relabel it"
                )

    def frame_of_atom(self, atom_index: int) -> int:
        return int(np.searchsorted(self.offsets, atom_index, side="right") - 1)

    def check_distances(self, source: str = "<memory>", min_distance: float = MIN_DISTANCE) -> None:
        """Raise ``ValueError`` naming the frame and atoms of the first pair (periodic images
        included) closer than ``min_distance`` Angstrom: such a frame has broken coordinates."""
        from ffpt.data.graph import neighbor_graph

        periodic = np.zeros(self.n_frames, bool)
        if self.cell is not None and self.pbc is not None:
            periodic = self.pbc.any(axis=1)
        off = self.offsets
        # molecules: all pairs at once, frames of one size together, in bounded chunks
        for n in np.unique(self.n_atoms[~periodic]):
            if n < 2:
                continue
            frames = np.flatnonzero((self.n_atoms == n) & ~periodic)
            iu, ju = np.triu_indices(int(n), 1)
            step = max(1, 2_000_000 // (int(n) * int(n)))
            for k in range(0, len(frames), step):
                chunk = frames[k : k + step]
                pos = self.positions[off[chunk][:, None] + np.arange(n)]  # (F, n, 3)
                d = np.linalg.norm(pos[:, iu] - pos[:, ju], axis=-1)
                if (d < min_distance).any():
                    f, p = np.argwhere(d < min_distance)[0]
                    self._too_close(source, int(chunk[f]), int(iu[p]), int(ju[p]), d[f, p],
                                    min_distance)
        for i in np.flatnonzero(periodic):
            pos = self.positions[self.frame_slice(int(i))]
            try:  # a 1 A search radius: a tiny one makes the cell list huge and slow
                ei, sh = neighbor_graph(pos, self.cell[i], self.pbc[i], max(min_distance, 1.0))
            except ValueError as exc:
                raise ValueError(f"{source}: frame {i}: {exc}") from None
            d = np.linalg.norm(pos[ei[1]] + sh - pos[ei[0]], axis=1)
            if (d < min_distance).any():
                k = int(np.argmax(d < min_distance))
                self._too_close(source, int(i), int(ei[0, k]), int(ei[1, k]), d[k], min_distance)

    def _too_close(self, source: str, frame: int, a: int, b: int, d: float, limit: float):
        from ase.data import chemical_symbols

        z = self.numbers[self.frame_slice(frame)]
        raise ValueError(
            f"{source}: frame {frame}: atoms {a} ({chemical_symbols[z[a]]}) and {b} "
            f"({chemical_symbols[z[b]]}) are {d:.3g} A apart (< {limit} A); the coordinates are "
            "broken: remove the frame or fix it"
        )

    def frame_slice(self, i: int) -> slice:
        off = self.offsets
        return slice(int(off[i]), int(off[i + 1]))

    # ------------------------------------------------------------ transforms
    def subset(self, indices: Sequence[int] | np.ndarray) -> FrameSet:
        """Frames ``indices`` (in that order) as a new FrameSet."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        off = self.offsets
        atom_idx = (
            np.concatenate([np.arange(off[i], off[i + 1]) for i in idx])
            if len(idx)
            else np.zeros(0, dtype=np.int64)
        )

        def pick(a, by_atom):
            if a is None:
                return None
            return a[atom_idx] if by_atom else a[idx]

        return FrameSet(
            numbers=self.numbers[atom_idx],
            positions=self.positions[atom_idx],
            n_atoms=self.n_atoms[idx],
            energy=pick(self.energy, False),
            forces=pick(self.forces, True),
            cell=pick(self.cell, False),
            pbc=pick(self.pbc, False),
            stress=pick(self.stress, False),
            info=dict(self.info),
        )

    @staticmethod
    def concatenate(sets: Sequence[FrameSet]) -> FrameSet:
        """Join frame sets; optional arrays survive only if every set has them."""
        if not sets:
            raise ValueError("nothing to concatenate")

        def cat(name: str):
            arrs = [getattr(s, name) for s in sets]
            if any(a is None for a in arrs):
                return None
            return np.concatenate(arrs)

        pbc = None
        cell = None
        if any(s.cell is not None for s in sets):
            cell = np.concatenate(
                [s.cell if s.cell is not None else np.zeros((s.n_frames, 3, 3)) for s in sets]
            )
            pbc = np.concatenate(
                [s.pbc if s.pbc is not None else np.zeros((s.n_frames, 3), bool) for s in sets]
            )
        info = dict(sets[0].info)
        info["concatenated_from"] = [s.info for s in sets]
        return FrameSet(
            numbers=cat("numbers"),
            positions=cat("positions"),
            n_atoms=cat("n_atoms"),
            energy=cat("energy"),
            forces=cat("forces"),
            cell=cell,
            pbc=pbc,
            stress=cat("stress"),
            info=info,
        )

    # ------------------------------------------------------------------ ASE
    def to_atoms(self, i: int):
        """Frame ``i`` as ``ase.Atoms`` with a SinglePointCalculator holding its labels."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        s = self.frame_slice(i)
        atoms = Atoms(numbers=self.numbers[s], positions=self.positions[s])
        if self.cell is not None:
            atoms.cell = self.cell[i]
            atoms.pbc = self.pbc[i] if self.pbc is not None else False
        results = {}
        if self.energy is not None:
            results["energy"] = float(self.energy[i])
        if self.forces is not None:
            results["forces"] = self.forces[s].copy()
        if self.stress is not None:
            from ase.stress import full_3x3_to_voigt_6_stress

            results["stress"] = full_3x3_to_voigt_6_stress(self.stress[i])
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    def iter_atoms(self) -> Iterator:
        for i in range(self.n_frames):
            yield self.to_atoms(i)

    @staticmethod
    def from_atoms(
        images: Sequence,
        energy_key: str | None = "energy",
        forces_key: str | None = "forces",
        stress_key: str | None = None,
        source: str = "<atoms>",
        info: dict | None = None,
    ) -> FrameSet:
        """Build from ASE Atoms. Labels come from ``atoms.info[energy_key]`` /
        ``atoms.arrays[forces_key]`` or, if absent, from an attached calculator's results.
        A key set to ``None`` is not read. A missing requested label raises ``KeyError``
        naming the frame and the keys that exist."""
        images = list(images)
        numbers, positions, n_atoms, energy, forces, cells, pbcs, stress = ([] for _ in range(8))
        any_cell = any(a.pbc.any() or a.cell.rank > 0 for a in images)
        for k, a in enumerate(images):
            numbers.append(a.numbers)
            positions.append(a.positions)
            n_atoms.append(len(a))
            if any_cell:
                cells.append(np.asarray(a.cell[:]))
                pbcs.append(a.pbc.copy())
            if energy_key is not None:
                energy.append(_get_label(a, energy_key, "info", k, source))
            if forces_key is not None:
                forces.append(_get_label(a, forces_key, "arrays", k, source))
            if stress_key is not None:
                from ase.stress import voigt_6_to_full_3x3_stress

                s = np.asarray(_get_label(a, stress_key, "info", k, source))
                stress.append(voigt_6_to_full_3x3_stress(s) if s.shape == (6,) else s)
        fs = FrameSet(
            numbers=np.concatenate(numbers) if numbers else np.zeros(0, int),
            positions=np.concatenate(positions) if positions else np.zeros((0, 3)),
            n_atoms=np.array(n_atoms, dtype=np.int64),
            energy=np.array(energy, dtype=float) if energy_key is not None else None,
            forces=np.concatenate(forces) if forces_key is not None and forces else None,
            cell=np.array(cells) if any_cell else None,
            pbc=np.array(pbcs) if any_cell else None,
            stress=np.array(stress) if stress_key is not None else None,
            info=dict(info or {}),
            source=source,
        )
        return fs

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.npz`` or, for other suffixes, any ASE format (e.g. extxyz); atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            from ase.io import write

            fmt = output_format(path, self.n_frames)
            with atomic_target(path) as tmp:
                write(tmp, list(self.iter_atoms()), format=fmt)
            return path
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "numbers": self.numbers,
            "positions": self.positions,
            "n_atoms": self.n_atoms,
            "info_json": np.array(json.dumps(self.info, default=str)),
        }
        for name in ("energy", "forces", "cell", "pbc", "stress"):
            val = getattr(self, name)
            if val is not None:
                arrays[name] = val
        atomic_write(path, lambda f: _write_npz(f, arrays))
        return path

    @staticmethod
    def load(path: str | os.PathLike) -> FrameSet:
        """Read a FrameSet ``.npz`` (no pickle) and validate it."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such data file")
        try:
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                missing = {"numbers", "positions", "n_atoms"} - keys
                if missing:
                    raise ValueError(
                        f"{path}: not an ffpt FrameSet (missing {sorted(missing)}); "
                        "use ffpt.data.read_frames for other formats"
                    )
                kw = {k: z[k] for k in keys if k not in ("info_json", "format_version")}
                info = json.loads(str(z["info_json"])) if "info_json" in keys else {}
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValueError) and "not an ffpt FrameSet" in str(exc):
                raise
            raise ValueError(f"{path}: cannot read as .npz FrameSet ({exc})") from exc
        return FrameSet(**kw, info=info, source=str(path))


def _get_label(atoms, key: str, where: str, frame: int, source: str):
    store = atoms.info if where == "info" else atoms.arrays
    if key in store:
        return store[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    avail = sorted(store.keys()) + (sorted(calc.results) if calc is not None else [])
    raise KeyError(
        f"{source}: frame {frame} has no '{key}' label (available: {avail}); "
        f"pass the right key (e.g. --energy-key/--forces-key)"
    )


def _write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps: the same frames give the same bytes
    (a run's stage records hash the data files they read)."""
    import zipfile

    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, val in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(val), allow_pickle=False)


def output_format(path: str | os.PathLike, n_frames: int = 1) -> str:
    """Format name for writing ``n_frames`` frames to ``path``: ``npz`` (FrameSet) or an ASE
    writer. Raises ``ValueError`` naming the fix for an unknown or unsuitable suffix, so callers
    can check before any work is done."""
    path = Path(path)
    if path.suffix == ".npz":
        return "npz"
    from ase.io.formats import filetype, ioformats

    try:
        fmt = filetype(str(path), read=False)
    except Exception:
        fmt = None
    hint = "use .npz (FrameSet) or an ASE format such as .extxyz"
    if fmt not in ioformats or not ioformats[fmt].can_write:
        raise ValueError(f"{path}: cannot write frames to this file type; {hint}")
    if n_frames > 1 and ioformats[fmt].single:
        raise ValueError(f"{path}: format '{fmt}' holds one frame, not {n_frames}; {hint}")
    return fmt


@contextmanager
def atomic_target(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path in ``path``'s folder to write; on success it is renamed over ``path``,
    on any failure (including ``OSError`` for a full disk) it is removed and ``path`` is
    untouched. The one atomic-write primitive of the package."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, writer) -> None:
    """Call ``writer(fileobj)`` on a temp file in the target folder, then rename over ``path``;
    the temp file is removed if anything fails (see :func:`atomic_target`)."""
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        writer(f)
        f.flush()
        os.fsync(f.fileno())
