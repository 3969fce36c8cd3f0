"""Analysis of the rxn-9 FFPT-FT run made by ``train_and_run.sh`` (stage ``analyze``).

    python inputs/combustion/rxn09/train_and_run.py [--runs runs/rxn09]
        [--out benchmarks/results/rxn09_metad] [--data $FFPT_SHARED_DATA]

Reads the run folders (pt, ft, scratch, metad_ft, metad_scratch) and writes to ``--out``:
``results.json`` (test MAEs, MD speed and stability, free-energy estimates),
``learning_curves.png``, ``pes_cuts.png`` (IRC energies and a rigid O-H stretch),
``fes_<model>.png`` (2D FES with convergence slices), ``fes_profile.png`` (F(d_OH) and the
time evolution of the dissociation free energy) and xz-compressed copies of COLVAR/HILLS.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from ffpt.config import shared_data_dir
from ffpt.lammps import io as lammps_io

REPO = Path(__file__).resolve().parents[3]
KT = 0.0083144626 * 300.0  # kJ/mol at 300 K
EV_TO_KJ = 96.48533212
MODELS = ("ft", "scratch")
LABEL = {"pt": "PT (qforce-h2)", "ft": "PT -> FT", "scratch": "scratch"}


def label(run: str) -> str:
    """'ft_damp0.1' -> 'PT -> FT, damp 0.1 ps' (metadynamics run names)."""
    m, _, damp = run.partition("_damp")
    return LABEL.get(m, m) + (f", Langevin damp {damp} ps" if damp else ", damp 5 ps (paper)")


def metad_runs(runs: Path) -> list[str]:
    return sorted(p.name[len("metad_"):] for p in runs.glob("metad_*") if (p / "HILLS").is_file())
# CV grid for the FES (nm): covers the walls (d_OH <= 0.45, d_OO <= 0.25)
GMIN, GMAX, BINS = [0.06, 0.09], [0.46, 0.26], [161, 69]
# regions of d_OH (nm) for the free energies: bound HO2 and dissociated H + O2
BOUND, DISSOC = (0.08, 0.13), (0.30, 0.42)


def shared_data(arg: str | None) -> Path:
    return Path(arg) if arg else shared_data_dir()


def learning_curves(runs: Path, out: Path) -> None:
    """Validation force and energy MAE (kcal/mol) against wall time for the FT and scratch
    runs (the PT run's own curve is copied as ``learning_curve_pt.png``)."""
    from ffpt.train.plots import plot_learning_curves

    plot_learning_curves(
        {LABEL[m]: runs / m / "log.csv" for m in MODELS}, out / "learning_curves.png",
        metrics=(("forces_mae", "validation force MAE (kcal/mol/Å)"),
                 ("energy_mae", "validation energy MAE (kcal/mol)")),
        x="time_s", x_scale=1 / 60, y_scale=EV_TO_KJ / 4.184, xlabel="wall time (min)",
        title="rxn 9 ab initio (qforce-h2 PT)")


def pes_cuts(runs: Path, data: Path, out: Path) -> dict:
    """Energies along the IRC (reference vs models) and a rigid O1-H3 stretch 0.5-5 A."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase import Atoms

    from ffpt.calculator import FFPTCalculator

    irc = np.load(data / "h2combustion" / "09_irc.npz")
    pos = irc["R"][:, :3]
    e_ref = irc["E"].ravel() * 4.184  # kcal/mol -> kJ/mol
    d_oh = np.linalg.norm(pos[:, 0] - pos[:, 2], axis=1)
    order = np.argsort(d_oh)
    i_min = int(np.argmin(e_ref))
    calcs = {m: FFPTCalculator(str(runs / m / "best.pt"), dtype="float64")
             for m in ("pt", *MODELS)}

    def energy(calc, p) -> float:
        a = Atoms("OOH", positions=p)
        a.calc = calc
        return a.get_potential_energy() * EV_TO_KJ

    res: dict = {"irc": {}, "stretch": {}}
    fig, ax = plt.subplots(1, 4, figsize=(21, 4))
    ax[0].plot(d_oh[order], e_ref[order] - e_ref[i_min], "k.-", label="wB97X-V (IRC)")
    for m in MODELS:
        e = np.array([energy(calcs[m], p) for p in pos])
        de = e - e_ref
        res["irc"][m] = {"mae_kJ_mol_after_shift": float(np.mean(np.abs(de - de.mean())))}
        ax[0].plot(d_oh[order], e[order] - e[i_min], ".-", label=LABEL[m])
    ax[0].set(xlabel="d(O1-H3) (A)", ylabel="E - E(HO2) (kJ/mol)", title="rxn 9 IRC")
    ax[0].legend()
    # rigid stretch of O1-H3 from the IRC minimum (HO2), O2 fixed
    p0 = pos[i_min]
    u = (p0[2] - p0[0]) / np.linalg.norm(p0[2] - p0[0])
    r = np.linspace(0.5, 5.0, 91)
    for m in ("pt", *MODELS):
        e = []
        for x in r:
            p = p0.copy()
            p[2] = p0[0] + x * u
            e.append(energy(calcs[m], p))
        e = np.array(e) - energy(calcs[m], p0)
        res["stretch"][m] = {"E_at_5A_kJ_mol": float(e[-1]), "E_min_kJ_mol": float(e.min()),
                             "r_of_min_A": float(r[np.argmin(e)]),
                             "E_at_0.6A_kJ_mol": float(np.interp(0.6, r, e))}
        ax[1].plot(r, e, label=LABEL[m])
    ax[1].axhline(e_ref[order][-1] - e_ref[i_min], color="k", ls=":",
                  label="wB97X-V IRC end (2.4 A)")
    ax[1].set(xlabel="d(O1-H3) (A), rigid stretch from HO2", ylabel="E - E(HO2) (kJ/mol)",
              ylim=(-150, 500), title="rigid O-H stretch (holes show as drops)")
    ax[1].legend()
    # rigid O2-O1-H3 bend (H3 kept 0.975 A from O1, in the molecular plane)
    v = p0[1] - p0[0]
    roo = np.linalg.norm(v)
    ex = v / roo
    w = (p0[2] - p0[0]) - ((p0[2] - p0[0]) @ ex) * ex
    ey = w / np.linalg.norm(w)
    ang = np.linspace(20.0, 180.0, 81)
    res["bend"] = {}
    for m in ("pt", *MODELS):
        e = []
        for a in np.radians(ang):
            p = p0.copy()
            p[2] = p0[0] + 0.975 * (np.cos(a) * ex + np.sin(a) * ey)
            e.append(energy(calcs[m], p))
        e = np.array(e) - energy(calcs[m], p0)
        res["bend"][m] = {"E_min_kJ_mol": float(e.min()),
                          "angle_of_min_deg": float(ang[np.argmin(e)]),
                          "E_at_20deg_kJ_mol": float(e[0]), "E_at_180deg_kJ_mol": float(e[-1])}
        ax[2].plot(ang, e, label=LABEL[m])
    ax[2].set(xlabel="angle O2-O1-H3 (deg), rigid bend from HO2", ylabel="E - E(HO2) (kJ/mol)",
              ylim=(-150, 800), title="rigid H-O-O bend (H3 towards O2 at small angles)")
    ax[2].legend()
    # rigid O1-O2 stretch (O1-H3 kept): HO2 -> OH + O, the channel the walls allow up to 2.5 A
    roo_scan = np.linspace(0.9, 3.0, 85)
    res["oo_stretch"] = {}
    for m in ("pt", *MODELS):
        e = []
        for x in roo_scan:
            p = p0.copy()
            p[1] = p0[0] + x * ex
            e.append(energy(calcs[m], p))
        e = np.array(e) - energy(calcs[m], p0)
        res["oo_stretch"][m] = {"E_at_2.5A_kJ_mol": float(np.interp(2.5, roo_scan, e)),
                                "E_at_3A_kJ_mol": float(e[-1]), "E_min_kJ_mol": float(e.min()),
                                "r_of_min_A": float(roo_scan[np.argmin(e)])}
        ax[3].plot(roo_scan, e, label=LABEL[m])
    ax[3].axvspan(0.98, 1.52, color="0.9", label="d(O-O) range of the rxn-9 data")
    ax[3].set(xlabel="d(O1-O2) (A), rigid stretch from HO2", ylabel="E - E(HO2) (kJ/mol)",
              ylim=(-150, 600), title="rigid O-O stretch (HO2 -> OH + O)")
    ax[3].legend()
    res["E_HO2_eV"] = {m: energy(calcs[m], p0) / EV_TO_KJ for m in ("pt", *MODELS)}
    fig.tight_layout()
    fig.savefig(out / "pes_cuts.png", dpi=110)
    plt.close(fig)
    res["irc"]["dE_ref_end_minus_HO2_kJ_mol"] = float(e_ref[order][-1] - e_ref[i_min])
    return res


def test_errors(runs: Path) -> dict:
    """Test-split errors of FT and scratch (the split the trainer made: same config, seed),
    raw and after removing the mean energy error (a constant offset is physically
    irrelevant for one fixed composition: forces and relative energies do not see it)."""
    from ffpt.data.graph import GraphSet
    from ffpt.model import load_model
    from ffpt.train.config import load_config
    from ffpt.train.metrics import evaluate
    from ffpt.train.trainer import load_splits

    here = Path(__file__).resolve().parent
    res = {}
    for m, cfg_name in (("ft", "ft_rxn09.yaml"), ("scratch", "scratch_rxn09.yaml")):
        cfg = load_config(here / cfg_name)
        _, _, test = load_splits(cfg)
        model = load_model(runs / m / "best.pt")
        r = evaluate(model, GraphSet(test, model.elements, model.cutoff), 64,
                     return_predictions=True)
        ep, er, _ = r.pop("predictions")["energy"]
        de = ep - er
        r["energy_mean_error"] = float(de.mean())
        r["energy_mae_offset_removed"] = float(np.mean(np.abs(de - de.mean())))
        kcal = EV_TO_KJ / 4.184
        r["kcal_mol"] = {"energy_mae": r["energy_mae"] * kcal,
                         "energy_mae_offset_removed": r["energy_mae_offset_removed"] * kcal,
                         "forces_mae_per_A": r["forces_mae"] * kcal}
        res[m] = r
    return res


def md_stats(d: Path) -> dict:
    """Speed (LAMMPS 'Performance' line) and stability of a metadynamics run."""
    log = lammps_io.read_log(d / "log.lammps")
    res: dict = {}
    if log.ns_per_day is not None:
        res["ns_per_day"], res["steps_per_s"] = log.ns_per_day, log.steps_per_s
    if log.loop_time_s is not None:
        res["loop_time_s"], res["steps"] = log.loop_time_s, log.steps
    rows = np.stack(list(log.thermo.values()), 1) if len(log.thermo) == 7 else []
    if len(rows):
        a = rows  # step time temp pe ke etotal f_mtd (pe includes the bias)
        t = a[:, 2]
        e_model = a[:, 3] - a[:, 6]
        res["temperature_K"] = {"mean": float(t.mean()), "median": float(np.median(t)),
                                "max": float(t.max()), "samples": len(t),
                                "mean_last_half": float(t[len(t) // 2:].mean())}
        res["model_pe_min_eV"] = float(e_model.min())
        res["model_pe_min_time_ps"] = float(a[np.argmin(e_model), 1])
    cv = np.loadtxt(d / "COLVAR", comments="#")
    res["d_OH_nm"] = [float(cv[:, 1].min()), float(cv[:, 1].max())]
    res["d_OO_nm"] = [float(cv[:, 2].min()), float(cv[:, 2].max())]
    res["fraction_dOH_gt_0.25nm"] = float(np.mean(cv[:, 1] > 0.25))
    # minimum / maximum interatomic distances in the trajectory (all three pairs)
    frames = _read_dump(d / "traj.lammpstrj")
    if len(frames):
        dd = np.stack([np.linalg.norm(frames[:, i] - frames[:, j], axis=1)
                       for i, j in ((0, 1), (0, 2), (1, 2))], axis=1)
        res["traj_min_distance_A"] = float(dd.min())
        res["traj_max_OO_A"] = float(dd[:, 0].max())
        res["traj_max_O2H3_A"] = float(dd[:, 2].max())
    return res


def _read_dump(path: Path) -> np.ndarray:
    """Unwrapped-enough positions (minimum image relative to atom 1) of a 3-atom dump."""
    out = []
    for fr in lammps_io.read_dump_frames(path):
        p, box = fr.positions.copy(), np.diag(fr.cell)
        p[1:] -= box * np.round((p[1:] - p[0]) / box)
        out.append(p)
    return np.array(out)


OO_DATA_MAX = 0.152  # nm: largest d(O-O) in the rxn-9 data (O-O dissociation is untrained)


def profile(fes, f2d: np.ndarray, oo_max: float | None = None) -> np.ndarray:
    """F(d_OH) = -kT ln integral exp(-F/kT) d(d_OO) (d_OO <= oo_max), minimum at zero."""
    keep = np.ones(len(fes.axes[1]), bool) if oo_max is None else fes.axes[1] <= oo_max
    p = np.exp(-(f2d[:, keep] - f2d.min()) / KT).sum(axis=1)
    with np.errstate(divide="ignore"):
        f = -KT * np.log(p)
    return f - f[np.isfinite(f)].min()


def region_free_energy(x: np.ndarray, f1: np.ndarray, lo: float, hi: float) -> float:
    m = (x >= lo) & (x <= hi)
    return float(-KT * np.log(np.sum(np.exp(-f1[m] / KT))))


def fes_analysis(runs: Path, out: Path, n_slices: int = 8) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ffpt.analysis.fes import compute_fes, plot_fes

    res: dict = {}
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for m in metad_runs(runs):
        hills = runs / f"metad_{m}" / "HILLS"
        fes = compute_fes(hills, bins=BINS, gmin=GMIN, gmax=GMAX, n_slices=n_slices)
        plot_fes(fes, out / f"fes_{m}.png", fmax=250.0)
        x = fes.axes[0]
        f1 = profile(fes, fes.free_energy)
        dissoc = region_free_energy(x, f1, *DISSOC) - region_free_energy(x, f1, *BOUND)
        # barrier: highest point of F(d_OH) between the bound minimum and the H + O2 region
        between = (x > x[np.argmin(f1)]) & (x < DISSOC[1])
        barrier = float(f1[between].max()) if between.any() else float("nan")
        f1o = profile(fes, fes.free_energy, OO_DATA_MAX)
        dissoc_o = region_free_energy(x, f1o, *DISSOC) - region_free_energy(x, f1o, *BOUND)
        between_o = (x > x[np.argmin(f1o)]) & (x < DISSOC[1])
        evol = []
        for t, s in zip(fes.times, fes.slices, strict=True):
            g = profile(fes, s, OO_DATA_MAX)
            evol.append((float(t), region_free_energy(x, g, *DISSOC)
                         - region_free_energy(x, g, *BOUND)))
        ix, iy = np.unravel_index(np.argmin(fes.free_energy), fes.free_energy.shape)
        res[m] = {"hills": len(read_hills_heights(hills)),
                  "dF_dissociation_kJ_mol": float(dissoc),
                  "F_max_along_dOH_kJ_mol": barrier,
                  "dOH_of_F_min_nm": float(x[np.argmin(f1)]),
                  "global_F_min_at_dOH_dOO_nm": [float(x[ix]), float(fes.axes[1][iy])],
                  "dOO_le_data_max": {
                      "dF_dissociation_kJ_mol": float(dissoc_o),
                      "F_max_along_dOH_kJ_mol": float(f1o[between_o].max())
                      if between_o.any() else float("nan"),
                      "dF_vs_time_ps": evol}}
        line, = ax[0].plot(x * 10, f1o, label=label(m) + ", d_OO <= 1.52 A")
        ax[0].plot(x * 10, f1, ls=":", color=line.get_color(), label=label(m) + ", all d_OO")
        ax[1].plot([e[0] for e in evol], [e[1] for e in evol], "o-", label=label(m))
    ax[0].set(xlabel="d(O1-H3) (A)", ylabel="F (kJ/mol)", ylim=(-5, 350),
              title="F(d_OH), d_OO integrated out")
    ax[1].set(xlabel="simulation time (ps)", ylabel="F(H + O2) - F(HO2) (kJ/mol)",
              title="dissociation free energy vs time (d_OO <= 1.52 A)")
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fes_profile.png", dpi=110)
    plt.close(fig)
    return res


def read_hills_heights(path: Path) -> np.ndarray:
    from ffpt.analysis.fes import read_hills
    return read_hills(path).heights


def copy_small(src: Path, dst: Path, limit: int = 1_000_000) -> None:
    """xz-compressed copy ``dst.xz`` of a PLUMED text file, keeping every k-th data line when
    it exceeds ``limit`` bytes (``ffpt fes`` and ``ffpt.analysis.fes`` read ``.xz`` files)."""
    import lzma

    lines = src.read_text().splitlines(keepends=True)
    size = sum(len(x) for x in lines)
    k = int(np.ceil(size / limit))
    kept = [x for i, x in enumerate(lines) if x.startswith("#") or i % k == 0]
    with lzma.open(f"{dst}.xz", "wt", preset=9) as f:
        f.write("".join(kept))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(REPO / "runs" / "rxn09"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rxn09_metad"))
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"train": {}}
    for m in ("pt", *MODELS):
        mf = runs / m / "metrics.json"
        if mf.is_file():
            res["train"][m] = json.loads(mf.read_text())
    res["test"] = test_errors(runs)
    learning_curves(runs, out)
    res["pes"] = pes_cuts(runs, shared_data(args.data), out)
    res["md"] = {m: md_stats(runs / f"metad_{m}") for m in metad_runs(runs)}
    for m, md in res["md"].items():  # model energy below its own HO2 minimum = a hole
        e_ho2 = res["pes"]["E_HO2_eV"].get(m.partition("_damp")[0])
        if e_ho2 is not None and "model_pe_min_eV" in md:
            md["model_pe_min_minus_E_HO2_kJ_mol"] = (md["model_pe_min_eV"] - e_ho2) * EV_TO_KJ
    res["fes"] = fes_analysis(runs, out)
    for m in metad_runs(runs):
        d = runs / f"metad_{m}"
        for name in ("COLVAR", "HILLS"):
            if (d / name).is_file():
                copy_small(d / name, out / f"{name}_{m}")
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("md", "fes")}, indent=1))
    shutil.copy(runs / "pt" / "learning_curve.png", out / "learning_curve_pt.png")


if __name__ == "__main__":
    main()
