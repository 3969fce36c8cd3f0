"""``ffpt scan`` hole finder and ``load_calculator``: teachers are hole-free, an injected
short-range well is found at the right pair and distance, bends follow the TIP3P formula."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from click.testing import CliRunner

from ffpt.analysis.cli import scan as scan_cmd
from ffpt.analysis.scan import build_scans, find_holes, flag_points, water_reference
from ffpt.calculator import load_calculator

WELL_R, WELL_DEPTH = 0.8, 3.0  # Angstrom, eV: an artificial H-H attraction


class WellCalculator(Calculator):
    """Morse O-H bonds plus a narrow Gaussian H-H well at WELL_R (minimum: water_reference)."""

    implemented_properties = ["energy"]  # noqa: RUF012

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d, z, e = self.atoms.get_all_distances(), self.atoms.numbers, 0.0
        for i in range(len(z)):
            for j in range(i + 1, len(z)):
                r = d[i, j]
                if {z[i], z[j]} == {1, 8}:
                    e += 5.0 * (1 - np.exp(-2.0 * (r - 0.9572))) ** 2
                elif z[i] == z[j] == 1:
                    e -= WELL_DEPTH * np.exp(-((r - WELL_R) ** 2) / (2 * 0.05**2))
        self.results = {"energy": e}


def test_flag_points_running_maximum_rule():
    # reference at index 2; rightwards the energy climbs to 3, drops to 1.5 (a dip), climbs on
    rel = np.array([5.0, 1.0, 0.0, 1.0, 3.0, 1.5, 4.0, -0.2])
    depth, flags = flag_points(rel, 2, threshold=0.1, tolerance=0.05)
    np.testing.assert_allclose(depth, [0, 0, 0, 0, 0, 1.5, 0, 4.2])
    assert list(flags) == ["", "", "", "", "", "dip", "", "below_ref+dip"]


def test_teacher_water_has_no_hole(tmp_path):
    r = CliRunner().invoke(scan_cmd, ["tip3p-flex", "--species", "H2O", "-o", str(tmp_path),
                                      "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "tip3p-flex: 4 scans, 0 flagged" in r.output
    md = (tmp_path / "holes.md").read_text()
    assert "| tip3p-flex | 0 | 4 | 0 |" in md
    rows = (tmp_path / "holes.csv").read_text().splitlines()
    assert rows[0].startswith("model,kind,atoms,coordinate")
    assert (tmp_path / "scans.png").stat().st_size > 1000
    assert not (tmp_path / "flagged_scans.png").exists()
    # results are not silently overwritten
    r = CliRunner().invoke(scan_cmd, ["tip3p-flex", "--species", "H2O", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "--overwrite" in r.output


def test_water_stretch_and_bend_follow_tip3p_formula():
    from ase import units

    from ffpt.teachers.tip3p_flex import R0, THETA0

    kcal = units.kcal / units.mol
    ref = water_reference()
    scans = build_scans(ref, kinds=("stretch", "bend"))
    assert [s.label for s in scans] == ["O0-H1", "O0-H2", "H1-O0-H2"]
    rep = find_holes({"tip3p": load_calculator("tip3p-flex")}, ref, scans)
    r, theta = scans[0].values, scans[2].values
    assert r[0] == pytest.approx(0.5 * R0) and r[-1] == pytest.approx(3 * R0)
    assert theta[0] == 20 and theta[-1] == 180 and theta[scans[2].ref] == pytest.approx(104.52)
    np.testing.assert_allclose(rep.rel["tip3p"][0], 450 * kcal * (r - R0) ** 2, atol=1e-9)
    np.testing.assert_allclose(
        rep.rel["tip3p"][2], 55 * kcal * (np.deg2rad(theta) - THETA0) ** 2, atol=1e-9
    )
    # the bend keeps both O-H bonds at R0
    pos = scans[2].positions
    np.testing.assert_allclose(np.linalg.norm(pos[:, 1:] - pos[:, :1], axis=2), R0, atol=1e-12)
    assert not rep.has_holes


def test_injected_well_is_found_at_the_right_pair_and_distance(tmp_path, monkeypatch):
    import ase.io

    import ffpt.calculator

    orig = ffpt.calculator.load_calculator

    def fake(spec, **kw):
        return WellCalculator() if spec == "well" else orig(spec, **kw)

    monkeypatch.setattr(ffpt.calculator, "load_calculator", fake)
    ase.io.write(tmp_path / "water.xyz", water_reference())
    out = tmp_path / "out"
    r = CliRunner().invoke(scan_cmd, ["well", "teacher=tip3p-flex", "--structure",
                                      str(tmp_path / "water.xyz"), "-o", str(out)])  # fmt: skip
    assert r.exit_code == 3, r.output
    assert "well: 4 scans, 2 flagged" in r.output and "teacher: 4 scans, 0 flagged" in r.output
    import csv

    rows = [x for x in csv.DictReader((out / "holes.csv").open()) if x["model"] == "well"]
    bad = {(x["kind"], x["atoms"]) for x in rows if x["flag"]}
    assert bad == {("approach", "H1-H2"), ("bend", "H1-O0-H2")}  # O-H stretches are clean

    def flagged(kind):
        pts = [(float(x["coordinate"]), float(x["below_running_max_eV"]))
               for x in rows if x["kind"] == kind and x["flag"]]  # fmt: skip
        return np.array(pts)

    d = flagged("approach")
    assert np.all(np.abs(d[:, 0] - WELL_R) < 0.15)  # only points inside the well
    assert abs(d[np.argmax(d[:, 1]), 0] - WELL_R) < 0.03  # deepest at the well (grid 0.025 A)
    theta = flagged("bend")
    theta_well = np.degrees(2 * np.arcsin(WELL_R / (2 * 0.9572)))  # H-H = WELL_R
    assert abs(theta[np.argmax(theta[:, 1]), 0] - theta_well) < 2.0  # grid 2 deg
    assert (out / "flagged_scans.png").stat().st_size > 1000
    assert "H1-H2" in (out / "holes.md").read_text()


def test_checkpoint_and_artifact_load_by_content(tmp_path):
    import torch

    from ffpt.calculator import FFPTCalculator
    from ffpt.deploy import DeployedCalculator, deploy_checkpoint
    from ffpt.model.checkpoint import build_model, save_checkpoint

    torch.manual_seed(0)
    cfg = {"features": 8, "num_radial": 4, "num_interactions": 1, "cutoff": 3.0}
    ckpt = save_checkpoint(tmp_path / "weights.bin", build_model(cfg, ["H", "O"]), cfg)
    art, _ = deploy_checkpoint(ckpt, tmp_path / "deployed.pt.model")
    c1, c2 = load_calculator(ckpt), load_calculator(art)
    assert isinstance(c1, FFPTCalculator) and isinstance(c2, DeployedCalculator)
    atoms = water_reference()
    atoms.positions[1] += [0.05, -0.02, 0.03]
    e = []
    for c in (c1, c2):
        a = atoms.copy()
        a.calc = c
        e.append((a.get_potential_energy(), a.get_forces()))
    assert e[0][0] == pytest.approx(e[1][0], abs=1e-8)
    np.testing.assert_allclose(e[0][1], e[1][1], atol=1e-8)
    # batched scan energies (checkpoint) = point-by-point ASE energies (artifact)
    ref = water_reference()
    rep = find_holes({"ckpt": c1, "art": c2}, ref, build_scans(ref, kinds=("stretch", "bend")))
    for s in range(3):
        np.testing.assert_allclose(rep.rel["ckpt"][s], rep.rel["art"][s], atol=1e-8)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="neither an ffpt training checkpoint nor a deployed"):
        load_calculator(tmp_path / "junk.pt")


def test_unknown_spec_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="'nosuch' is neither an existing model file nor a "):
        load_calculator("nosuch")
    assert load_calculator("qforce-h2:HO2").teacher.formula == "HO2"
    r = CliRunner().invoke(scan_cmd, ["nosuch", "--species", "H2O", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "neither an existing model file nor a teacher" in r.output
    r = CliRunner().invoke(scan_cmd, ["tip3p-flex", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "--structure FILE or --species NAME" in r.output


def test_failure_scan_section_reads_back_the_tip3p_bend_and_the_injected_well(tmp_path):
    """holes.csv -> the failure-mode table: TIP3P's harmonic bend at 60 deg, and a model with
    an H-H well that goes below the reference where TIP3P rises."""
    from ase import units

    from ffpt.analysis.scan_report import write_report
    from ffpt.demo.paper_report import failure_scan_section
    from ffpt.teachers.tip3p_flex import THETA0

    ref = water_reference()
    rep = find_holes({"tip3p": load_calculator("tip3p-flex"), "well": WellCalculator()}, ref,
                     build_scans(ref, kinds=("bend", "approach")))
    write_report(rep, tmp_path)
    text = "\n".join(failure_scan_section(str(tmp_path / "holes.csv"),
                                          {"scans": {"H1-O0-H2": 60.0}}, tmp_path))
    rows = {ln.split(" | ")[0].strip("| "): ln.split(" | ")[1:] for ln in text.splitlines()
            if ln.startswith("| tip3p") or ln.startswith("| well")}
    bend60 = 55 * units.kcal / units.mol * (np.deg2rad(60.0) - THETA0) ** 2
    assert float(rows["tip3p"][0]) == pytest.approx(bend60, abs=0.01)  # on the 1-deg grid
    assert float(rows["tip3p"][1].strip(" |")) == pytest.approx(0.0, abs=1e-6)
    assert float(rows["well"][1].strip(" |")) < -1.0  # the H-H well pulls the bend below ref
    assert (tmp_path / "failure_scans.png").stat().st_size > 5000
    with pytest.raises(ValueError, match="no scan"):
        failure_scan_section(str(tmp_path / "holes.csv"), {"scans": {"C9-O1": 1.0}}, tmp_path)
