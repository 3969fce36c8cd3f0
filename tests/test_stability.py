"""`ffpt stability`: Kaplan-Meier, failure criteria and composition events, and a small
end-to-end study in LAMMPS (resumable, broken start counted as failed at step 0)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from conftest import make_water_box, small_model

from ffpt.analysis.stability import (
    Criteria,
    StabilityChecker,
    detect_system,
    kaplan_meier,
    km_median,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")


def test_kaplan_meier_matches_hand_computation_with_censoring():
    # failures at 1, 2, 3; censored at 2 (same time as a failure: still at risk), 4, 5
    t, s = kaplan_meier([1, 2, 2, 3, 4, 5], [True, True, False, True, False, False])
    assert t.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(s, [1, 5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 2 / 3])
    assert km_median(t, s) == 3  # S(3) = 4/9 is the first value <= 1/2
    t, s = kaplan_meier([0, 1, 1], [True, False, False])  # a failure at t = 0
    assert t.tolist() == [0] and s.tolist() == pytest.approx([2 / 3])
    assert km_median(*kaplan_meier([3, 4], [False, False])) is None  # not reached


def _frame(atoms: Atoms):
    return atoms.positions, atoms.cell.array, atoms.pbc


def test_water_criteria_detect_collapse_dissociation_and_crash():
    box = make_water_box(2, seed=1)
    check = StabilityChecker(box, Criteria("water"))
    assert detect_system(box) == "water"
    assert check.failure(*_frame(box)) is None
    two = Atoms("OHHOHH", positions=[[1.0, 1, 1], [1.96, 1, 1], [0.76, 1.93, 1],
                                     [5.0, 5, 5], [5.96, 5, 5], [4.76, 5.93, 5]],
                cell=[8, 8, 8], pbc=True)
    assert StabilityChecker(two, Criteria("water")).failure(*_frame(two)) is None
    two.positions[3:] += [-2.6, -2.8, -4.0]  # the O atoms 1.84 A apart, nothing closer
    why = StabilityChecker(two, Criteria("water")).failure(*_frame(two))
    assert "O atoms 0 and 3 at 1.84 A (< 2.0 A)" in why
    dissociated = two.copy()
    dissociated.positions[:3] += [0, 0, 3.0]  # undo the collapse, then pull one H off
    dissociated.positions[1] = dissociated.positions[0] + [0, 0, 1.55]
    check_two = StabilityChecker(two, Criteria("water"))
    assert check_two.failure(*_frame(dissociated)) is None  # 1.55 A: still bound
    dissociated.positions[1] = dissociated.positions[0] + [0, 0, 1.7]
    assert check_two.failure(*_frame(dissociated)).startswith(
        "H atom 1 has no O within 1.6 A (nearest 1.70 A)")
    crashed = box.copy()
    crashed.positions[4] = crashed.positions[0] + [0.5, 0, 0]
    assert "< 0.7 A" in check.failure(*_frame(crashed))
    nan = box.copy()
    nan.positions[2, 0] = np.nan
    assert check.failure(*_frame(nan)) == "non-finite positions"


def test_molecule_criteria_bond_stretch_and_new_contact():
    mol = molecule("CH3CH2OH")
    mol.center(vacuum=5.0)
    assert detect_system(mol) == "molecule"
    check = StabilityChecker(mol, Criteria("molecule"))
    assert len(check.bonds[0]) == 8  # C-C, C-O, O-H, 5 C-H
    rng = np.random.default_rng(0)
    healthy = mol.copy()
    healthy.positions += rng.normal(0, 0.05, healthy.positions.shape)
    assert check.failure(*_frame(healthy)) is None
    o = int(np.flatnonzero(mol.numbers == 8)[0])
    h = next(j for i, j in zip(*check.bonds[:2], strict=True) if i == o and mol.numbers[j] == 1)
    unit = mol.positions[h] - mol.positions[o]
    unit /= np.linalg.norm(unit)
    for stretch, broken in ((0.4, False), (0.6, True)):
        frame = mol.copy()
        frame.positions[h] += stretch * unit
        why = check.failure(*_frame(frame))
        assert (why is not None) == broken, why
    assert "O-H" in why and "change > 0.5 A" in why
    # the hydroxyl H lands 0.95 A from the far methyl carbon: a new bond (bond lengths
    # ignored here to isolate the contact criterion)
    loose = StabilityChecker(mol, Criteria("molecule", bond_tolerance=10.0))
    c = [int(i) for i in np.flatnonzero(mol.numbers == 6)]
    far = max(c, key=lambda k: np.linalg.norm(mol.positions[k] - mol.positions[o]))
    frame = mol.copy()
    near = min(c, key=lambda k: np.linalg.norm(mol.positions[k] - mol.positions[o]))
    out = mol.positions[far] - mol.positions[near]  # the C-C axis, away from the other C
    frame.positions[h] = mol.positions[far] + 0.95 * out / np.linalg.norm(out)
    why = loose.failure(*_frame(frame))
    assert why is not None and why.startswith(f"new close contact {min(h, far)}-{max(h, far)}")


def test_composition_change_is_an_event_for_reactive_systems():
    start = Atoms("OHHOHH", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0],
                                      [4, 0, 0], [4.96, 0, 0], [3.76, 0.93, 0]])
    start.center(vacuum=5.0)
    start += Atoms("HH", positions=start.positions[0] + [[0, -4, 0], [0.74, -4, 0]])
    start.positions[-1, 0] += 0.1  # a vibrating H2 (0.84 A) is still H2
    assert detect_system(start) == "reactive"
    check = StabilityChecker(start, Criteria("reactive"))
    assert check.failure(*_frame(start)) is None
    assert check.composition_change(*_frame(start)) is None
    moved = start.copy()
    moved.positions[1] = moved.positions[3] - [0.97, 0, 0]  # proton transfer: H3O+ + OH-
    assert check.failure(*_frame(moved)) is None  # not a failure for reactive systems
    assert check.composition_change(*_frame(moved)) == "H2 + 2 H2O -> H2 + H3O + HO"


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    from ffpt.deploy import deploy_model
    from ffpt.lammps import plugin_built

    if not plugin_built():
        pytest.skip("LAMMPS plugin not built (ffpt build-plugin)")
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    deploy_model(small_model(), path)
    return path


@pytest.mark.lammps
def test_cli_end_to_end_is_resumable(tmp_path, tiny_artifact):
    from click.testing import CliRunner

    from ffpt.cli import main

    start = tmp_path / "water8.xyz"
    make_water_box(2, seed=0).write(start)
    out = tmp_path / "st"
    args = ["stability", f"tiny={tiny_artifact}", "--start", str(start), "--temps", "300",
            "--seeds", "2", "--steps", "40", "--dump-every", "10", "--jobs", "2", "-o", str(out),
            "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    cell = summary["results"]["tiny"]["300"]
    assert summary["criteria"]["system"] == "water" and cell["runs"] == 2
    assert cell["fraction_surviving"] == 1 - cell["failed"] / 2
    records = [json.loads((out / f"runs/tiny/T300/seed{s}/record.json").read_text())
               for s in (1, 2)]
    for r in records:
        assert r["steps_completed"] == 40 or r["failed"]
        assert r["time_ps"] == pytest.approx(
            (r["failure_step"] if r["failed"] else 40) * 0.5e-3)
        if not r["failed"]:
            assert 150 < r["mean_temperature_K"] < 500  # Langevin at 300 K, 24 atoms
    assert (out / "survival.png").stat().st_size > 5000
    assert "| tiny | 300 | 2 |" in (out / "summary.md").read_text()
    res = CliRunner().invoke(main, args)  # rerun: nothing to do, same records
    assert res.exit_code == 0 and "2 run(s) done, 0 to run" in res.output
    assert json.loads((out / "runs/tiny/T300/seed1/record.json").read_text()) == records[0]
    res = CliRunner().invoke(main, [*args[:-3], "--friction", "5", "-o", str(out)])
    assert res.exit_code != 0 and "--overwrite" in res.output  # changed settings refuse
    res = CliRunner().invoke(main, [*args[:-3], "--friction", "5", "--overwrite", "-o", str(out),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output  # replaced, and said so with the setting that differs
    assert "replacing 2 run(s) made with other settings (friction_ps differ)" in res.output


@pytest.mark.lammps
def test_broken_start_fails_at_step_zero(tmp_path, tiny_artifact):
    from ffpt.analysis.stability import run_stability

    box = make_water_box(2, seed=0)
    box.positions[4] = box.positions[0] + [0.3, 0, 0]  # an H 0.3 A from another water's O
    summary = run_stability({"tiny": tiny_artifact}, box, [300], 1, 20, dump_every=10,
                            workdir=tmp_path / "st", jobs=1, progress=False, echo=lambda m: None)
    cell = summary["results"]["tiny"]["300"]
    assert cell["failed"] == 1 and cell["median_time_to_failure_ps"] == 0.0
    assert cell["runs_detail"][0]["time_ps"] == 0.0


@pytest.mark.lammps
def test_failed_run_stops_early_with_the_same_record(tmp_path, tiny_artifact, monkeypatch):
    """A run is ended soon after its first failing frame; the record matches a full run's."""
    import ffpt.analysis.stability as st

    monkeypatch.setattr(st, "POLL_S", 0.2)
    box = make_water_box(2, seed=0)
    box.positions[4] = box.positions[0] + [0.3, 0, 0]  # fails at the first frame
    recs = {}
    for stop, steps in ((False, 400), (True, 400), (True, 1_000_000)):
        out = tmp_path / f"st{stop}{steps}"
        st.run_stability({"tiny": tiny_artifact}, box, [300], 1, steps, dump_every=10,
                         workdir=out, jobs=1, progress=False, echo=lambda m: None,
                         stop_on_failure=stop)
        recs[stop, steps] = json.loads((out / "runs/tiny/T300/seed1/record.json").read_text())
    full, short, long = recs[False, 400], recs[True, 400], recs[True, 1_000_000]
    keys = ("failed", "failure_step", "reason", "time_ps")
    assert full["failed"] and not full["stopped_at_failure"]
    assert {k: short[k] for k in keys} == {k: full[k] for k in keys}
    assert {k: long[k] for k in keys} == {k: full[k] for k in keys}
    assert long["stopped_at_failure"] and long["steps_completed"] < 1_000_000
    assert long["lammps_error"] is None
    run_dir = str((tmp_path / "stTrue1000000/runs/tiny/T300/seed1").resolve())
    left = []
    for proc in __import__("pathlib").Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "cwd").startswith(run_dir):  # in a chunk's folder
                left.append(proc.name)
        except OSError:
            continue
    assert not left, f"LAMMPS processes left running after the stop: {left}"


# ----------------------------------------------------------------------------- chunked runs

# loose criteria: the tiny model's 24-atom box survives the reference trajectory
LOOSE = {"min_distance": 0.3, "min_oo": 1.0, "max_oh": 3.0}


def _chunked(tiny_artifact, out, steps=60, chunk=20, echo=lambda m: None, **kw) -> dict:
    from ffpt.analysis.stability import run_stability

    run_stability({"tiny": tiny_artifact}, make_water_box(2, seed=0), [300], 1, steps,
                  dump_every=10, chunk_steps=chunk, workdir=out, jobs=1, progress=False,
                  echo=echo, **{"criteria": LOOSE, **kw})
    return json.loads((out / "runs/tiny/T300/seed1/record.json").read_text())


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_artifact):
    """60 steps in 3 chunks of 20 (frames every 10 steps), run without a break."""
    out = tmp_path_factory.mktemp("ref") / "st"
    return out, _chunked(tiny_artifact, out)


@pytest.mark.lammps
def test_chunks_continue_the_state_and_a_resumed_run_equals_an_uninterrupted_one(
        tmp_path, tiny_artifact, reference_run):
    import shutil

    from ffpt.lammps.io import read_dump_frames, read_log

    ref, rec = reference_run
    assert not rec["failed"] and rec["chunks"] == 3 and rec["steps_completed"] == 60
    d = ref / "runs/tiny/T300/seed1"
    assert [f.step for f in read_dump_frames(d / "dump.lammpstrj")] == list(range(0, 70, 10))
    # chunk k starts from chunk k-1's positions and velocities: the same energies at the seam
    for k in (1, 2):
        end = read_log(d / f"chunk{k - 1:04d}/log.lammps").thermo
        begin = read_log(d / f"chunk{k:04d}/log.lammps").thermo
        assert begin["Step"][0] == end["Step"][-1] == 20 * k
        for col in ("Temp", "PotEng", "KinEng"):
            assert begin[col][0] == pytest.approx(end[col][-1], rel=1e-6, abs=1e-6)
    temps = np.concatenate([read_log(d / f"chunk{k:04d}/log.lammps").thermo["Temp"][k > 0:]
                            for k in range(3)])
    assert len(temps) == 7 and rec["mean_temperature_K"] == pytest.approx(temps.mean())
    # interrupted in its last chunk: no records, a half-written frame at the dump's end
    out = tmp_path / "st"
    shutil.copytree(ref, out)
    run = out / "runs/tiny/T300/seed1"
    (run / "record.json").unlink()
    (run / "chunk0002/record.json").unlink()
    (run / "chunk0002/final.data").unlink()
    with open(run / "dump.lammpstrj", "a") as f:
        f.write("ITEM: TIMESTEP\n50\nITEM: NUMBER OF ATOMS\n")
    msgs = []
    again = _chunked(tiny_artifact, out, echo=msgs.append)
    assert "0 run(s) done, 1 to run (1 resumed)" in msgs[0]
    assert (run / "dump.lammpstrj").read_bytes() == (d / "dump.lammpstrj").read_bytes()
    assert (run / "chunk0002/final.data").read_text() == (d / "chunk0002/final.data").read_text()
    assert (run / "chunk0000/log.lammps").stat().st_mtime == pytest.approx(
        (d / "chunk0000/log.lammps").stat().st_mtime)  # finished chunks are not run again
    assert {k: v for k, v in again.items() if k != "wall_s"} == \
        {k: v for k, v in rec.items() if k != "wall_s"}
    # a finished run from before chunking (no chunk_steps in its settings) is reused
    settings = json.loads((run / "settings.json").read_text())
    del settings["chunk_steps"]
    (run / "settings.json").write_text(json.dumps(settings))
    msgs.clear()
    _chunked(tiny_artifact, out, echo=msgs.append, chunk=30)
    assert "1 run(s) done, 0 to run" in msgs[0]


@pytest.mark.lammps
def test_a_longer_run_extends_the_finished_one_exactly(tmp_path, tiny_artifact, reference_run):
    """Raising ``steps`` continues a finished run with new chunks (the old ones are not run
    again); the result equals a run made at the new length from the start."""
    import shutil

    ref, rec = reference_run
    out = tmp_path / "st"
    shutil.copytree(ref, out)
    run = out / "runs/tiny/T300/seed1"
    msgs: list[str] = []
    longer = _chunked(tiny_artifact, out, steps=80, echo=msgs.append)
    assert "0 run(s) done, 1 to run (1 resumed)" in msgs[0]
    assert (run / "chunk0000/log.lammps").stat().st_mtime == pytest.approx(
        (ref / "runs/tiny/T300/seed1/chunk0000/log.lammps").stat().st_mtime)
    fresh = _chunked(tiny_artifact, tmp_path / "fresh", steps=80)
    d = tmp_path / "fresh/runs/tiny/T300/seed1"
    assert (run / "dump.lammpstrj").read_bytes() == (d / "dump.lammpstrj").read_bytes()
    assert (run / "chunk0003/final.data").read_text() == (d / "chunk0003/final.data").read_text()
    skip = ("wall_s", "mean_temperature_K")  # T: same lines, summed in another order
    assert {k: v for k, v in longer.items() if k not in skip} == \
        {k: v for k, v in fresh.items() if k not in skip}
    assert longer["steps_completed"] == 80 and rec["steps_completed"] == 60
    # a failed run stays failed at its step when the length is raised (a LAMMPS error leaves
    # no final state to continue from: it is not needed)
    record = json.loads((run / "record.json").read_text())
    (run / "record.json").write_text(json.dumps({**record, "failed": True, "failure_step": 30}))
    (run / "chunk0003/final.data").unlink()
    msgs.clear()
    again = _chunked(tiny_artifact, out, steps=100, echo=msgs.append)
    assert "1 run(s) done, 0 to run" in msgs[0] and not (run / "chunk0004").exists()
    assert again["failure_step"] == 30 and again["steps_requested"] == 100


@pytest.mark.lammps
def test_a_failure_in_a_later_chunk_ends_the_run_there(tmp_path, tiny_artifact, reference_run,
                                                        monkeypatch):
    """A frame of chunk 2 (from the reference trajectory) marked as broken: the run stops at
    it, with or without stopping LAMMPS early, and runs no later chunk; a temperature above
    the fix halt threshold in chunk 1 (the reference's thermo) ends the run there."""
    import ffpt.analysis.stability as st
    from ffpt.lammps.chunks import merge_by_step
    from ffpt.lammps.io import read_dump_frames, read_log

    ref, _ = reference_run
    d = ref / "runs/tiny/T300/seed1"
    marked = next(f for f in read_dump_frames(d / "dump.lammpstrj") if f.step == 50).positions
    plain = st.StabilityChecker.failure

    def failure(self, pos, cell, pbc):
        return "marked frame" if np.array_equal(pos, marked) else plain(self, pos, cell, pbc)

    monkeypatch.setattr(st.StabilityChecker, "failure", failure)
    monkeypatch.setattr(st, "POLL_S", 0.2)
    for stop in (True, False):
        out = tmp_path / f"st{stop}"
        rec = _chunked(tiny_artifact, out, steps=80, stop_on_failure=stop)
        assert (rec["failed"], rec["failure_step"], rec["reason"]) == (True, 50, "marked frame")
        assert rec["time_ps"] == pytest.approx(50 * 0.5e-3)
        assert rec["chunks"] == (3 if stop else 4)  # past the failure: the full length
        assert (out / "runs/tiny/T300/seed1/chunk0003").exists() != stop
    monkeypatch.setattr(st.StabilityChecker, "failure", plain)
    # fix halt: a threshold between the hottest line so far and a later, hotter one
    logs = [read_log(d / f"chunk{k:04d}/log.lammps").thermo for k in range(3)]
    steps = merge_by_step([(th["Step"], th["Step"]) for th in logs])
    temps = np.array(merge_by_step([(th["Step"], th["Temp"]) for th in logs]))
    j = next((i for i in range(3, len(temps)) if temps[i] > temps[:i].max()), None)
    if j is None:
        pytest.skip("the reference never gets hotter than its first two chunks")
    t_factor = (temps[j] + temps[:j].max()) / 2 / 300.0
    rec = _chunked(tiny_artifact, tmp_path / "halt", criteria={**LOOSE, "t_factor": t_factor})
    k = int(steps[j]) // 20 - (int(steps[j]) % 20 == 0)
    assert rec["failed"] and rec["failure_step"] == steps[j] and "temperature" in rec["reason"]
    assert rec["chunks"] == k + 1
    halt = read_log(tmp_path / f"halt/runs/tiny/T300/seed1/chunk{k:04d}/log.lammps")
    assert halt.halt_step == steps[j]  # fix halt counts the steps of the whole run
    with pytest.raises(ValueError, match="multiple of dump_every"):
        _chunked(tiny_artifact, tmp_path / "bad", chunk=15)
