"""The FFPT-FT water demo as resumable stages.

Each stage records ``<run_dir>/.stages/<name>.json`` (a hash of the config it depended on,
its outputs, its wall time). A rerun skips stages whose record matches; a changed setting
reruns that stage and everything downstream (the hash chains through ``upstream``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from ffpt.data.frames import FrameSet, atomic_write
from ffpt.demo.config import stage_hash

MARKER = ".ffpt-demo"
MODELS = ("pt", "ft", "scratch")
MD_MODELS = ("ft", "scratch")


class Pipeline:
    """Runs named stages in order with skip-if-done records."""

    STAGES = (
        "pt_data", "ft_structures", "ft_labels", "train_pt", "train_ft", "train_scratch",
        "deploy", "md_ft", "md_scratch", "evaluate", "report",
    )

    def __init__(self, cfg: dict, run_dir: str | Path, fresh: bool = False,
                 progress: bool = True, echo: Callable[[str], None] = click.echo) -> None:
        self.cfg = cfg
        self.run = Path(run_dir)
        self.progress = progress
        self.echo = echo
        if fresh and self.run.exists():
            if not (self.run / MARKER).exists() and any(self.run.iterdir()):
                raise click.ClickException(
                    f"{self.run} exists but is not an ffpt demo folder (no {MARKER}); "
                    "refusing to delete it with --fresh; pick another --run-dir"
                )
            shutil.rmtree(self.run)
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / MARKER).write_text("ffpt demo run folder (safe to delete)\n")
        (self.run / ".stages").mkdir(exist_ok=True)
        import torch

        torch.set_num_threads(int(cfg["train"]["common"].get("num_threads") or 1))
        self.results: dict[str, dict] = {}
        self.hashes: dict[str, str] = {}
        self.times: dict[str, float] = {}

    def path(self, *parts: str) -> Path:
        p = self.run.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def stage(self, name: str, deps: Any, upstream: tuple[str, ...], fn: Callable[[], dict]):
        k = self.STAGES.index(name) + 1
        h = stage_hash(deps, [self.hashes[u] for u in upstream])
        rec_path = self.run / ".stages" / f"{name}.json"
        if rec_path.exists():
            rec = json.loads(rec_path.read_text())
            if rec.get("hash") == h:
                self.echo(f"[{k}/{len(self.STAGES)}] {name}: done earlier, skipped "
                          f"({rec['seconds']:.0f} s then)")
                self.results[name], self.hashes[name] = rec["result"], h
                self.times[name] = rec["seconds"]
                return rec["result"]
        self.echo(f"[{k}/{len(self.STAGES)}] {name} ...")
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        rec = {"hash": h, "seconds": dt, "result": result}
        atomic_write(rec_path, lambda f: f.write(json.dumps(rec, indent=1, default=str).encode()))
        self.results[name], self.hashes[name], self.times[name] = result, h, dt
        self.echo(f"[{k}/{len(self.STAGES)}] {name}: done in {dt:.0f} s")
        return result

    # ------------------------------------------------------------------ the chain
    def run_all(self) -> Path:
        c = self.cfg
        self.stage("pt_data", [c["pt_data"], c["seed"]], (), self.make_pt_data)
        sampling = {k: v for k, v in c["ft_data"].items() if k not in ("label", "test_fraction")}
        self.stage("ft_structures", [sampling, c["seed"], c["md"]["start"]], (),
                   self.make_ft_structures)
        self.stage("ft_labels", [c["ft_data"]["label"], c["ft_data"]["test_fraction"]],
                   ("ft_structures",), self.make_ft_labels)
        common = [c["model"], c["train"]["common"], c["seed"]]
        self.stage("train_pt", [*common, c["train"]["pt"]], ("pt_data",),
                   lambda: self.train_one("pt"))
        self.stage("train_ft", [*common, c["train"]["ft"]], ("train_pt", "ft_labels"),
                   lambda: self.train_one("ft"))
        self.stage("train_scratch", [*common, c["train"]["scratch"]], ("ft_labels",),
                   lambda: self.train_one("scratch"))
        self.stage("deploy", [], ("train_ft", "train_scratch"), self.deploy)
        for m in MD_MODELS:
            self.stage(f"md_{m}", [c["md"], c["stability"]], ("deploy", "ft_structures"),
                       lambda m=m: self.md(m))
        self.stage("evaluate", [], ("train_pt", "train_ft", "train_scratch", "ft_labels"),
                   self.evaluate)
        self.stage("report", [], ("evaluate", "md_ft", "md_scratch"), self.report)
        return self.run / "report" / "report.md"

    # ------------------------------------------------------------------ stage 1
    def make_pt_data(self) -> dict:
        from ffpt.data.readers import read_frames, split_indices

        p = self.cfg["pt_data"]
        if p["path"]:
            fs = read_frames(p["path"])
            source = p["path"]
        else:
            from ffpt.sampling import generate_pt_data
            from ffpt.teachers import get_teacher

            fs = generate_pt_data(get_teacher(p["teacher"]), int(p["n_frames"]),
                                  sigma=float(p["sigma"]), seed=int(self.cfg["seed"]),
                                  progress=self.progress)
            source = f"{p['teacher']} rattled, sigma {p['sigma']} A"
        tr, _, te = split_indices(fs.n_frames, 0.0, float(p["test_fraction"]),
                                  int(self.cfg["seed"]))
        fs.subset(tr).save(self.path("data", "pt_train.npz"))
        fs.subset(te).save(self.path("data", "pt_test.npz"))
        return {"source": source, "n_train": len(tr), "n_test": len(te),
                "train": str(self.path("data", "pt_train.npz")),
                "test": str(self.path("data", "pt_test.npz"))}

    # ------------------------------------------------------------------ stage 2
    def make_ft_structures(self) -> dict:
        f = self.cfg["ft_data"]
        if f["path"]:
            from ffpt.data.readers import read_frames

            src = Path(f["path"])
            if not src.exists():
                raise click.ClickException(
                    f"ft_data.path {src} does not exist; give a labelled extxyz/.npz file "
                    "(or unset ft_data.path to sample and label water with xTB)"
                )
            fs = read_frames(src, energy_key=f["energy_key"], forces_key=f["forces_key"])
            fs.save(self.path("data", "ft_labelled_input.npz"))
            start = fs.to_atoms(0) if not self.cfg["md"]["start"] else None
            kind = f"user data {src}"
        else:
            from ffpt.sampling.liquid import WaterBoxSampling, sample_liquid_water

            s = dict(f["sampler"])
            s["n_frames"] = int(s["n_frames"]) + 1  # the last frame is the MD start box
            settings = WaterBoxSampling(**s, seed=int(self.cfg["seed"]) + 12345)
            fs = sample_liquid_water(settings, workdir=self.path("data", "tip3p_md", "x").parent,
                                     progress=self.progress)
            start = fs.to_atoms(fs.n_frames - 1)
            fs = fs.subset(np.arange(fs.n_frames - 1))
            fs.save(self.path("data", "ft_structures.npz"))
            kind = f"flexible TIP3P liquid, {settings.n_molecules} H2O, LAMMPS"
        if self.cfg["md"]["start"]:
            from ase.io import read

            start = read(self.cfg["md"]["start"])
        start.calc = None
        from ase.io import write

        write(self.path("data", "md_start.extxyz"), start)
        return {"kind": kind, "n_frames": fs.n_frames, "md_start": str(self.path(
            "data", "md_start.extxyz")), "n_atoms_start": len(start)}

    # ------------------------------------------------------------------ stage 3
    def make_ft_labels(self) -> dict:
        from ffpt.data.readers import split_indices

        f = self.cfg["ft_data"]
        if f["path"]:
            fs = FrameSet.load(self.path("data", "ft_labelled_input.npz"))
            method = "from the given file"
        else:
            from ffpt.labelling import label_frames, make_engine

            lab = dict(f["label"])
            engine = make_engine(lab.pop("engine"), **lab)
            structures = FrameSet.load(self.path("data", "ft_structures.npz"))
            out = self.path("data", "ft_labelled.npz")
            try:  # resumes from the journal of an interrupted run
                fs = label_frames(structures, engine, out, progress=self.progress,
                                  source="ft_structures.npz")
            except ValueError as exc:
                if "different engine" not in str(exc):
                    raise
                fs = label_frames(structures, engine, out, progress=self.progress,
                                  source="ft_structures.npz", fresh=True)
            method = f"{engine.name} {engine.describe().get('method', '')}".strip()
        tr, _, te = split_indices(fs.n_frames, 0.0, float(f["test_fraction"]),
                                  int(self.cfg["seed"]))
        if len(te) == 0 or len(tr) < 2:
            raise click.ClickException(
                f"{fs.n_frames} FT frames are too few for a train/test split with "
                f"test_fraction {f['test_fraction']}; use more frames"
            )
        fs.subset(tr).save(self.path("data", "ft_train.npz"))
        fs.subset(te).save(self.path("data", "ft_test.npz"))
        return {"method": method, "n_train": len(tr), "n_test": len(te),
                "train": str(self.path("data", "ft_train.npz")),
                "test": str(self.path("data", "ft_test.npz"))}

    # ------------------------------------------------------------------ stage 4
    def train_one(self, which: str) -> dict:
        from ffpt.train import train

        c = self.cfg
        data = self.results["pt_data"] if which == "pt" else self.results["ft_labels"]
        config = {
            "mode": {"pt": "pretrain", "ft": "finetune", "scratch": "scratch"}[which],
            "init_from": self.results["train_pt"]["best_checkpoint"] if which == "ft" else None,
            "seed": int(c["seed"]),
            "data": {"train": data["train"], "test": data["test"], "val_fraction": 0.1},
            "model": dict(c["model"]),
            "training": {**c["train"]["common"], **c["train"][which]},
        }
        run_dir = self.run / "train" / which
        tag = stage_hash(config)
        tag_file = run_dir / "demo_config_hash.txt"
        resume = (run_dir / "last.pt").exists() and tag_file.exists() and (
            tag_file.read_text().strip() == tag)
        if resume:  # interrupted earlier with the same settings: continue from last.pt
            self.echo(f"    resuming {which} training from {run_dir / 'last.pt'}")
        elif run_dir.exists():
            shutil.rmtree(run_dir)  # changed settings: start this training over
        run_dir.mkdir(parents=True, exist_ok=True)
        tag_file.write_text(tag + "\n")
        res = train(config, run_dir, resume=resume, progress=self.progress)
        return {"best_checkpoint": str(res.best_checkpoint),
                "last_checkpoint": str(res.last_checkpoint), "log_csv": str(res.log_csv),
                "epochs": int(res.epochs), "metrics": _jsonable(res.metrics)}

    # ------------------------------------------------------------------ stage 5
    def deploy(self) -> dict:
        from ffpt.deploy import deploy_checkpoint

        out = {}
        for m in MD_MODELS:
            path, meta = deploy_checkpoint(self.results[f"train_{m}"]["best_checkpoint"],
                                           self.path("models", f"{m}-deployed.pt"),
                                           dtype="float64")
            out[m] = {"artifact": str(path), "elements": list(meta.elements)}
        return out

    def md(self, which: str) -> dict:
        from ffpt.demo.lammps_md import run_nvt

        art = self.results["deploy"][which]
        st = run_nvt(
            artifact=art["artifact"], elements=art["elements"],
            start=self.results["ft_structures"]["md_start"],
            workdir=self.path("md", which, "x").parent,
            md=self.cfg["md"], stability=self.cfg["stability"], echo=self.echo,
            progress=self.progress,
        )
        return st

    # ------------------------------------------------------------------ stage 6/7
    def evaluate(self) -> dict:
        from ffpt.demo.report import test_errors

        pt_test = FrameSet.load(self.results["pt_data"]["test"])
        ft_test = FrameSet.load(self.results["ft_labels"]["test"])
        ck = {m: self.results[f"train_{m}"]["best_checkpoint"] for m in MODELS}
        return {
            "pt_on_pt_test": test_errors(ck["pt"], pt_test, max_frames=500),
            "pt_on_ft_test": test_errors(ck["pt"], ft_test, energies=False),
            "ft_on_ft_test": test_errors(ck["ft"], ft_test),
            "scratch_on_ft_test": test_errors(ck["scratch"], ft_test),
        }

    def report(self) -> dict:
        from ffpt.demo.report import write_report

        return write_report(self)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj
