"""The training loop for the three modes (scratch, pretrain, finetune).

Protocol defaults (paper): Adam, ReduceLROnPlateau(factor 0.7, patience 50 epochs) on the
validation loss, stop once the lr falls below 1 % of its initial value (or at ``max_epochs`` /
``max_time_min``); loss = 1 x MSE(energy per atom) + 20 x MSE(force components).
Fine-tuning loads a pre-trained checkpoint (same architecture, all weights trained) and refits the
per-element energy shifts to the fine-tuning data, because force-field and ab initio energy zeros
differ. The energy scale (force RMS of the PT data) is kept unless ``training.refit_scale``: rattled
PT forces are ~10x larger than near-equilibrium ab initio ones, so keeping it makes the same lr
a ~10x larger step in energy space (the paper's 1e-4 for FT compensates for that).
Distributed data parallel runs under ``torchrun`` (gloo): every rank draws the same
global batch and takes its share; losses are normalised by global counts so the trajectory equals
a single process on the same global batch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ffpt.data.frames import FrameSet, atomic_write
from ffpt.data.graph import GraphSet
from ffpt.data.readers import read_frames, split_indices
from ffpt.model.checkpoint import (
    DTYPES,
    build_model,
    load_checkpoint,
    model_config,
    model_from_checkpoint,
    save_checkpoint,
)
from ffpt.model.forces import batch_energy_forces
from ffpt.train.config import resolve
from ffpt.train.metrics import evaluate, loss_terms
from ffpt.train.stats import fit_shifts, force_rms


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    log_csv: Path
    epochs: int
    metrics: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- data
def _load(spec, cfg: dict, what: str) -> FrameSet | None:
    if spec is None:
        return None
    d = cfg["data"]
    specs = spec if isinstance(spec, list | tuple) else [spec]
    sets = []
    for s in specs:
        if isinstance(s, FrameSet):
            sets.append(s)
        else:
            sets.append(
                read_frames(
                    s,
                    fmt=d["format"],
                    energy_key=d["energy_key"],
                    forces_key=d["forces_key"],
                    energy_unit=d["energy_unit"],
                )
            )
    fs = sets[0] if len(sets) == 1 else FrameSet.concatenate(sets)
    if fs.energy is None or fs.forces is None:
        raise ValueError(f"{what} data has no energy/forces labels; label it first (ffpt label)")
    return fs


def load_splits(cfg: dict) -> tuple[FrameSet, FrameSet | None, FrameSet | None]:
    """Train/val/test FrameSets from files or a seeded random split of the training file."""
    d = cfg["data"]
    train = _load(d["train"], cfg, "training")
    if d["max_frames"] is not None and train.n_frames > int(d["max_frames"]):
        perm = np.random.default_rng(cfg["seed"]).permutation(train.n_frames)
        keep = perm[: int(d["max_frames"])]
        train = train.subset(np.sort(keep))
    val = _load(d["val"], cfg, "validation")
    test = _load(d["test"], cfg, "test")
    vf = 0.0 if val is not None else float(d["val_fraction"])
    tf = 0.0 if test is not None else float(d["test_fraction"])
    if vf > 0 or tf > 0:
        tr_idx, va_idx, te_idx = split_indices(train.n_frames, vf, tf, cfg["seed"])
        if val is None and len(va_idx):
            val = train.subset(va_idx)
        if test is None and len(te_idx):
            test = train.subset(te_idx)
        train = train.subset(tr_idx)
    return train, val, test


def _elements_of(*sets: FrameSet | None) -> list[str]:
    from ase.data import atomic_numbers

    syms = {s for fs in sets if fs is not None for s in fs.elements}
    return sorted(syms, key=lambda s: atomic_numbers[s])


# ----------------------------------------------------------------------- distributed
def _dist_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# -------------------------------------------------------------------------- training
def train(
    config: dict,
    run_dir: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train per ``config`` (see ``ffpt.train.config.DEFAULTS``) into ``run_dir``."""
    cfg = resolve(config)
    tcfg = cfg["training"]
    run_dir = Path(run_dir)
    rank, world = _dist_setup()
    main = rank == 0
    if tcfg["num_threads"]:
        torch.set_num_threads(int(tcfg["num_threads"]))
    torch.manual_seed(int(cfg["seed"]))
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    log_path = run_dir / "log.csv"
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)

    train_fs, val_fs, test_fs = load_splits(cfg)
    init = None
    if cfg["mode"] == "finetune":
        init = load_checkpoint(cfg["init_from"])
        model = model_from_checkpoint(init, dtype=cfg["model"]["dtype"])
        mcfg = dict(init["model_config"], dtype=cfg["model"]["dtype"])
        missing = sorted(set(_elements_of(train_fs, val_fs, test_fs)) - set(model.elements))
        if missing:
            raise ValueError(
                f"fine-tuning data contains {missing}, which the pre-trained model "
                f"({cfg['init_from']}, elements {model.elements}) does not cover"
            )
    else:
        mcfg = model_config(cfg["model"])
        model = build_model(mcfg, _elements_of(train_fs, val_fs, test_fs))
    dtype = DTYPES[mcfg["dtype"]]

    graphs = GraphSet(train_fs, model.elements, model.cutoff, progress=progress and main)
    if not (resume and last_path.exists()):
        with torch.no_grad():
            if cfg["mode"] != "finetune" or tcfg["refit_scale"]:
                model.scale.fill_(force_rms(train_fs))
            model.shift.zero_()
            base = _energies(model, graphs, int(tcfg["eval_batch_size"]))
            model.shift.copy_(
                torch.as_tensor(fit_shifts(train_fs, model.elements, base), dtype=dtype)
            )
    val_graphs = GraphSet(val_fs, model.elements, model.cutoff) if val_fs is not None else None
    test_graphs = GraphSet(test_fs, model.elements, model.cutoff) if test_fs is not None else None

    lr0 = float(tcfg["lr"])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=float(tcfg["factor"]), patience=int(tcfg["patience"])
    )
    rng = np.random.default_rng(int(cfg["seed"]))
    start_epoch, best_val, history = 0, math.inf, []
    if resume and last_path.exists():
        ck = load_checkpoint(last_path)
        model.load_state_dict(ck["model_state"])
        optimizer.load_state_dict(ck["optimizer_state"])
        scheduler.load_state_dict(ck["scheduler_state"])
        start_epoch, best_val, history = ck["epoch"], ck["best_val"], ck["history"]
        rng.bit_generator.state = ck["rng"]["numpy"]
        torch.set_rng_state(ck["rng"]["torch"])

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)

    wE, wF = float(tcfg["energy_weight"]), float(tcfg["forces_weight"])
    bs = int(tcfg["batch_size"])
    saved_cfg = _serialisable(cfg)
    t_start = time.perf_counter() - (history[-1]["time_s"] if history else 0.0)
    epochs_bar = _bar(progress and main, start_epoch, int(tcfg["max_epochs"]), cfg["mode"])
    epoch = start_epoch
    stop_reason = "max_epochs"
    for epoch in range(start_epoch + 1, int(tcfg["max_epochs"]) + 1):
        model.train()
        perm = rng.permutation(len(graphs))
        sums = torch.zeros(3, dtype=torch.float64)
        for s in range(0, len(perm), bs):
            gidx = perm[s : s + bs]
            n_frames = len(gidx)
            n_comp = 3 * int(train_fs.n_atoms[gidx].sum())
            local = gidx[rank::world]
            optimizer.zero_grad(set_to_none=True)
            if len(local):
                b = graphs.batch(local).to(dtype=dtype)
                out = batch_energy_forces(
                    net, b.species, b.pos, b.edge_index, b.edge_shift, b.batch, b.num_graphs,
                    training=True,
                )
                sse_e, sse_f = loss_terms(out, b.energy, b.forces, b.n_atoms)
                loss = wE * sse_e / n_frames + wF * sse_f / n_comp
                (loss * world).backward()
                sums += torch.stack([loss.detach().double(), sse_e.detach().double(),
                                     sse_f.detach().double()]) * torch.tensor([n_frames, 1, 1])
            if tcfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["grad_clip"]))
            optimizer.step()
        if world > 1:
            dist.all_reduce(sums)
        train_loss = float(sums[0] / len(perm))
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss,
               "train_energy_per_atom_rmse": math.sqrt(float(sums[1]) / len(perm)),
               "train_forces_rmse": math.sqrt(float(sums[2]) / (3 * graphs.frames.n_atoms.sum()))}
        if val_graphs is not None:
            vm = evaluate(model, val_graphs, int(tcfg["eval_batch_size"]))
            val_loss = wE * vm["energy_per_atom_rmse"] ** 2 + wF * vm["forces_rmse"] ** 2
            row.update({f"val_{k}": v for k, v in vm.items() if k != "n_frames"})
        else:
            val_loss = train_loss
        row["val_loss"] = val_loss
        if not math.isfinite(val_loss):
            raise FloatingPointError(
                f"loss became {val_loss} at epoch {epoch}; lower training.lr or set grad_clip"
            )
        scheduler.step(val_loss)
        row["time_s"] = time.perf_counter() - t_start
        history.append(row)
        improved = val_loss < best_val
        best_val = min(best_val, val_loss)
        if main:
            state = {
                "config": saved_cfg, "epoch": epoch, "best_val": best_val, "history": history,
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": scheduler.state_dict(),
                "rng": {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()},
                "mode": cfg["mode"],
            }
            if improved:
                save_checkpoint(best_path, model, mcfg, **state)
            save_checkpoint(last_path, model, mcfg, **state)
            _write_csv(log_path, history)
            if tcfg["plot_every"] and epoch % int(tcfg["plot_every"]) == 0:
                plot_learning_curve(history, run_dir / "learning_curve.png", cfg["mode"])
            if epochs_bar is not None:
                epochs_bar.update(1)
                epochs_bar.set_postfix(
                    loss=f"{val_loss:.3g}", lr=f"{row['lr']:.2g}",
                    F_rmse=f"{row.get('val_forces_rmse', row['train_forces_rmse']):.3g}",
                )
        stop = torch.tensor(0)
        if optimizer.param_groups[0]["lr"] < float(tcfg["min_lr_ratio"]) * lr0 * (1 - 1e-9):
            stop_reason, stop = "lr", torch.tensor(1)
        elif tcfg["max_time_min"] and row["time_s"] > 60 * float(tcfg["max_time_min"]):
            stop_reason, stop = "max_time", torch.tensor(1)
        if world > 1:
            dist.broadcast(stop, 0)
        if int(stop):
            break
    if epochs_bar is not None:
        epochs_bar.close()

    metrics: dict = {"epochs": epoch, "stop_reason": stop_reason, "mode": cfg["mode"]}
    if main:
        plot_learning_curve(history, run_dir / "learning_curve.png", cfg["mode"])
        best = model_from_checkpoint(load_checkpoint(best_path)).eval()
        if val_graphs is not None:
            metrics["val"] = evaluate(best, val_graphs, int(tcfg["eval_batch_size"]))
        if test_graphs is not None:
            metrics["test"] = evaluate(best, test_graphs, int(tcfg["eval_batch_size"]))
        atomic_write(run_dir / "metrics.json",
                     lambda f: f.write(json.dumps(metrics, indent=2).encode()))
    return TrainResult(run_dir, best_path, last_path, log_path, epoch, metrics)


@torch.no_grad()
def _energies(model: torch.nn.Module, graphs: GraphSet, batch_size: int) -> np.ndarray:
    """Per-frame model energies (no forces)."""
    dtype = next(model.parameters()).dtype
    out = []
    for s in range(0, len(graphs), batch_size):
        b = graphs.batch(np.arange(s, min(s + batch_size, len(graphs)))).to(dtype=dtype)
        ev = b.pos[b.edge_index[1]] - b.pos[b.edge_index[0]] + b.edge_shift
        atomic = model(b.species, b.edge_index, ev).double()
        out.append(torch.zeros(b.num_graphs, dtype=torch.float64).index_add(0, b.batch, atomic))
    return torch.cat(out).numpy()


def _bar(enabled: bool, start: int, total: int, mode: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc=f"train[{mode}]", unit="epoch", mininterval=1.0)


def _serialisable(cfg):
    if isinstance(cfg, dict):
        return {k: _serialisable(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [_serialisable(v) for v in cfg]
    if isinstance(cfg, FrameSet):
        return f"<FrameSet: {cfg.n_frames} frames>"
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def _write_csv(path: Path, history: list[dict]) -> None:
    import io

    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def plot_learning_curve(history: list[dict], png: Path, title: str = "") -> None:
    """Training/validation loss and force RMSE against epoch (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].semilogy(ep, [h["train_loss"] for h in history], label="train")
    ax[0].semilogy(ep, [h["val_loss"] for h in history], label="validation")
    ax[0].set(xlabel="epoch", ylabel="loss", title=f"{title} loss")
    ax[0].legend()
    ax[1].semilogy(ep, [h["train_forces_rmse"] for h in history], label="train")
    if "val_forces_rmse" in history[0]:
        ax[1].semilogy(ep, [h["val_forces_rmse"] for h in history], label="validation")
    ax[1].set(xlabel="epoch", ylabel="force RMSE (eV/Å)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
