"""ffpt.lammps io and runner: data file round trip through LAMMPS geometry, triclinic dumps
with image flags, logs with several runs / fix halt / errors, and the runner's error message."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from ffpt.lammps.io import DumpTail, read_dump_frames, read_log, write_data

LOG = """LAMMPS (22 Jul 2025 - Update 4)
Step Temp PotEng
         0   300   -10.5
        10   310   -10.4
Loop time of 0.5 on 1 procs for 10 steps with 3 atoms
Performance: 8.64 ns/day, 2.778 hours/ns, 20.000 timesteps/s, 1.0 katom-step/s
Step Time Temp PotEng
        10   0.005   310   -10.4
WARNING: something harmless (src/x.cpp:1)
        20   0.010   3500   -2.0
Fix halt condition for fix-id halt met on step 20 with value 3500 (src/fix_halt.cpp:1)
Loop time of 0.25 on 2 procs for 10 steps with 3 atoms
ERROR: Lost atoms: original 3 current 2 (src/thermo.cpp:1)
"""


def test_read_log_blocks_halt_errors_and_timing(tmp_path):
    (tmp_path / "log.lammps").write_text(LOG)
    log = read_log(tmp_path / "log.lammps")
    assert list(log.thermo) == ["Step", "Time", "Temp", "PotEng"]  # the last block's columns
    assert log.thermo["Step"].tolist() == [10, 20] and log.last_step == 20
    assert (log.halt_step, log.halt_value) == (20, 3500.0)
    assert (log.loop_time_s, log.procs, log.steps) == (0.25, 2, 10)
    assert log.ns_per_day == 8.64 and log.steps_per_s == 20.0
    assert log.errors == ["ERROR: Lost atoms: original 3 current 2 (src/thermo.cpp:1)"]
    assert len(log.warnings) == 1
    assert read_log(LOG, text=True).thermo["Temp"].tolist() == [310, 3500]


def test_triclinic_dump_with_image_flags_unwraps(tmp_path):
    cell = np.array([[5.0, 0, 0], [1.0, 4.0, 0], [0.5, -0.7, 6.0]])
    unwrapped = np.array([[1.0, 1.0, 1.0], [7.3, 2.0, 3.0], [-2.0, 9.5, -4.0]])
    frac = unwrapped @ np.linalg.inv(cell)
    image = np.floor(frac).astype(int)
    wrapped = unwrapped - image @ cell
    xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
    lo = np.array([0.0, 0.0, 0.0])
    bounds = [(lo[0] + min(0, xy, xz, xy + xz), lo[0] + 5.0 + max(0, xy, xz, xy + xz), xy),
              (lo[1] + min(0, yz), lo[1] + 4.0 + max(0, yz), xz), (0.0, 6.0, yz)]
    rows = "".join(f"{i + 1} {1 + i % 2} {p[0]} {p[1]} {p[2]} {m[0]} {m[1]} {m[2]}\n"
                   for i, (p, m) in reversed(list(enumerate(zip(wrapped, image, strict=True)))))
    text = ("ITEM: TIMESTEP\n40\nITEM: NUMBER OF ATOMS\n3\nITEM: BOX BOUNDS xy xz yz pp pp ff\n"
            + "".join(f"{a} {b} {c}\n" for a, b, c in bounds)
            + "ITEM: ATOMS id type x y z ix iy iz\n" + rows)
    (tmp_path / "d.dump").write_text(text + text.replace("TIMESTEP\n40", "TIMESTEP\n50")[:-20])
    frames = read_dump_frames(tmp_path / "d.dump")
    assert len(frames) == 1  # the truncated second frame is dropped
    fr = frames[0]
    assert fr.step == 40 and fr.types.tolist() == [1, 2, 1]  # sorted by id
    np.testing.assert_allclose(fr.cell, cell, atol=1e-12)
    assert fr.pbc.tolist() == [True, True, False]
    np.testing.assert_allclose(fr.unwrapped(), unwrapped, atol=1e-12)

    # a growing dump read while it is written: each frame once, never half a frame
    tail, path = DumpTail(tmp_path / "live.dump"), tmp_path / "live.dump"
    assert tail.new_frames() == []  # not there yet
    frame = lambda step: text.replace("TIMESTEP\n40", f"TIMESTEP\n{step}")  # noqa: E731
    seen = []
    for chunk in (frame(10)[:37], frame(10)[37:], frame(20)[:5], frame(20)[5:-9],
                  frame(20)[-9:] + frame(30)):
        with open(path, "a") as f:
            f.write(chunk)
        seen += [fr.step for fr in tail.new_frames()]
    assert seen == [10, 20]  # 30 has no successor header yet
    assert [fr.step for fr in read_dump_frames(path)] == [10, 20, 30]
    np.testing.assert_allclose(read_dump_frames(path)[1].positions, fr.positions)


def test_write_data_rotates_a_general_cell(tmp_path):
    atoms = Atoms("OH", positions=[[0.1, 0.2, 0.3], [1.0, 0.5, 0.2]],
                  cell=[[4.0, 1.0, 0.5], [0.3, 5.0, 0.2], [0.1, 0.4, 6.0]], pbc=True)
    with pytest.raises(ValueError, match="LAMMPS form"):
        write_data(atoms, tmp_path / "x.data", ["H", "O"])
    write_data(atoms, tmp_path / "x.data", ["H", "O"], rotate=True)
    from ase.io import read

    back = read(tmp_path / "x.data", format="lammps-data", atom_style="atomic")
    assert back.cell.cellpar() == pytest.approx(atoms.cell.cellpar())
    assert back.get_distance(0, 1, mic=True) == pytest.approx(atoms.get_distance(0, 1, mic=True))
    with pytest.raises(ValueError, match="not LAMMPS types"):
        write_data(atoms, tmp_path / "y.data", ["H"], rotate=True)


@pytest.mark.lammps
def test_runner_error_names_the_error_line_and_log_tail(tmp_path):
    from ffpt.lammps.runner import LammpsError, run_lammps

    (tmp_path / "in.bad").write_text("units metal\nregion box block 0 1 0 1 0 1\nfoo bar\n")
    with pytest.raises(LammpsError, match=r"failed \(exit code 1\).*ERROR: Unknown command: foo"):
        run_lammps("in.bad", tmp_path)
    run = run_lammps("in.bad", tmp_path, check=False)
    assert run.returncode != 0 and "foo bar" in run.tail(3)
