"""The water demo: FT sampler physics, MD analysis, and the tiny pipeline end to end."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ffpt.analysis.rdf import rdf
from ffpt.analysis.water_stability import check_stability, frame_broken
from ffpt.lammps.io import read_lammps_dump


def test_tip3p_liquid_sampler_gives_liquid_water(tmp_path):
    from ffpt.sampling.liquid import WaterBoxSampling, sample_liquid_water

    s = WaterBoxSampling(n_molecules=32, equilibration_steps=2000, n_frames=8, sample_every=100)
    fs = sample_liquid_water(s, workdir=tmp_path, progress=False)
    assert fs.n_frames == 8 and fs.energy is None and fs.pbc.all()
    length = fs.cell[0, 0, 0]
    assert length == pytest.approx((32 * 18.01528 / 6.02214076e23 / 0.997 * 1e24) ** (1 / 3))
    atoms = list(fs.iter_atoms())
    for a in atoms:  # intact molecules, nothing crashed
        assert frame_broken(a.numbers, a.positions, a.cell[:]) is None
    r, g = rdf(atoms, n_bins=40)
    peak = r[np.argmax(g)]
    assert 2.6 < peak < 3.0 and g.max() > 2.0  # first O-O shell of liquid water
    assert 150 < fs.info["mean_temperature_K"] < 450


def test_rdf_of_ideal_gas_is_one():
    from ase import Atoms

    rng = np.random.default_rng(0)
    frames = [Atoms("O" * 200, positions=rng.uniform(0, 10, (200, 3)), cell=[10] * 3, pbc=True)
              for _ in range(5)]
    _, g = rdf(frames, n_bins=10)
    assert np.abs(g[2:] - 1).max() < 0.15


def _dump(path, steps_positions, cell=8.0):
    with open(path, "w") as f:
        for step, pos in steps_positions:
            f.write(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(pos)}\n")
            f.write("ITEM: BOX BOUNDS pp pp pp\n" + f"0 {cell}\n" * 3)
            f.write("ITEM: ATOMS id type x y z\n")
            for i, p in enumerate(pos):
                f.write(f"{i + 1} {1 if i % 3 == 0 else 2} {p[0]} {p[1]} {p[2]}\n")


def test_stability_criterion_finds_failure_step(tmp_path):
    water = np.array([[1.0, 1, 1], [1.96, 1, 1], [0.76, 1.93, 1],
                      [5.0, 5, 5], [5.96, 5, 5], [4.76, 5.93, 5]])
    crashed = water.copy()
    crashed[4] = [1.3, 1.2, 1.0]  # an H of molecule 2 lands 0.36 A from an O... of molecule 1
    collapsed = water.copy()
    collapsed[3:] += [-2.6, -2.8, -4.0]  # the two molecules' O atoms 1.7 A apart
    dissociated = water.copy()
    dissociated[2] = [3.0, 3.0, 3.0]  # an H far from every O
    _dump(tmp_path / "ok.dump", [(0, water), (10, water)])
    _dump(tmp_path / "bad.dump", [(0, water), (10, water), (20, crashed), (30, water)])
    _dump(tmp_path / "diss.dump", [(0, water), (10, dissociated)])
    _dump(tmp_path / "oo.dump", [(0, water), (10, collapsed)])
    z = np.array([8, 1])
    ok = check_stability(read_lammps_dump(tmp_path / "ok.dump"), z, 10)
    assert not ok.failed and ok.failure_step is None
    assert ok.min_distance == pytest.approx(0.96, abs=0.01)
    bad = check_stability(read_lammps_dump(tmp_path / "bad.dump"), z, 30)
    assert bad.failed and bad.failure_step == 20 and "<" in bad.reason
    diss = check_stability(read_lammps_dump(tmp_path / "diss.dump"), z, 10)
    assert diss.failed and diss.failure_step == 10 and "no O" in diss.reason
    oo = check_stability(read_lammps_dump(tmp_path / "oo.dump"), z, 10)
    assert oo.failed and oo.failure_step == 10 and "O atoms 0 and 3" in oo.reason
    early = check_stability(read_lammps_dump(tmp_path / "ok.dump"), z, 100)
    assert early.failed and early.failure_step == 10  # stopped before the requested steps
    # a truncated last frame (crashed writer) is dropped, not misread
    text = (tmp_path / "bad.dump").read_text()
    (tmp_path / "trunc.dump").write_text(text[: len(text) - 30])
    assert len(read_lammps_dump(tmp_path / "trunc.dump")) == 3


def test_demo_config_presets_and_overrides(tmp_path):
    from ffpt.demo.config import load_demo_config

    cfg = load_demo_config(preset="tiny", sets=["stability.steps=12"])
    assert cfg["stability"]["steps"] == 12 and cfg["ft_data"]["sampler"]["n_molecules"] == 8
    assert cfg["train"]["variants"]["ft"]["max_epochs"] == 3  # preset reaches into variants
    dropped = load_demo_config(preset="tiny", sets=["train.variants.ft=null"])
    assert "ft" not in dropped["train"]["variants"] and "scratch" in dropped["train"]["variants"]
    with pytest.raises(ValueError, match="unknown key"):
        load_demo_config(sets=["stability.stepz=3"])
    with pytest.raises(ValueError, match="unknown preset"):
        load_demo_config(preset="huge")
    os.environ["FFPT_SHARED_DATA"] = str(tmp_path)
    try:
        cfg = load_demo_config(sets=["ft_data.path=${FFPT_SHARED_DATA}/x.xyz"])
    finally:
        del os.environ["FFPT_SHARED_DATA"]
    assert cfg["ft_data"]["path"] == str(tmp_path / "x.xyz")


def _plugin_built() -> bool:
    try:
        from ffpt.lammps import plugin_built
    except ImportError:
        return False
    return plugin_built()


@pytest.mark.slow
@pytest.mark.lammps
@pytest.mark.skipif(not _plugin_built(),
                    reason="LAMMPS plugin not built (run scripts/setup.sh or ffpt build-plugin)")
def test_tiny_demo_end_to_end(tmp_path):
    pytest.importorskip("tblite")
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline

    cfg = load_demo_config(preset="tiny")
    messages: list[str] = []
    pipe = Pipeline(cfg, tmp_path / "run", echo=messages.append, progress=False)
    report = pipe.run_all()
    assert report.exists()
    out = report.parent
    for png in ("learning_curves.png", "survival.png", "scans.png"):
        assert (out / png).stat().st_size > 5000, png
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["table"]
    assert [r["model"].split()[0] for r in rows] == ["teacher", "PT", "PT,", "ft", "scratch"]
    assert rows[0]["flagged scans"] == f"0/{summary['scan']['pt']['n_scans']}"  # TIP3P: no hole
    for r in rows[1:]:
        assert math.isfinite(r["F MAE (meV/A)"]) and r["F MAE (meV/A)"] > 0
    kept = "F MAE on PT test, FF labels (meV/A)"
    assert rows[1][kept] == rows[2][kept] == rows[1]["F MAE (meV/A)"]  # PT on its own test
    for r in rows[3:]:
        assert math.isfinite(r["E MAE (meV/atom)"])
        assert math.isfinite(r[kept]) and r[kept] > 0
        survived, runs = map(int, r["MD 300 K survived"].split()[0].split("/"))
        assert runs == cfg["stability"]["seeds"] and 0 <= survived <= runs
    for v in ("ft", "scratch"):  # budgets are epochs: every variant ran exactly its epochs
        assert summary["training"][v]["epochs"] == cfg["train"]["variants"][v]["max_epochs"]
        st = summary["stability"][v]["300"]
        assert st["n_runs"] == 2 and 0 <= st["n_survived"] <= 2
        logs = sorted((tmp_path / "run" / "stability" / "runs" / v).rglob("log.lammps"))
        assert len(logs) == 2 and "ffpt" in logs[0].read_text()  # LAMMPS ran the model
        assert summary["scan"][v]["n_scans"] > 0
    text = report.read_text()
    assert "## Verdict (as measured)" in text and "**ft** vs scratch" in text
    # a rerun of the same folder skips every stage
    messages.clear()
    Pipeline(cfg, tmp_path / "run", echo=messages.append, progress=False).run_all()
    assert len(messages) == len(pipe.stages)
    assert all("skipped" in m for m in messages)


def _write_user_frames(path) -> list:
    """Six labelled 4-water boxes (E = -10 - k eV, F = 0.1 k eV/A) as extxyz at ``path``."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from ffpt.sampling.water import water_box

    images = []
    for k in range(6):
        a = water_box(4, seed=k)
        a.calc = SinglePointCalculator(a, energy=-10.0 - k, forces=np.full((12, 3), 0.1 * k))
        images.append(a)
    write(path, images)
    return images


def _user_data_stages(tmp_path, path):
    from ffpt.data import FrameSet
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline

    cfg = load_demo_config(preset="tiny", sets=[f"ft_data.path={path}"])
    pipe = Pipeline(cfg, tmp_path / "run", echo=lambda m: None, progress=False)
    st = pipe.stage("ft_structures", [], (), pipe.make_ft_structures)
    lab = pipe.stage("ft_labels", [], ("ft_structures",), pipe.make_ft_labels)
    train, test = FrameSet.load(lab["train"]), FrameSet.load(lab["test"])
    return st, lab, train, test


def test_demo_reads_user_ft_data(tmp_path):
    """ft_data.path replaces sampling + labelling; labels and the start box come from it."""


    images = _write_user_frames(tmp_path / "mine.extxyz")
    st, lab, train, test = _user_data_stages(tmp_path, tmp_path / "mine.extxyz")
    assert lab["method"] == "from the given file" and train.n_frames + test.n_frames == 6
    assert sorted(np.concatenate([train.energy, test.energy])) == [-15, -14, -13, -12, -11, -10]
    from ase.io import read

    start = read(st["md_start"])
    np.testing.assert_allclose(start.positions, images[0].positions, atol=1e-8)


def test_edited_user_file_under_the_same_path_reruns_its_stages(tmp_path):
    """The stage records hash the user files they read: an edited FT file under the same
    name gives new FT labels (and, through the hash, new models), an unedited one is reused."""
    from ase.io import read, write

    from ffpt.data import FrameSet
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline, StopAfter

    path = tmp_path / "mine.extxyz"
    _write_user_frames(path)
    cfg = load_demo_config(preset="tiny", sets=[f"ft_data.path={path}"])

    def labels():
        messages: list[str] = []
        pipe = Pipeline(cfg, tmp_path / "run", echo=messages.append, progress=False,
                        until="ft_labels")
        with pytest.raises(StopAfter):
            pipe.run_all()
        lab = pipe.results["ft_labels"]
        fs = [FrameSet.load(lab[k]) for k in ("train", "test")]
        return sorted(np.concatenate([f.energy for f in fs])), pipe.hashes["ft_labels"], messages

    before, h0, _ = labels()
    again, h1, messages = labels()
    assert again == before and h1 == h0 and any("ft_labels: done earlier" in m for m in messages)
    images = read(path, ":")
    for a in images:  # new labels, same file name
        a.calc.results["energy"] -= 100.0
    write(path, images)
    after, h2, messages = labels()
    assert after == [e - 100.0 for e in before] and h2 != h0
    assert any("input changed" in m for m in messages)
    _, h3, messages = labels()  # and now reused again
    assert h3 == h2 and not any("input changed" in m for m in messages)


@pytest.mark.shared_data
def test_demo_reads_rpbe_water(tmp_path):
    from ffpt.config import shared_data_dir

    path = shared_data_dir() / "water_rpbe_d3" / "water64_rpbe_d3.xyz"
    if not path.exists():
        pytest.skip(f"{path} not present (set FFPT_SHARED_DATA)")
    st, _, train, test = _user_data_stages(tmp_path, path)
    assert train.n_frames + test.n_frames == 50 and st["n_atoms_start"] == 192
    assert train.pbc.all() and np.isfinite(train.energy).all()


@pytest.mark.parametrize("name", ["water", "water_liquid_pt", "rxn09"])
def test_strategy_benchmark_configs_resolve(name):
    """Every variant of the committed strategy benchmarks is a valid training config, and the
    variants share data, epochs and batch size (the comparison is fair by construction)."""
    from ffpt.config import REPO_ROOT
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import _init
    from ffpt.train.config import resolve

    cfg = load_demo_config(REPO_ROOT / "benchmarks" / "ft_strategies" / f"{name}.yaml")
    variants = cfg["train"]["variants"]
    assert "scratch" in variants and _init(variants["scratch"]) is None
    assert len({(v["max_epochs"], v["batch_size"]) for v in variants.values()}) == 1
    for v, spec in variants.items():
        training = {**cfg["train"]["common"], **{k: x for k, x in spec.items() if k != "init"}}
        mode = "finetune" if _init(spec) == "pt" else "scratch"
        out = resolve({"mode": mode, "init_from": "pt.pt" if mode == "finetune" else None,
                       "data": {"train": "x.npz"}, "model": cfg["model"],
                       "training": training})
        assert out["training"]["max_time_min"] is None, v  # budgets in epochs, not minutes
    tiny = load_demo_config(REPO_ROOT / "benchmarks" / "ft_strategies" / f"{name}.yaml",
                            preset="tiny")
    assert set(tiny["train"]["variants"]) == set(variants)


def test_training_restarts_when_its_data_change_and_resumes_on_a_raised_budget(tmp_path):
    """A PT folder is reused only for the same data: new PT frames under the same file name
    start the training over; a raised epoch budget alone continues from last.pt, a lowered one
    starts over (a 2-epoch model must not be reported as the 1-epoch budget's)."""
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline

    def pt_stages(sets):
        cfg = load_demo_config(preset="tiny", sets=["pt_data.teacher=tip3p-flex",
                                                    "pt_data.teacher_options={}", *sets])
        pipe = Pipeline(cfg, tmp_path / "run", echo=lambda m: None, progress=False)
        pipe.stage("pt_data", [cfg["pt_data"]], (), pipe.make_pt_data)
        return pipe.stage("train_pt", [cfg["train"]["pt"]], ("pt_data",),
                          lambda: pipe.train_one("pt"))

    first = pt_stages(["train.pt.max_epochs=1"])
    marker = Path(first["log_csv"]).parent / "marker"
    marker.write_text("x")
    raised = pt_stages(["train.pt.max_epochs=2"])
    assert marker.exists() and raised["epochs"] == 2  # continued in the same folder
    other = pt_stages(["train.pt.max_epochs=2", "pt_data.n_frames=300"])
    assert not marker.exists() and other["epochs"] == 2  # new data: started over
    marker.write_text("x")
    lowered = pt_stages(["train.pt.max_epochs=1", "pt_data.n_frames=300"])
    assert not marker.exists() and lowered["epochs"] == 1  # a lowered budget starts over


def test_variant_starts_from_a_named_extra_pt_model(tmp_path):
    """``pt_extra`` adds a PT model on other teacher data; ``init: pt:<name>`` fine-tunes from
    it (its checkpoint, its PT frames for replay), the main PT stays the paper's."""
    import click

    from ffpt.data import FrameSet
    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline

    _write_user_frames(tmp_path / "mine.extxyz")
    cfg = load_demo_config(preset="tiny", sets=[
        f"ft_data.path={tmp_path / 'mine.extxyz'}", "pt_data.teacher=tip3p-flex",
        "pt_data.teacher_options={}", "pt_data.n_frames=60", "train.pt.max_epochs=1",
        "pt_extra={liquid: {pt_data: {teacher: tip3p-flex-liquid, teacher_options: "
        "{molecules: '1:1,4:1'}, n_frames: 40}}}",
        "train.variants={ft-liquid: {init: 'pt:liquid', ft_strategy: replay, lr: 0.001, "
        "batch_size: 4, max_epochs: 1}, scratch: {init: none, lr: 0.001, batch_size: 4, "
        "max_epochs: 1}}"])
    pipe = Pipeline(cfg, tmp_path / "run", echo=lambda m: None, progress=False)
    assert pipe.stages[4:6] == ["pt_data_liquid", "train_pt_liquid"]
    main = pipe.stage("pt_data", [], (), pipe.make_pt_data)
    alt = pipe.stage("pt_data_liquid", [], (), lambda: pipe.make_pt_data("liquid"))
    assert "tip3p-flex-liquid" in alt["source"] and "liquid" not in main["source"]
    assert FrameSet.load(alt["train"]).n_atoms.max() == 12  # 4-water clusters
    assert FrameSet.load(main["train"]).n_atoms.max() == 3  # monomers only
    pipe.stage("ft_structures", [], (), pipe.make_ft_structures)
    pipe.stage("ft_labels", [], ("ft_structures",), pipe.make_ft_labels)
    pt = pipe.stage("train_pt_liquid", [], ("pt_data_liquid",),
                    lambda: pipe.train_one("pt_liquid"))
    assert pipe.training_config("pt_liquid")["data"]["train"] == alt["train"]
    ft = pipe.training_config("ft-liquid")
    assert ft["mode"] == "finetune" and ft["init_from"] == pt["best_checkpoint"]
    assert ft["training"]["replay"]["data"] == alt["train"]
    assert pipe.training_config("scratch")["init_from"] is None
    bad = dict(cfg, train={**cfg["train"], "variants": {"x": {"init": "pt:nope"}}})
    with pytest.raises(click.ClickException, match="names no PT model"):
        Pipeline(bad, tmp_path / "run2", echo=lambda m: None, progress=False)


def test_until_stops_after_the_named_stage(tmp_path):
    """``--until pt_data`` runs the chain up to that stage only (and again skips it); an
    unknown stage name is one clear error."""
    import click

    from ffpt.demo.config import load_demo_config
    from ffpt.demo.pipeline import Pipeline, StopAfter

    cfg = load_demo_config(preset="tiny", sets=["pt_data.n_frames=20"])
    for _ in range(2):
        with pytest.raises(StopAfter):
            Pipeline(cfg, tmp_path / "run", echo=lambda m: None, progress=False,
                     until="pt_data").run_all()
        assert sorted(p.name for p in (tmp_path / "run" / ".stages").iterdir()) == [
            "pt_data.json"]
    with pytest.raises(click.ClickException, match="no such stage"):
        Pipeline(cfg, tmp_path / "run", echo=lambda m: None, progress=False, until="nope")
