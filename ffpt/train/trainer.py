"""The training loop for the three modes (scratch, pretrain, finetune).

Protocol defaults (paper): Adam, ReduceLROnPlateau(factor 0.7, patience 50 epochs) on the
validation loss, stop once the lr falls below 1 % of its initial value; loss = 1 x MSE(energy
per atom) + 20 x MSE(force components). Budgets are counted in work, not time: ``max_epochs``
and ``max_steps`` (optimiser steps), so the same config on the same machine gives the same model
whatever the load; ``max_time_min`` is only a guard (stop reason "max_time (guard)").
Fine-tuning loads a pre-trained checkpoint and starts from exactly its function, with the
per-element energy shifts refit to the FT data (force-field and ab initio energy zeros differ);
``training.ft_strategy`` (plain | l2sp | replay), ``ft_freeze`` and ``ft_lr_mult`` choose how
it then trains (``ffpt.train.strategies``). Run folders are never silently overwritten and
``resume`` refuses changed settings (``ffpt.train.rundir``). A step that stops mid-epoch on
``max_steps`` ends that epoch (validated, checkpointed); resuming it starts a new epoch.
Pre-training with ``training.pt_source`` draws fresh rattled frames labelled by a teacher for
every epoch (``ffpt.sampling.onthefly``: the frames depend only on the seed and the epoch).
Device and precision: ``training.device`` (auto | cpu | cuda) and ``training.precision``
(``ffpt.train.device``). Distributed data parallel runs under ``torchrun`` (gloo on CPU, NCCL on
CUDA, one GPU per rank): every rank draws the same global
batch and takes its share; losses are normalised by global counts and gradients summed over the
ranks, so the trajectory equals a single process on the same global batch.
"""

from __future__ import annotations

import atexit
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
from ffpt.data.readers import read_data, split_indices
from ffpt.model.checkpoint import (
    DTYPES,
    build_model,
    load_checkpoint,
    model_config,
    model_from_checkpoint,
    save_checkpoint,
)
from ffpt.model.forces import batch_energy_forces
from ffpt.train.config import DEFAULTS, resolve
from ffpt.train.device import (
    all_reduce_,
    broadcast_,
    dist_backend,
    precision_context,
    resolve_device,
    to_cpu,
)
from ffpt.train.map_elements import map_model_elements
from ffpt.train.metrics import evaluate, loss_terms
from ffpt.train.rundir import check_resume_config, prepare_run_dir
from ffpt.train.strategies import (
    L2SP,
    BodyWithHead,
    ReplayHead,
    param_groups,
    prepare_energy_head,
    replay_indices,
    replay_source,
)


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
    fs = read_data(spec, cfg["data"], what)  # per-file units; warns on mixed-unit lists
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


def onthefly_splits(cfg: dict):
    """``training.pt_source``: the on-the-fly data, its epoch-0 frames, and validation/test
    sets (data.val/data.test, else a fixed validation set drawn once from its own seed)."""
    from ffpt.sampling.onthefly import OnTheFlyPTData

    src = cfg["training"]["pt_source"]
    source = OnTheFlyPTData.from_config(src, int(cfg["seed"]))
    d = cfg["data"]
    val = _load(d["val"], cfg, "validation")
    if val is None:
        val = source.validation(int(src["val_frames"]))
    return source, (source.epoch(0), val, _load(d["test"], cfg, "test"))


def _elements_of(*sets: FrameSet | None, extra: list[str] = ()) -> list[str]:
    from ase.data import atomic_numbers

    syms = {s for fs in sets if fs is not None for s in fs.elements} | set(extra)
    return sorted(syms, key=lambda s: atomic_numbers[s])


# ----------------------------------------------------------------------- distributed
_last_run_finished = False  # the latest train() on this rank returned normally


def _dist_setup(backend: str = "gloo") -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend)
        atexit.register(_dist_teardown)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _dist_teardown() -> None:
    """Destroy the process group ``_dist_setup`` made, at exit while the interpreter is whole.

    Left to interpreter shutdown, gloo's threads can abort the rank that exits first ("terminate
    called without an active exception", SIGABRT) and torchrun then fails the whole run. Skipped
    after a failed run: a collective teardown could block while the peers wait in a collective.
    """
    if _last_run_finished and dist.is_initialized():
        dist.destroy_process_group()


# -------------------------------------------------------------------------- training
def train(
    config: dict,
    run_dir: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> TrainResult:
    """Train per ``config`` (see ``ffpt.train.config.DEFAULTS``) into ``run_dir``.

    A folder that already holds a checkpoint is refused unless ``resume`` (continue from
    last.pt with the same settings) or ``overwrite`` (start over, replacing it).
    """
    global _last_run_finished
    _last_run_finished = False
    cfg = resolve(config)
    tcfg = cfg["training"]
    run_dir = Path(run_dir)
    device = resolve_device(str(tcfg["device"]))
    amp = precision_context(str(tcfg["precision"]), device)
    rank, world = _dist_setup(dist_backend(device))
    main = rank == 0
    if tcfg["num_threads"]:
        torch.set_num_threads(int(tcfg["num_threads"]))
    torch.manual_seed(int(cfg["seed"]))
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    log_path = run_dir / "log.csv"
    resuming = prepare_run_dir(run_dir, resume, overwrite, main)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)

    finetune = cfg["mode"] == "finetune"
    strategy = tcfg["ft_strategy"]
    init = load_checkpoint(cfg["init_from"]) if finetune else None
    replay_read: dict = {}
    if strategy == "replay":
        tcfg["replay"]["data"], replay_read = replay_source(
            tcfg["replay"]["data"], init, str(cfg["init_from"]))
    saved_cfg = _serialisable(cfg)
    ck = load_checkpoint(last_path) if resuming else None
    if ck is not None:
        check_resume_config(ck.get("config", {}), saved_cfg, _serialisable(DEFAULTS), last_path)

    source = None
    if tcfg["pt_source"] is not None:
        source, (train_fs, val_fs, test_fs) = onthefly_splits(cfg)
    else:
        train_fs, val_fs, test_fs = load_splits(cfg)
    if finetune:
        model = model_from_checkpoint(init, dtype=cfg["model"]["dtype"])
        mcfg = dict(init["model_config"], dtype=cfg["model"]["dtype"])
        if cfg["map_elements"]:
            model = map_model_elements(model, cfg["map_elements"], mcfg, str(cfg["init_from"]))
        missing = sorted(set(_elements_of(train_fs, val_fs, test_fs)) - set(model.elements))
        if missing:
            raise ValueError(
                f"fine-tuning data contains {missing}, which the pre-trained model "
                f"({cfg['init_from']}, elements {model.elements}) does not cover; map each "
                f"to a model element: --map-elements {missing[0]}={model.elements[0]} "
                "(config map_elements)"
            )
    else:
        mcfg = model_config(cfg["model"])
        extra = source.elements if source is not None else []
        model = build_model(mcfg, _elements_of(train_fs, val_fs, test_fs, extra=extra))
    dtype = DTYPES[mcfg["dtype"]]
    ebs = int(tcfg["eval_batch_size"])

    graphs = GraphSet(train_fs, model.elements, model.cutoff, progress=progress and main)
    head = ReplayHead(model) if strategy == "replay" else None  # PT head, before the refit
    ft_start: dict = {}
    if ck is None:
        ft_start = prepare_energy_head(model, graphs, cfg["mode"], bool(tcfg["refit_scale"]), ebs)
    val_graphs = GraphSet(val_fs, model.elements, model.cutoff) if val_fs is not None else None
    test_graphs = GraphSet(test_fs, model.elements, model.cutoff) if test_fs is not None else None
    pt_graphs = None
    if head is not None:
        pt_fs = _load(tcfg["replay"]["data"], {"data": replay_read}, "replay (PT)")
        pt_graphs = GraphSet(pt_fs, model.elements, model.cutoff, progress=progress and main)

    model.to(device)
    if head is not None:
        head.to(device)
    lr0 = float(tcfg["lr"])
    groups = param_groups(model, lr0, list(tcfg["ft_freeze"]), dict(tcfg["ft_lr_mult"]))
    if head is not None:
        groups.append({"params": list(head.parameters()), "lr": lr0, "lr_mult": 1.0})
    lr_first = groups[0]["lr"]
    optimizer = torch.optim.Adam(groups, lr=lr0)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=float(tcfg["factor"]), patience=int(tcfg["patience"])
    )
    rng = np.random.default_rng(int(cfg["seed"]))
    replay_rng = np.random.default_rng([int(cfg["seed"]), 1])
    start_epoch, best_val, history, step = 0, math.inf, [], 0
    if ck is not None:
        model.load_state_dict(ck["model_state"])
        if head is not None:
            head.load_state_dict(ck["replay_head_state"])
            replay_rng.bit_generator.state = ck["rng"]["replay"]
        optimizer.load_state_dict(ck["optimizer_state"])
        scheduler.load_state_dict(ck["scheduler_state"])
        start_epoch, best_val, history = ck["epoch"], ck["best_val"], ck["history"]
        step = int(ck.get("step", start_epoch * math.ceil(len(graphs) / int(tcfg["batch_size"]))))
        ft_start = dict(ck.get("ft_start", {}))
        rng.bit_generator.state = ck["rng"]["numpy"]
        torch.set_rng_state(ck["rng"]["torch"])
    l2sp = None
    if strategy == "l2sp":
        l2sp = L2SP(model, float(tcfg["l2sp_alpha"]), ck["l2sp_reference"] if ck else None)
    replay_model = BodyWithHead(model, head) if head is not None else None

    wE, wF = float(tcfg["energy_weight"]), float(tcfg["forces_weight"])
    w_replay, ratio = float(tcfg["replay"]["weight"]), float(tcfg["replay"]["ratio"])
    bs, max_epochs = int(tcfg["batch_size"]), int(tcfg["max_epochs"])
    max_steps = None if tcfg["max_steps"] is None else int(tcfg["max_steps"])
    t_start = time.perf_counter() - (history[-1]["time_s"] if history else 0.0)
    epochs_bar = _bar(progress and main, start_epoch, max_epochs, cfg["mode"])
    epoch = start_epoch
    stop_reason = "max_epochs"
    while epoch < max_epochs:
        if max_steps is not None and step >= max_steps:
            stop_reason = "max_steps"
            break
        epoch += 1
        if source is not None and epoch > 1:  # fresh frames: the same for a seed and epoch
            train_fs = source.epoch(epoch - 1)
            graphs = GraphSet(train_fs, model.elements, model.cutoff)
        model.train()
        perm = rng.permutation(len(graphs))
        sums = torch.zeros(5, dtype=torch.float64)  # loss*n, SSE_E, SSE_F, replay*n, l2sp*n
        n_seen = atoms_seen = 0
        for s in range(0, len(perm), bs):
            if max_steps is not None and step >= max_steps:
                break
            gidx = perm[s : s + bs]
            n_frames, n_at = len(gidx), int(train_fs.n_atoms[gidx].sum())
            local = gidx[rank::world]
            optimizer.zero_grad(set_to_none=True)
            parts = []
            if len(local):
                with amp():
                    loss, sse_e, sse_f = _data_loss(model, graphs, local, n_frames, 3 * n_at,
                                                    dtype, wE, wF)
                parts.append(loss)
                sums[:3] += torch.stack([loss.detach().double() * n_frames, sse_e.detach(),
                                         sse_f.detach()]).cpu()
            if replay_model is not None:
                ridx = replay_indices(replay_rng, n_frames, len(pt_graphs), ratio)
                rlocal = ridx[rank::world]
                if len(rlocal):
                    n_comp = 3 * int(pt_graphs.frames.n_atoms[ridx].sum())
                    with amp():
                        rloss, _, _ = _data_loss(replay_model, pt_graphs, rlocal, len(ridx),
                                                 n_comp, dtype, wE, wF)
                    parts.append(w_replay * rloss)
                    sums[3] += rloss.detach().double().cpu() * n_frames
            if l2sp is not None and main:  # counted once over the ranks
                pen = l2sp.penalty(model)
                parts.append(pen)
                sums[4] += pen.detach().double().cpu() * n_frames
            if parts:
                sum(parts).backward()
            if world > 1:
                _allreduce_grads(trainable)
            if tcfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(trainable, float(tcfg["grad_clip"]))
            optimizer.step()
            step += 1
            n_seen, atoms_seen = n_seen + n_frames, atoms_seen + n_at
        if world > 1:
            all_reduce_(sums, device)
        train_loss = float(sums[0] / n_seen)
        row = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": train_loss,
               "train_energy_per_atom_rmse": math.sqrt(float(sums[1]) / n_seen),
               "train_forces_rmse": math.sqrt(float(sums[2]) / (3 * atoms_seen))}
        if replay_model is not None:
            row["train_replay_loss"] = float(sums[3] / n_seen)
        if l2sp is not None:
            row["train_l2sp_penalty"] = float(sums[4] / n_seen)
        if val_graphs is not None:
            vm = evaluate(model, val_graphs, ebs)
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
                "config": saved_cfg, "epoch": epoch, "step": step, "best_val": best_val,
                "history": history, "optimizer_state": to_cpu(optimizer.state_dict()),
                "scheduler_state": scheduler.state_dict(),
                "rng": {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(),
                        "replay": replay_rng.bit_generator.state},
                "mode": cfg["mode"], "ft_start": ft_start,
            }
            if l2sp is not None:
                state["l2sp_reference"] = to_cpu(l2sp.state_dict())
            if head is not None:
                state["replay_head_state"] = {k: v.detach().cpu()
                                              for k, v in head.state_dict().items()}
            if improved:
                save_checkpoint(best_path, model, mcfg, **state)
            save_checkpoint(last_path, model, mcfg, **state)
            _write_csv(log_path, history)
            if tcfg["plot_every"] and epoch % int(tcfg["plot_every"]) == 0:
                _plot(history, run_dir, cfg["mode"])
            if epochs_bar is not None:
                epochs_bar.update(1)
                epochs_bar.set_postfix(
                    loss=f"{val_loss:.3g}", lr=f"{row['lr']:.2g}",
                    F_rmse=f"{row.get('val_forces_rmse', row['train_forces_rmse']):.3g}",
                )
        stop = torch.tensor(0)
        if max_steps is not None and step >= max_steps:
            stop_reason, stop = "max_steps", torch.tensor(1)
        elif optimizer.param_groups[0]["lr"] < float(tcfg["min_lr_ratio"]) * lr_first * (1 - 1e-9):
            stop_reason, stop = "lr", torch.tensor(1)
        elif tcfg["max_time_min"] and row["time_s"] > 60 * float(tcfg["max_time_min"]):
            stop_reason, stop = "max_time (guard)", torch.tensor(1)
        if world > 1:
            broadcast_(stop, device)
        if int(stop):
            break
    if epochs_bar is not None:
        epochs_bar.close()

    metrics: dict = {"epochs": epoch, "steps": step, "stop_reason": stop_reason,
                     "mode": cfg["mode"]}
    if finetune:
        metrics["finetune"] = _ft_record(tcfg, ft_start, model, head, pt_graphs)
    if main:
        _plot(history, run_dir, cfg["mode"])
        best = model_from_checkpoint(load_checkpoint(best_path)).eval().to(device)
        if val_graphs is not None:
            metrics["val"] = evaluate(best, val_graphs, ebs)
        if test_graphs is not None:
            metrics["test"] = evaluate(best, test_graphs, ebs)
        atomic_write(run_dir / "metrics.json",
                     lambda f: f.write(json.dumps(metrics, indent=2).encode()))
    _last_run_finished = True
    return TrainResult(run_dir, best_path, last_path, log_path, epoch, metrics)


def _data_loss(module: torch.nn.Module, graphs: GraphSet, idx: np.ndarray, n_frames: int,
               n_comp: int, dtype: torch.dtype, w_e: float, w_f: float):
    """(loss, SSE_E, SSE_F) of frames ``idx``, normalised by the global batch counts."""
    b = graphs.batch(idx).to(device=next(module.parameters()).device, dtype=dtype)
    out = batch_energy_forces(module, b.species, b.pos, b.edge_index, b.edge_shift, b.batch,
                              b.num_graphs, training=True)
    sse_e, sse_f = loss_terms(out, b.energy, b.forces, b.n_atoms)
    return w_e * sse_e / n_frames + w_f * sse_f / n_comp, sse_e, sse_f


def _allreduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum the gradients over the ranks (each rank's loss is normalised by global counts)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    off = 0
    for p in params:
        p.grad = flat[off : off + p.numel()].view_as(p).clone()
        off += p.numel()


def _ft_record(tcfg: dict, ft_start: dict, model, head, pt_graphs) -> dict:
    """The fine-tuning strategy and its settings, for metrics.json."""
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    rec = {"strategy": tcfg["ft_strategy"], "refit_scale": bool(tcfg["refit_scale"]),
           **ft_start, "ft_freeze": list(tcfg["ft_freeze"]),
           "ft_lr_mult": dict(tcfg["ft_lr_mult"]), "frozen_parameters": n_frozen,
           "trainable_parameters": sum(p.numel() for p in model.parameters()) - n_frozen}
    if tcfg["ft_strategy"] == "l2sp":
        rec["l2sp_alpha"] = float(tcfg["l2sp_alpha"])
    if head is not None:
        rec["replay"] = {**_serialisable(tcfg["replay"]), "n_frames": len(pt_graphs)}
    return rec


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


def _plot(history: list[dict], run_dir: Path, mode: str) -> None:
    """``learning_curve.png``: training and validation loss and force RMSE per epoch."""
    from ffpt.train.plots import plot_learning_curves

    plot_learning_curves({"": history}, run_dir / "learning_curve.png",
                         splits=("train", "val"), title=mode)
