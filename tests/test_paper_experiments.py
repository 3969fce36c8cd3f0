"""The paper's three experiments (inputs/{aspirin,water,combustion}/reproduce.sh): configs,
the extra stages' physics on synthetic data, and each command end to end at its tiny preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ffpt.config import REPO_ROOT, shared_data_dir
from ffpt.demo.config import load_demo_config

SYSTEMS = ("aspirin", "water", "combustion")


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("preset", [None, "tiny", "budget"])
def test_paper_configs_load_with_extra_stages(system, preset):
    from ffpt.demo.extra_stages import extra_stage_names

    cfg = load_demo_config(REPO_ROOT / "inputs" / system / "paper.yaml", preset)
    pre, post = extra_stage_names(cfg)
    assert post[-1] == "paper_report" and (pre == ["h2comb_data"]) == (system == "combustion")
    if preset is None:  # the paper's sizes
        assert cfg["pt_data"]["n_frames"] == 100_000 and cfg["model"]["features"] == 128
        assert cfg["model"]["num_interactions"] == 3
    pt = cfg["pt_data"]  # the paper's teachers, whatever the demo's defaults become
    assert pt["teacher"] == {"aspirin": "gaff", "water": "tip3p-flex",
                             "combustion": "qforce-h2"}[system]
    assert pt["teacher_options"] == {} and pt["sigma"] == 0.2
    if system != "combustion":
        assert pt["max_force"] is None and pt["max_energy"] is None
    variants = cfg["train"]["variants"]
    assert variants["scratch"]["init"] == "none"
    assert variants["plain-paper"]["ft_strategy"] == "plain"  # the paper's row, always kept
    budgets: dict = {}  # every FT epoch budget has its own scratch baseline
    for v in variants.values():
        budgets.setdefault(v["max_epochs"], []).append(v["init"])
    assert all("none" in inits for inits in budgets.values()), budgets


def test_demo_without_paper_section_has_no_extra_stages(tmp_path):
    from ffpt.demo.pipeline import Pipeline

    cfg = load_demo_config(preset="tiny")
    assert cfg["paper"] == {}
    pipe = Pipeline(cfg, tmp_path / "run", progress=False, echo=lambda s: None)
    assert pipe.stages[0] == "pt_data" and pipe.stages[-1] == "report"


def test_close_contact_frames_are_those_with_an_atomic_force_above_the_cap():
    """The per-reaction 'without close contacts' table keeps the frames whose largest atomic
    force *magnitude* is at most the cap: (40, 40, 0) eV/A is 56.6 eV/A, above 50."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from ffpt.data.frames import FrameSet
    from ffpt.demo.paper_combustion import moderate_frames

    images = []
    for big in ([1.0, -2.0, 0.5], [40.0, 40.0, 0.0], [0.0, 0.0, -60.0], [35.0, 0.0, 35.0]):
        a = Atoms("OOH", positions=[[0, 0, 0], [1.3, 0, 0], [-0.3, 0.9, 0]])
        f = np.array([[0.1, 0.0, 0.0], big, [0.0, -0.2, 0.1]])
        a.calc = SinglePointCalculator(a, energy=-1.0, forces=f)
        images.append(a)
    fs = FrameSet.from_atoms(images)
    assert moderate_frames(fs, 50.0).tolist() == [0, 3]  # 35 sqrt(2) = 49.5 eV/A is kept
    assert moderate_frames(fs, 60.0).tolist() == [0, 1, 2, 3]


def test_a_hand_written_status_block_survives_the_report_rewrite(tmp_path):
    from ffpt.demo.paper_report import STATUS_END, STATUS_START, keep_status

    readme = tmp_path / "README.md"
    new = ["# Paper experiment: water", "", "Claim under test: x."]
    assert keep_status(readme, new) == new  # no README yet
    readme.write_text("# Paper experiment: water\n\nold numbers\n")
    assert keep_status(readme, new) == new  # no status block: nothing kept
    block = f"{STATUS_START}\n**Status.** round 2 at 50 ps.\n{STATUS_END}"
    readme.write_text(f"# Paper experiment: water\n\n{block}\n\nold numbers\n")
    out = keep_status(readme, new)
    assert out[0] == new[0] and out[2] == block and out[3:] == new[1:]
    assert "old numbers" not in "\n".join(out)


def test_h2comb_channels_use_corrected_rxn12_files():
    from ffpt.demo.paper_combustion import channel_files

    data = shared_data_dir() / "h2combustion"
    if not data.is_dir():
        pytest.skip(f"reference data not found at {data} (set FFPT_SHARED_DATA)")
    files = channel_files(data)
    assert sorted(files) == [f"{k:02d}" for k in range(1, 20)]
    names12 = {p.name for p in files["12"]}
    assert "12a_irc_d_corr.npz" in names12 and "12a_irc_q_corr.npz" in names12
    assert "12_irc.npz" not in names12 and not any("_all" in n for n in names12)
    assert {p.name for p in files["06"]} == {"06a_irc.npz", "06b_irc.npz"}


def test_product_state_tells_ho2_from_h_plus_o2():
    from ffpt.demo.paper_combustion import product_state

    cell = np.eye(3) * 30.0
    z = np.array([8, 8, 1])
    ho2 = np.array([[10.0, 10, 10], [11.33, 10, 10], [9.7, 10.93, 10]])
    apart = ho2.copy()
    apart[2] = [10.0, 14.0, 10.0]
    broken = ho2.copy()
    broken[1] = [13.5, 10, 10]
    assert product_state(z, ho2, cell) == "HO2"
    assert product_state(z, apart, cell) == "H + O2"
    assert product_state(z, broken, cell) == "HO + O"


def _random_walk_dump(path: Path, d_a2_ps: float, dt_ps: float, n_frames: int, seed: int):
    rng = np.random.default_rng(seed)
    n = 60
    steps = rng.normal(0, np.sqrt(2 * d_a2_ps * dt_ps), (n_frames, n, 3))
    pos = 50.0 + np.cumsum(steps, axis=0)
    with open(path, "w") as f:
        for k in range(n_frames):
            f.write(f"ITEM: TIMESTEP\n{k * 10}\nITEM: NUMBER OF ATOMS\n{n}\n")
            f.write("ITEM: BOX BOUNDS pp pp pp\n" + "0 100\n" * 3)
            f.write("ITEM: ATOMS id type x y z\n")
            for i, p in enumerate(pos[k]):
                f.write(f"{i + 1} {2 if i % 3 == 0 else 1} {p[0]:.5f} {p[1]:.5f} {p[2]:.5f}\n")


def test_water_msd_recovers_known_diffusion(tmp_path):
    """Random-walk 'stability runs' with D = 0.25 A^2/ps (2.5e-5 cm^2/s): the msd stage finds
    it per seed and averages over seeds; failed runs are left out."""
    from ase import Atoms
    from ase.io import write

    from ffpt.demo.extra_stages import water_msd

    start = tmp_path / "start.extxyz"
    write(start, Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    d_true, dt_fs = 0.25, 0.5
    for seed in (1, 2, 3):
        run = tmp_path / "stability" / "runs" / "ft" / "T300" / f"seed{seed}"
        run.mkdir(parents=True)
        _random_walk_dump(run / "dump.lammpstrj", d_true, 10 * dt_fs / 1000, 400, seed)
        (run / "record.json").write_text(json.dumps({"failed": seed == 3}))
    pipe = SimpleNamespace(
        cfg={"stability": {"temperatures": [300.0], "timestep": dt_fs}},
        results={"ft_structures": {"md_start": str(start)}}, variants=["ft"], run=tmp_path,
        path=lambda *p: tmp_path.joinpath(*p))
    (tmp_path / "report").mkdir()
    res = water_msd(pipe, {"element": "O", "fit": [0.1, 0.5], "skip_ps": 0.0})["per_variant"]
    assert res["ft"]["n_runs"] == 2 and "seed3 failed" in res["ft"]["notes"][0]
    assert res["ft"]["D_cm2_s"] == pytest.approx(d_true * 1e-4, rel=0.25)
    assert res["ft"]["D_err_cm2_s"] > 0


def _run(system: str, tmp_path: Path) -> tuple[Path, Path, str]:
    run, results = tmp_path / system, tmp_path / f"{system}-results"
    cmd = [str(REPO_ROOT / "inputs" / system / "reproduce.sh"), "--preset", "tiny",
           "--set", f"run_dir={run}", "--set", f"paper.results_dir={results}"]
    env = {**os.environ, "FFPT_BIN": str(Path(sys.executable).parent), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return run, results, out.stdout


def _need(what: str) -> None:
    from ffpt.lammps import plugin_built

    if not plugin_built():
        pytest.skip("LAMMPS plugin not built (run scripts/setup.sh or ffpt build-plugin)")
    if not (shared_data_dir() / what).exists():
        pytest.skip(f"{shared_data_dir() / what} not found (set FFPT_SHARED_DATA)")


def test_aspirin_tiny_end_to_end_and_resume(tmp_path):
    _need("aspirin_ccsd")
    run, results, _ = _run("aspirin", tmp_path)
    s = json.loads((results / "paper_summary.json").read_text())
    pts = s["size_study"]["points"]
    assert sorted(pts, key=int) == ["12", "24"]
    assert all(set(p["variants"]) == {"scratch", "plain-paper", "replay", "plain"}
               for p in pts.values())
    # every size is tested on the same 50 held-out CCSD frames
    from ffpt.data.frames import FrameSet

    a, b = (FrameSet.load(d / "data" / "ft_test.npz") for d in (run, run / "size_12"))
    assert a.n_frames == 50 and np.array_equal(a.positions, b.positions)
    # the size study reused the PT model instead of training it again
    assert not (run / "size_12" / "train" / "pt").exists()
    text = (results / "README.md").read_text()
    assert "Verdict per claim" in text and "survival_vs_size.png" in text
    assert (results / "survival_vs_size.png").stat().st_size > 0
    _, _, again = _run("aspirin", tmp_path)  # resumable: every stage is reused
    assert again.count("done earlier, skipped") == 15 and " ...\n" not in again


def test_water_tiny_end_to_end(tmp_path):
    pytest.importorskip("tblite")
    _need("water_rpbe_d3")
    _, results, _ = _run("water", tmp_path)
    s = json.loads((results / "paper_summary.json").read_text())
    rp = s["extra_tests"]["rpbe_d3"]
    variants = {"scratch", "plain-paper", "replay", "plain-liquid"}  # plain-liquid: pt_liquid
    assert rp["n_frames"] == 50 and set(rp["errors"]) == {"pt", *variants}
    assert set(s["msd"]["per_variant"]) == variants
    assert (results / "msd.png").exists() and "reference" in s["msd"]["rdf"]
    ml = s["ml_round"]  # the models' own MD frames, labelled and added; variants retrained
    assert ml["n_new"] == 2 and ml["n_train"] + ml["n_test"] == ml["n_new"] + ml["n_round1"]
    assert "xtb" in ml["method"].lower()
    text = (results / "README.md").read_text()  # round 2 gets its own survival verdicts
    assert "round 2 (ML-driven data), MD survival at 300 K, plain-liquid vs scratch" in text


def test_combustion_tiny_end_to_end(tmp_path):
    _need("h2combustion")
    run, results, _ = _run("combustion", tmp_path)
    s = json.loads((results / "paper_summary.json").read_text())
    per, mod = s["per_reaction"]["per_reaction"], s["per_reaction"]["moderate"]
    assert sorted(per) == [f"{k:02d}" for k in range(1, 20)]
    assert set(mod) <= set(per)  # close-contact frames left out: never more frames, same models
    for rxn, m in mod.items():
        assert m["scratch"]["n_frames"] <= per[rxn]["scratch"]["n_frames"]
        if m["scratch"]["n_frames"] == per[rxn]["scratch"]["n_frames"]:
            assert m["scratch"]["forces_mae_meV_A"] == pytest.approx(
                per[rxn]["scratch"]["forces_mae_meV_A"])
    # the per-reaction test frames are not in the FT file
    from ffpt.data.frames import FrameSet

    ft = FrameSet.load(run / "data" / "h2comb_ft.npz")
    seen = {np.round(ft.positions[ft.frame_slice(i)], 6).tobytes() for i in range(ft.n_frames)}
    test = FrameSet.load(run / "data" / "rxn_test" / "09.npz")
    assert not any(np.round(test.positions[test.frame_slice(i)], 6).tobytes() in seen
                   for i in range(test.n_frames))
    for rxn in ("09", "01"):
        m = s["metad"]["runs"][rxn]["scratch"]
        assert m["returncode"] == 0 and 50 < m["T_mean_K"] < 5000  # T read from the log
        assert m["n_chunks"] == 2 and m["ps_simulated"] == pytest.approx(200 * 0.2e-3)
        assert sum(m["state_fraction"].values()) == pytest.approx(1.0)
        assert m["state_changes"] == len(m["state_timeline"]) - 1
        assert m["state_timeline"][0][1] == 0.0
        assert m["state_timeline"][-1][2] == pytest.approx(m["ps_simulated"])
    assert s["irc"]["barrier_kJ_mol"]["reference"] > 150  # rxn 9: ~227 kJ/mol up the IRC
    far = {tuple(x["d_A"]): x for x in s["irc"]["dissociation"]}  # H leaving O2 (AIMD frames)
    assert 200 < far[(2.0, 2.5)]["reference"] < 240  # the bond energy, ~225 kJ/mol above HO2
    assert {"pt", "scratch"} <= set(far[(2.0, 2.5)]) and far[(2.0, 2.5)]["n"] > 100


def test_state_timeline_counts_round_trips_not_flicker():
    """MetaD product states per frame -> visits. A 0.3-ps excursion is flicker (no change);
    a capture that stays is one change; leaving again makes the round trip (two changes)."""
    from ffpt.demo.paper_combustion import state_timeline

    t = [0.1 * i for i in range(200)]
    free, ho2 = "H + O2", "HO2"
    capture = [free] * 60 + [ho2] * 140
    assert state_timeline(capture, t) == [(free, 0.0, pytest.approx(6.0)),
                                          (ho2, pytest.approx(6.0), pytest.approx(19.9))]
    flicker = [free] * 60 + [ho2] * 3 + [free] * 137  # 0.3 ps bound: not a visit
    assert [v[0] for v in state_timeline(flicker, t)] == [free]
    trip = [free] * 60 + [ho2] * 70 + [free] * 70
    visits = state_timeline(trip, t)
    assert [v[0] for v in visits] == [free, ho2, free] and len(visits) - 1 == 2
    # a 0.3-ps visit at the start joins the next one, which then starts at 0
    assert state_timeline([ho2] * 3 + [free] * 50, t) == [(free, 0.0, pytest.approx(5.2))]
    # with visits of at least 10 ps required, none of the three 6-7 ps visits counts
    assert len(state_timeline(trip, t, min_visit_ps=10.0)) == 1


def test_new_h2comb_fraction_relabels_the_ft_set(tmp_path):
    """The FT file keeps its path when ``paper.h2comb.fraction`` changes; the FT stages after
    it must still rerun (they once reused the old frames, and the old models with them)."""
    _need("h2combustion")
    from ffpt.data.frames import FrameSet
    from ffpt.demo.pipeline import Pipeline, StopAfter

    def ft_train_frames(fraction: float) -> int:
        cfg = load_demo_config(REPO_ROOT / "inputs" / "combustion" / "paper.yaml", "tiny",
                               [f"paper.h2comb.fraction={fraction}"])
        pipe = Pipeline(cfg, tmp_path / "run", echo=lambda m: None, progress=False,
                        until="ft_labels")
        with pytest.raises(StopAfter):
            pipe.run_all()
        return FrameSet.load(pipe.results["ft_labels"]["train"]).n_frames

    small = ft_train_frames(0.0004)
    assert ft_train_frames(0.0008) > 1.5 * small


def _morse_ho2_mean_temperature(tmp_path, thermostat: list[str]) -> float:
    """Mean T (after the first fifth) of 12 ps of a Morse HO2 in LAMMPS under these lines."""
    from ffpt.lammps.io import read_log
    from ffpt.lammps.runner import run_lammps

    (tmp_path / "ho2.data").write_text(
        "HO2\n\n3 atoms\n2 atom types\n\n0 30 xlo xhi\n0 30 ylo yhi\n0 30 zlo zhi\n\n"
        "Masses\n\n1 15.999\n2 1.008\n\nAtoms # atomic\n\n1 1 14.89 15.64 15.0\n"
        "2 1 13.77 15.21 15.0\n3 2 15.85 15.50 15.0\n")
    body = "\n".join(thermostat).replace("${seed}", "4928459")
    (tmp_path / "in.lmp").write_text(
        "units metal\natom_style atomic\nboundary p p p\nread_data ho2.data\n"
        "pair_style morse 6.0\npair_coeff 1 1 5.1 2.6 1.33\npair_coeff 1 2 4.6 2.2 0.97\n"
        "pair_coeff 2 2 0.5 2.0 2.0\n"
        "velocity all create 300.0 4928459 mom yes rot yes dist gaussian\n"
        f"fix integrate all nve\n{body}\ntimestep 0.0002\nthermo_style custom step temp\n"
        "thermo 100\nrun 60000\n")
    run_lammps("in.lmp", tmp_path, timeout=120, screen=False, autoload_plugins=False)
    t = read_log(tmp_path / "log.lammps").thermo["Temp"]
    return float(t[len(t) // 5:].mean())


def _thermostat_lines(text: str) -> list[str]:
    lines = (" ".join(ln.split("#")[0].split()) for ln in text.splitlines())
    return [ln for ln in lines if ln.startswith(("fix thermostat", "compute_modify"))]


def test_metad_thermostat_holds_300K_in_a_three_atom_molecule(tmp_path):
    """The MetaD input's Langevin lines (paper_combustion._lammps_text) on a Morse HO2 in
    LAMMPS: mean T 300 K over all 3N dof. With 'zero yes' (the shipped in.metad) the H atom
    receives the O atoms' mean random force and the molecule runs far too hot."""
    from ffpt.demo.paper_combustion import _lammps_text

    text = _lammps_text(REPO_ROOT / "inputs" / "combustion" / "rxn09" / "in.metad",
                        {"damp_ps": 0.05})
    thermostat = _thermostat_lines(text)
    assert len(thermostat) == 2
    fixed = _morse_ho2_mean_temperature(tmp_path, thermostat)
    hot = _morse_ho2_mean_temperature(tmp_path, [thermostat[0].replace("zero no", "zero yes")])
    assert 270 < fixed < 330, (fixed, hot)
    assert hot > 500, (fixed, hot)  # the shipped input's thermostat: ~750 K


def test_survival_thermostat_holds_the_target_in_a_three_atom_molecule(tmp_path):
    """The survival runs' Langevin lines (ffpt.lammps.io.langevin_input) for a molecule hold
    300 K on a Morse HO2 (LAMMPS, T over all 3N dof); a periodic box keeps 'zero yes'."""
    from ffpt.lammps.io import langevin_input

    args = ("m.pt", ["O", "H"], 300.0, 10, 0.2, 20.0, 1, 4928459, 100, 100)
    molecule = _thermostat_lines(langevin_input(*args, pbc=(False, False, False)))
    assert len(molecule) == 2 and "zero no" in molecule[0]
    assert 270 < _morse_ho2_mean_temperature(tmp_path, molecule) < 330
    box = _thermostat_lines(langevin_input(*args, pbc=(True, True, True)))
    assert len(box) == 1 and box[0].endswith("zero yes")


def test_size_point_horizon_censors_later_failures(tmp_path):
    """The size study puts every point on one horizon: a run that failed after it survives,
    and times are cut at it."""
    from types import SimpleNamespace

    from ffpt.demo.extra_stages import _size_point

    for seed, (t, failed) in enumerate([(50.0, False), (3.0, True), (20.0, True)], 1):
        d = tmp_path / "stability" / "runs" / "scratch" / "T500" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps({"time_ps": t, "failed": failed}))
    ev = {"scratch_on_ft_test": {"forces_mae_meV_A": 1.0, "energy_mae_meV_atom": 1.0}}
    pipe = SimpleNamespace(
        run=tmp_path, variants=["scratch"],
        cfg={"stability": {"temperatures": [500.0], "steps": 100000, "timestep": 0.5}},
        results={"train_scratch": {"mode": "scratch"}, "evaluate": ev,
                 "ft_labels": {"n_train": 950}})
    full = _size_point(pipe)["variants"]["scratch"]
    cut = _size_point(pipe, horizon_ps=10.0)
    assert full["failed"] == [False, True, True] and abs(full["fraction_surviving"] - 1 / 3) < 1e-12
    assert cut["duration_ps"] == 10.0
    assert cut["variants"]["scratch"]["failed"] == [False, True, False]
    assert cut["variants"]["scratch"]["times_ps"] == [10.0, 3.0, 10.0]


# ---------------------------------------------------------------- MetaD in resumable chunks
CHUNKED = {"reactions": ["09"], "chunk_steps": 100, "timestep_fs": 0.2, "damp_ps": 0.05,
           "height": 1.0, "pace": 20, "biasfactor": 30, "thermo_every": 20, "dump_every": 20,
           "colvar_every": 10, "fes_slices": 2, "jobs": 1}


def _metad(run: Path, artifact: Path, steps: int, echo=print, **over) -> dict:
    from ffpt.demo.paper_combustion import run_metad_stage

    pipe = SimpleNamespace(run=run, variants=["m"], echo=echo,
                           results={"deploy": {"m": {"artifact": str(artifact)}}})
    return run_metad_stage(pipe, {**CHUNKED, "steps": steps, **over})["runs"]["09"]["m"]


def _files(d: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """Reaction-9 MetaD in LAMMPS with a tiny random-weight model, chunks of 100 steps: a
    2-chunk run extended to 3 (``ext``) and a fresh 3-chunk run (``fresh``)."""
    import importlib.util

    from ffpt.lammps import plugin_built

    if not plugin_built() or importlib.util.find_spec("plumed") is None:
        pytest.skip("needs the LAMMPS plugins (ffpt build-plugin) and the PLUMED kernel")
    import torch

    from ffpt.deploy.deploy import deploy_model
    from ffpt.model.checkpoint import build_model

    root = tmp_path_factory.mktemp("chunked")
    torch.manual_seed(0)
    art = root / "m.pt"
    cfg = {"features": 8, "num_radial": 8, "num_interactions": 1, "dtype": "float64"}
    deploy_model(build_model(cfg, ["H", "O"]), art, dtype="float64")
    ext = root / "ext" / "metad" / "rxn09" / "m"
    two = _metad(root / "ext", art, 200)
    before = {c: _files(ext / c) for c in ("chunk0000", "chunk0001")}
    three = _metad(root / "ext", art, 300)
    fresh = _metad(root / "fresh", art, 300)
    return SimpleNamespace(art=art, ext=ext, fresh=root / "fresh" / "metad" / "rxn09" / "m",
                           two=two, three=three, fresh_res=fresh, before=before)


@pytest.mark.slow
def test_metad_extension_reuses_finished_chunks(chunked):
    """Raising steps from 2 to 3 chunks runs only the third (the first two untouched) and
    gives the fresh 3-chunk run step for step; the analysis reads the chunks as one run."""
    from ffpt.demo.paper_combustion import metad_colvar

    for c, files in chunked.before.items():
        assert _files(chunked.ext / c) == files
    ext, fresh = metad_colvar(chunked.ext), metad_colvar(chunked.fresh)
    assert ext.shape == (300 // 10 + 1, 5)  # every 10 steps; restart rows counted once
    np.testing.assert_array_equal(ext, fresh)
    r, r2 = chunked.three, chunked.two
    assert r["returncode"] == 0 and r["n_chunks"] == 3 and r2["n_chunks"] == 2
    assert r["ps_simulated"] == pytest.approx(300 * 0.2e-3)
    assert r2["ps_simulated"] == pytest.approx(200 * 0.2e-3)
    assert r["n_frames"] == 300 // 20 + 1 and r2["n_frames"] == 200 // 20 + 1
    same = ("T_mean_K", "T_max_K", "state_fraction", "O2_dissociated_fraction", "F_max_kJ_mol")
    assert {k: r[k] for k in same} == {k: chunked.fresh_res[k] for k in same}


@pytest.mark.slow
def test_metad_restart_continues_state_and_bias(chunked):
    """At the start of chunk k: the same positions (CVs) and velocities (T) as at the end of
    chunk k-1, and the bias PLUMED rebuilt from HILLS equals the bias there plus the hill
    deposited at that step (PRINT comes before the hill of its step); no hill is doubled."""
    from ffpt.demo.paper_combustion import chunk_dir
    from ffpt.lammps.io import read_log

    d = chunked.ext
    for k in (1, 2):
        prev = np.loadtxt(chunk_dir(d, k - 1) / "COLVAR")[-1]
        first = np.loadtxt(chunk_dir(d, k) / "COLVAR")[0]
        np.testing.assert_array_equal(first[:3], prev[:3])  # time, dOH, dOO
        hills = np.loadtxt(chunk_dir(d, k - 1) / "HILLS")
        h = hills[np.isclose(hills[:, 0], prev[0])]
        assert len(h) == 1
        _, c1, c2, s1, s2, height, gamma = h[0]
        g = height * (gamma - 1) / gamma * np.exp(-0.5 * (((prev[1] - c1) / s1) ** 2 +
                                                          ((prev[2] - c2) / s2) ** 2))
        assert prev[3] > 0.1 and g > 0.1  # a bias that a restart without HILLS would lose
        assert first[3] == pytest.approx(prev[3] + g, abs=1e-4)
        t_prev = read_log(chunk_dir(d, k - 1) / "log.lammps").thermo["Temp"][-1]
        assert read_log(chunk_dir(d, k) / "log.lammps").thermo["Temp"][0] == t_prev
    hills = np.loadtxt(chunk_dir(d, 2) / "HILLS")  # every hill so far, each once
    np.testing.assert_allclose(hills[:, 0], np.arange(1, 300 // 20 + 1) * 20 * 0.2e-3)


@pytest.mark.slow
def test_metad_interrupted_chunk_reruns_from_its_start(chunked, tmp_path):
    """A chunk without a record (killed mid-run) is rerun from the previous chunk's final
    state, giving the same trajectory, the earlier chunks untouched; a run of the earlier
    all-in-one layout is set aside; another seed reruns from chunk 0, and the chunks of the
    old seed are kept in superseded/, not deleted."""
    import shutil

    from ffpt.demo.paper_combustion import chunk_dir

    shutil.copytree(chunked.fresh.parents[2], tmp_path / "run")
    d = tmp_path / "run" / "metad" / "rxn09" / "m"
    want = np.loadtxt(chunk_dir(d, 2) / "COLVAR")
    (chunk_dir(d, 2) / "record.json").unlink()
    (chunk_dir(d, 2) / "final.data").unlink()
    colvar = chunk_dir(d, 2) / "COLVAR"
    colvar.write_text(colvar.read_text()[:300])
    (d / "record.json").write_text("{}")  # the old layout: one record beside the outputs
    (d / "HILLS").write_text("old\n")
    kept = {c: _files(d / c) for c in ("chunk0000", "chunk0001")}
    assert _metad(tmp_path / "run", chunked.art, 300)["n_chunks"] == 3
    assert {c: _files(d / c) for c in kept} == kept
    np.testing.assert_array_equal(np.loadtxt(chunk_dir(d, 2) / "COLVAR"), want)
    assert (d / "unchunked" / "HILLS").read_text() == "old\n" and not (d / "HILLS").exists()
    first = np.loadtxt(chunk_dir(d, 0) / "COLVAR")
    old = {c: _files(d / c) for c in ("chunk0000", "chunk0001", "chunk0002")}
    said = []
    assert _metad(tmp_path / "run", chunked.art, 100, echo=said.append, seed=7)["n_chunks"] == 1
    assert len(said) == 1 and "settings changed" in said[0] and "superseded" in said[0]
    assert sorted(p.name for p in d.glob("chunk*")) == ["chunk0000"]
    assert not np.array_equal(np.loadtxt(chunk_dir(d, 0) / "COLVAR"), first)
    assert {c: _files(d / "superseded" / c) for c in old} == old


def test_metad_spec_sets_hill_width_height_and_pace_on_the_metad_line_only():
    """``paper.metad.sigma`` (and height/pace) reach the METAD line; comments stay as written,
    and a spec without them leaves the input unchanged."""
    from ffpt.demo.paper_combustion import _plumed_text

    src = REPO_ROOT / "inputs" / "combustion" / "rxn09" / "plumed.dat"
    assert _plumed_text(src, {}) == src.read_text()
    text = _plumed_text(src, {"sigma": 0.01, "height": 5.0, "pace": 100})
    metad = [ln for ln in text.splitlines() if ln.strip().startswith("ARG=dOH,dOO")]
    assert metad == ["  ARG=dOH,dOO SIGMA=0.01,0.01 HEIGHT=5.0 PACE=100"]
    comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    assert comments == [ln for ln in src.read_text().splitlines() if ln.lstrip().startswith("#")]


def test_basin_free_energies_of_two_harmonic_wells():
    """Two harmonic wells, depth offset 20 kJ/mol, force constants k and 4k: the basin free
    energy difference is 20 + kT ln(sqrt(4)) (the narrower well loses entropy), and the
    result does not depend on the grid spacing or on F's zero."""
    from ffpt.analysis.fes import basin_free_energies

    kT, k = 2.494, 5000.0  # kJ/mol, kJ/mol/nm^2
    for n in (801, 1601):
        x = np.linspace(0.0, 1.0, n)
        f = np.minimum(k * (x - 0.3) ** 2, 4 * k * (x - 0.7) ** 2 + 20.0) + 7.0
        got = basin_free_energies(f, {"a": x < 0.5, "b": x >= 0.5, "none": x > 2}, kT)
        assert set(got) == {"a", "b"} and got["a"] == 0.0
        assert got["b"] == pytest.approx(20.0 + kT * np.log(2.0), abs=1e-3)


def test_cv_basins_name_the_states_of_the_product_graph():
    """Each (dOH, dOO) grid region carries the product_state of a geometry at those
    distances (H on the far side of O1 from O2); stretched bonds are in no region."""
    from ffpt.demo.paper_combustion import cv_basins, product_state

    d_oh, d_oo = np.linspace(0.06, 0.45, 40), np.linspace(0.09, 0.25, 33)
    regions = cv_basins(d_oh, d_oo)
    count = sum(m.astype(int) for m in regions.values())
    assert count.max() == 1 and all(m.any() for m in regions.values())  # disjoint, non-empty
    assert count[np.searchsorted(d_oh, 0.15), 0] == 0  # a 1.5-A O-H bond: stretched, no basin
    z, cell = np.array([8, 8, 1]), np.eye(3) * 50.0
    for name, m in regions.items():
        for i, j in zip(*np.nonzero(m), strict=True):
            pos = np.array([[0.0, 0, 0], [10 * d_oo[j], 0, 0], [-10 * d_oh[i], 0, 0]]) + 20.0
            assert product_state(z, pos, cell) == name, (name, d_oh[i], d_oo[j])


def test_each_fine_tuned_variant_is_compared_with_scratch_of_its_own_budget():
    """A 150-epoch FT variant is judged against the 150-epoch scratch model, not the first
    scratch model; a budget without its own scratch falls back to the first."""
    from ffpt.demo.paper_report import error_verdicts
    from ffpt.demo.report import ft_pairs

    def tr(mode, epochs):
        return {"mode": mode, "training": {"max_epochs": epochs, "max_steps": None}}

    res = {"train_scratch": tr("scratch", 30), "train_ft": tr("finetune", 30),
           "train_scratch-long": tr("scratch", 150), "train_ft-long": tr("finetune", 150),
           "train_ft-odd": tr("finetune", 70),
           "evaluate": {f"{v}_on_ft_test": {"forces_mae_meV_A": f} for v, f in
                        [("scratch", 120.0), ("ft", 130.0), ("scratch-long", 60.0),
                         ("ft-long", 80.0), ("ft-odd", 100.0)]}}
    pipe = SimpleNamespace(variants=["scratch", "ft", "scratch-long", "ft-long", "ft-odd"],
                           results=res)
    assert ft_pairs(pipe) == [("ft", "scratch"), ("ft-long", "scratch-long"),
                              ("ft-odd", "scratch")]
    lines = error_verdicts(pipe)
    assert "ft-long vs scratch-long: 80.0 vs 60.0" in lines[1] and "NOT SUPPORTED" in lines[1]


def test_size_study_verdicts_compare_fine_tuned_variants_of_every_size_only():
    """A variant only the main run has (here a 150-epoch scratch model) is in the table but
    gets no verdict, and no scratch model is judged against scratch."""
    from ffpt.demo.paper_report import extra_sections

    def pt(**vs):
        return {"temperature_K": 500.0, "duration_ps": 10.0, "variants": {
            v: {"mode": m, "forces_mae_meV_A": 1.0, "failed": [f], "mean_time_ps": 1.0,
                "sem_time_ps": None, "fraction_surviving": float(not f)}
            for v, (m, f) in vs.items()}}

    pts = {"250": pt(scratch=("scratch", True), ft=("finetune", False)),
           "950": pt(scratch=("scratch", True), ft=("finetune", True),
                     **{"scratch-long": ("scratch", False)})}
    pipe = SimpleNamespace(results={"size_study": {"points": pts}}, cfg={"paper": {}},
                           variants=["scratch", "ft", "scratch-long"])
    text, ver = extra_sections(pipe)
    assert ver == ["size 250: ft survives 100% vs scratch 0% -> SUPPORTED",
                   "size 950: ft survives 0% vs scratch 0% -> NOT SUPPORTED"]
    assert any("scratch-long" in t for t in text)


def test_size_study_verdicts_judge_each_fine_tuned_variant_against_scratch_of_its_budget():
    """With 30- and 150-epoch rows at every size, the 150-epoch FT model is judged against the
    150-epoch scratch model (not the first scratch model listed)."""
    from ffpt.demo.paper_report import extra_sections

    def pt(**vs):
        return {"temperature_K": 500.0, "duration_ps": 10.0, "variants": {
            v: {"mode": m, "budget": [e, None], "forces_mae_meV_A": 1.0, "failed": f,
                "mean_time_ps": 1.0, "sem_time_ps": None,
                "fraction_surviving": 1 - sum(f) / len(f)}
            for v, (m, e, f) in vs.items()}}

    rows = {"scratch": ("scratch", 30, [True, True]), "ft": ("finetune", 30, [False, True]),
            "scratch-long": ("scratch", 150, [False, False]),
            "ft-long": ("finetune", 150, [False, True])}
    pts = {"250": pt(**rows), "950": pt(**rows)}
    pipe = SimpleNamespace(results={"size_study": {"points": pts}}, cfg={"paper": {}},
                           variants=list(rows))
    _, ver = extra_sections(pipe)
    assert ver == [f"size {n}: {v}" for n in ("250", "950") for v in (
        "ft survives 50% vs scratch 0% -> SUPPORTED",
        "ft-long survives 50% vs scratch-long 100% -> NOT SUPPORTED")]


def test_pt_test_column_uses_frames_no_pt_model_trained_on(tmp_path):
    """Extra PT data rattled from the same seed holds the main PT test frames in its training
    set: the 'on PT test' frames are those that no PT model trained on, each once."""
    import numpy as np
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from ffpt.data.frames import FrameSet
    from ffpt.demo.pipeline import Pipeline
    from ffpt.labelling.label import structure_hash

    def frame_keys(fs):
        return [structure_hash(a) for a in fs.iter_atoms()]

    def frames(xs):
        out = []
        for x in xs:
            a = Atoms("H2", positions=[[0, 0, 0], [0.7 + 0.01 * x, 0, 0]])
            a.calc = SinglePointCalculator(a, energy=float(x), forces=np.zeros((2, 3)))
            out.append(a)
        return FrameSet.from_atoms(out)

    sets = {"pt_data": ([0, 1, 2], [3, 4]), "pt_data_big": ([0, 1, 2, 3, 5, 6], [7, 8, 7])}
    results = {}
    for stage, (train, test) in sets.items():
        results[stage] = {}
        for part, xs in (("train", train), ("test", test)):
            path = tmp_path / f"{stage}_{part}.npz"
            frames(xs).save(path)
            results[stage][part] = str(path)
    pipe = SimpleNamespace(extra_pts=["big"], results=results)
    got = Pipeline.pt_test_frames(pipe)
    assert sorted(frame_keys(got)) == sorted(frame_keys(frames([4, 7, 8])))
    pipe.extra_pts = []  # without extras: the main test set as it is
    assert Pipeline.pt_test_frames(pipe).n_frames == 2


def test_reweighting_with_the_well_tempered_bias_recovers_the_unbiased_free_energy():
    """Frames drawn from a double well U under the converged well-tempered bias
    V = -(1 - 1/gamma) U (so the biased run visits the high well often) and reweighted with
    exp(V/kT) give the exact basin free-energy difference of U; unweighted counts do not."""
    from ffpt.analysis.fes import FES, fes_at, reweighted_state_free_energies

    kT, gamma = 2.494, 30.0
    x = np.linspace(-1.0, 1.0, 2001)
    u = np.minimum(400 * (x + 0.5) ** 2, 1600 * (x - 0.5) ** 2 + 30.0)  # kJ/mol
    exact = -kT * np.log(np.exp(-u[x >= 0] / kT).sum() / np.exp(-u[x < 0] / kT).sum())
    fes = FES(axes=[x], free_energy=u - u.min(), names=["s"])
    v = -(1 - 1 / gamma) * u
    p = np.exp(-(u + v) / kT)
    rng = np.random.default_rng(0)
    s = rng.choice(x, size=200_000, p=p / p.sum())
    bias = -(1 - 1 / gamma) * fes_at(fes, s[:, None])  # the bias looked up at each frame
    states = ["A" if si < 0 else "B" for si in s]
    got = reweighted_state_free_energies(states, bias, kT)
    assert got["A"] == 0.0 and got["B"] == pytest.approx(exact, abs=0.5)
    counts = -kT * np.log(np.mean(np.array(states) == "B") / np.mean(np.array(states) == "A"))
    assert abs(counts - exact) > 20.0  # the biased populations alone are far off
