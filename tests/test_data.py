"""Data stage: neighbour graphs against brute force, batching, readers, units, bad data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import morse_frames

from ffpt.data import FrameSet, GraphSet, neighbor_graph, read_frames, split_indices
from ffpt.data.readers import read_h2comb


def brute_force_edges(pos, cell, cutoff, n_img=4):
    out = set()
    for i, j in itertools.product(range(len(pos)), repeat=2):
        for s in itertools.product(range(-n_img, n_img + 1), repeat=3):
            if i == j and s == (0, 0, 0):
                continue
            d = pos[j] - pos[i] + np.array(s) @ cell
            if np.linalg.norm(d) < cutoff:
                out.add((i, j, *np.round(np.array(s) @ cell, 6)))
    return out


def test_periodic_graph_small_triclinic_cell_matches_brute_force():
    rng = np.random.default_rng(0)
    cell = np.array([[3.0, 0.0, 0.0], [0.8, 2.7, 0.0], [0.4, -0.5, 3.1]])
    pos = rng.uniform(0, 1, (4, 3)) @ cell
    ei, sh = neighbor_graph(pos, cell, True, 4.5)  # cutoff > cell: many images
    got = {(int(i), int(j), *np.round(s, 6)) for i, j, s in zip(ei[0], ei[1], sh, strict=True)}
    assert got == brute_force_edges(pos, cell, 4.5)
    assert len(got) > 4 * 4 * 8  # several images per pair


def test_mixed_pbc_and_molecule():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 4, (6, 3))
    ei, sh = neighbor_graph(pos, None, False, 3.0)
    assert np.all(sh == 0)
    d = np.linalg.norm(pos[ei[1]] - pos[ei[0]], axis=1)
    n_ref = sum(
        1 for i in range(6) for j in range(6) if i != j and np.linalg.norm(pos[i] - pos[j]) < 3
    )
    assert len(d) == n_ref and d.max() < 3.0
    # slab: periodic in x, y only -> no z shifts
    ei, sh = neighbor_graph(pos, np.diag([3.0, 3.0, 20.0]), [True, True, False], 3.0)
    assert np.all(sh[:, 2] == 0) and np.any(sh[:, 0] != 0)


def test_batching_offsets_equal_single_frames():
    fs = morse_frames(5, seed=2)
    gs = GraphSet(fs, ["H", "O"], 3.0)
    b = gs.batch([3, 1])
    single = [gs.batch([k]) for k in (3, 1)]
    n0 = len(single[0].pos)
    np.testing.assert_array_equal(b.edge_index[:, : single[0].edge_index.shape[1]],
                                  single[0].edge_index)
    np.testing.assert_array_equal(b.edge_index[:, single[0].edge_index.shape[1]:],
                                  single[1].edge_index + n0)
    np.testing.assert_array_equal(b.pos.numpy(), np.concatenate([s.pos for s in single]))
    assert b.batch.tolist() == [0] * n0 + [1] * len(single[1].pos)


def test_frameset_round_trip(tmp_path):
    fs = morse_frames(4, seed=3)
    fs.save(tmp_path / "x.npz")
    back = FrameSet.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(back.positions, fs.positions)
    np.testing.assert_array_equal(back.energy, fs.energy)
    np.testing.assert_array_equal(back.forces, fs.forces)
    assert back.info == fs.info
    import time

    time.sleep(2.1)  # zip timestamps have 2-s resolution: the same frames, the same bytes
    back.save(tmp_path / "y.npz")
    assert (tmp_path / "y.npz").read_bytes() == (tmp_path / "x.npz").read_bytes()
    fs.save(tmp_path / "x.extxyz")
    xyz = read_frames(tmp_path / "x.extxyz")
    np.testing.assert_allclose(xyz.forces, fs.forces)
    np.testing.assert_allclose(xyz.energy, fs.energy)


def test_energy_units_are_explicit(tmp_path):
    fs = morse_frames(2, seed=4)
    fs.save(tmp_path / "x.extxyz")
    ev = read_frames(tmp_path / "x.extxyz")
    kcal = read_frames(tmp_path / "x.extxyz", energy_unit="kcal/mol")
    np.testing.assert_allclose(kcal.energy, ev.energy * 0.0433641043, rtol=1e-8)
    np.testing.assert_allclose(kcal.forces, ev.forces * 0.0433641043, rtol=1e-8)
    with pytest.raises(ValueError, match="unknown energy unit"):
        read_frames(tmp_path / "x.extxyz", energy_unit="kcal")


def test_h2comb_layout_padding_and_units(tmp_path):
    R = np.zeros((2, 6, 3))
    R[0, :3] = [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]
    R[1, :2] = [[0, 0, 0], [0.74, 0, 0]]
    Z = np.array([[8, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    F = np.zeros((2, 6, 3))
    F[0, 1, 0] = 10.0
    np.savez(tmp_path / "h.npz", R=R, Z=Z, N=np.array([[3], [2]]), E=np.array([[-1.0], [2.0]]),
             F=F, RXN=np.zeros((2, 1)))
    fs = read_frames(tmp_path / "h.npz")
    assert fs.n_atoms.tolist() == [3, 2]
    assert fs.numbers.tolist() == [8, 1, 1, 1, 1]
    np.testing.assert_allclose(fs.energy, [-0.0433641043, 0.0867282086], rtol=1e-8)
    assert fs.forces[1, 0] == pytest.approx(0.433641043)


def test_h2comb_real_file(shared_data):
    path = shared_data / "h2combustion" / "09_irc.npz"
    raw = np.load(path)
    fs = read_h2comb(path)
    assert fs.n_frames == len(raw["E"])
    np.testing.assert_allclose(fs.energy, raw["E"].ravel() * 0.0433641043, rtol=1e-8)


def test_bad_data_errors_name_file_and_frame(tmp_path):
    fs = morse_frames(3, seed=5)
    fs.forces[7, 1] = np.nan  # atom 7 is in frame 1 (6 atoms per frame)
    with pytest.raises(ValueError, match="frame 1 has non-finite forces"):
        fs.validate("bad.npz")
    good = morse_frames(2, seed=6)
    good.save(tmp_path / "g.extxyz")
    with pytest.raises(KeyError, match="frame 0 has no 'dft_energy' label"):
        read_frames(tmp_path / "g.extxyz", energy_key="dft_energy")
    with pytest.raises(ValueError, match="forces have 5 rows, expected 6"):
        FrameSet(numbers=[1] * 6, positions=np.zeros((6, 3)), n_atoms=[6],
                 forces=np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"element N is not in the model's elements"):
        GraphSet(FrameSet(numbers=[7, 1], positions=[[0, 0, 0], [1, 0, 0]], n_atoms=[2]),
                 ["H", "O"], 3.0)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        FrameSet.load(tmp_path / "junk.npz")


def test_splits_are_deterministic_and_disjoint():
    a = split_indices(100, 0.1, 0.2, seed=7)
    b = split_indices(100, 0.1, 0.2, seed=7)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert len(a[1]) == 10 and len(a[2]) == 20
    assert len(set(np.concatenate(a))) == 100
    assert not np.array_equal(split_indices(100, 0.1, 0.2, seed=8)[1], a[1])
