"""The FFPT-FT comparison as resumable stages: PT data -> FT data -> PT model -> fine-tuned
variants and the scratch baseline on the same FT data and budget -> deploy -> test errors,
hole scans and multi-seed MD survival -> report.

``ffpt demo`` runs it on water with one fine-tuning strategy; the strategy benchmark
(``benchmarks/ft_strategies``) runs the same chain with several variants.

Each stage records ``<run_dir>/.stages/<name>.json`` (a hash of the config it depended on,
its outputs, its wall time). A rerun skips stages whose record matches; a changed setting
reruns that stage and everything downstream (the hash chains through ``upstream``). Every
budget is in epochs or optimiser steps, so the same config gives the same models on a busy
or an idle machine; only the wall times differ.
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


class StopAfter(Exception):
    """Raised after the stage named by ``until`` (``ffpt demo --until``)."""


class Pipeline:
    """Runs named stages in order with skip-if-done records."""

    def __init__(self, cfg: dict, run_dir: str | Path, fresh: bool = False,
                 progress: bool = True, echo: Callable[[str], None] = click.echo,
                 until: str | None = None) -> None:
        self.cfg = cfg
        self.until = until
        self.run = Path(run_dir)
        self.progress = progress
        self.echo = echo
        self.variants: list[str] = list(cfg["train"]["variants"])
        if any(v == "pt" or v.startswith("pt_") for v in self.variants):
            raise click.ClickException("'pt' and 'pt_*' name pre-trained models; name variants "
                                       "otherwise")
        #: more PT models (``pt_extra``: name -> pt_data / train overrides of the main PT);
        #: a variant starts from one with ``init: pt:<name>``
        self.extra_pts: list[str] = list(cfg.get("pt_extra") or {})
        for v, spec in cfg["train"]["variants"].items():
            init = _init(spec)
            if init and init != "pt" and init[3:] not in self.extra_pts:
                raise click.ClickException(
                    f"variant {v}: init {init!r} names no PT model; add it under pt_extra "
                    f"(defined: {self.extra_pts or 'none'})")
        self.stages = (
            ["pt_data", "ft_structures", "ft_labels", "train_pt"]
            + [s for n in self.extra_pts for s in (f"pt_data_{n}", f"train_pt_{n}")]
            + [f"train_{v}" for v in self.variants]
            + ["deploy", "evaluate", "scan", "stability", "report"]
        )
        from ffpt.demo import extra_stages  # paper experiments: off unless cfg["paper"]

        pre, post = extra_stages.extra_stage_names(cfg)
        self.stages = pre + self.stages + post
        if until is not None and until not in self.stages:
            raise click.ClickException(f"--until {until}: no such stage; this config has "
                                       f"{', '.join(self.stages)}")
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

    def stage(self, name: str, deps: Any, upstream: tuple[str, ...], fn: Callable[[], dict],
              inputs: Any = ()):
        """Run ``fn`` unless a record with the same hash (``deps`` + the upstream hashes)
        exists. ``inputs`` are the user files the stage reads (paths, lists of paths or None):
        their SHA-256 is recorded, and an edited file under the same path reruns the stage and,
        through a new hash for them, every stage downstream."""
        k = self.stages.index(name) + 1
        n = len(self.stages)
        files = _input_files(inputs)
        h = stage_hash(deps, [self.hashes[u] for u in upstream])
        rec_path = self.run / ".stages" / f"{name}.json"
        salt = None  # set when an input file changed: the stages downstream must rerun too
        if rec_path.exists():
            rec = json.loads(rec_path.read_text())
            changed = [p for p, sha in (rec.get("inputs") or {}).items() if files.get(p) != sha]
            if rec.get("hash") == h and changed:
                self.echo(f"[{k}/{n}] {name}: input changed since it ran ({', '.join(changed)})")
                salt = stage_hash(sorted(files.items()))
            elif rec.get("hash") == h:
                self.echo(f"[{k}/{n}] {name}: done earlier, skipped ({rec['seconds']:.0f} s then)")
                if files and "inputs" not in rec:  # a record from before input hashing
                    rec["inputs"] = files
                    atomic_write(rec_path, lambda f: f.write(
                        json.dumps(rec, indent=1, default=str).encode()))
                self.results[name], self.hashes[name] = rec["result"], _salted(h, rec.get("salt"))
                self.times[name] = rec["seconds"]
                if name == self.until:
                    raise StopAfter(name)
                return rec["result"]
        self.echo(f"[{k}/{n}] {name} ...")
        t0 = time.perf_counter()
        result = _jsonable(fn())
        dt = time.perf_counter() - t0
        rec = {"hash": h, "seconds": dt, "result": result, "inputs": files, "salt": salt}
        h = _salted(h, salt)
        atomic_write(rec_path, lambda f: f.write(json.dumps(rec, indent=1, default=str).encode()))
        self.results[name], self.hashes[name], self.times[name] = result, h, dt
        self.echo(f"[{k}/{n}] {name}: done in {dt:.0f} s")
        if name == self.until:
            raise StopAfter(name)
        return result

    # ------------------------------------------------------------------ the chain
    def run_all(self) -> Path:
        c = self.cfg
        from ffpt.demo import extra_stages

        pre = extra_stages.before(self)  # stages that write the FT file ft_data.path names
        pt = {k: v for k, v in c["pt_data"].items() if k != "teacher_options" or v}
        self.stage("pt_data", [pt, c["seed"]], (), self.make_pt_data, inputs=pt.get("path"))
        sampling = {k: v for k, v in c["ft_data"].items()
                    if k not in ("label", "test_fraction", "max_train_frames")}
        self.stage("ft_structures", [sampling, c["seed"], c["stability"]["start"]], pre,
                   self.make_ft_structures,
                   inputs=[c["ft_data"].get("path"), c["stability"]["start"]])
        self.stage("ft_labels", [c["ft_data"]["label"], c["ft_data"]["test_fraction"],
                                 c["ft_data"]["max_train_frames"]],
                   ("ft_structures",), self.make_ft_labels)
        common = [c["model"], c["train"]["common"], c["seed"]]
        self.stage("train_pt", [*common, c["train"]["pt"]], ("pt_data",),
                   lambda: self.train_one("pt"))
        for n in self.extra_pts:
            pn = self.pt_data_cfg(n)
            pn = {k: v for k, v in pn.items() if k != "teacher_options" or v}
            self.stage(f"pt_data_{n}", [pn, c["seed"]], (), lambda n=n: self.make_pt_data(n),
                       inputs=pn.get("path"))
            self.stage(f"train_pt_{n}", [*common, self.pt_train_spec(n)], (f"pt_data_{n}",),
                       lambda n=n: self.train_one(f"pt_{n}"))
        for v in self.variants:
            spec = c["train"]["variants"][v]
            init = _init(spec)
            up = (_pt_stage(init), "ft_labels") if init else ("ft_labels",)
            self.stage(f"train_{v}", [*common, spec], up, lambda v=v: self.train_one(v))
        trained = tuple(f"train_{v}" for v in self.variants)
        self.stage("deploy", [c["stability"]["deploy_dtype"]], trained, self.deploy)
        self.stage("evaluate", [EVALUATE_VERSION],
                   ("train_pt", "ft_labels", *trained,
                    *(s for n in self.extra_pts for s in (f"pt_data_{n}", f"train_pt_{n}"))),
                   self.evaluate)
        self.stage("scan", [c["scan"]], ("train_pt", *trained), self.scan)
        stab = {k: v for k, v in c["stability"].items() if k != "jobs"}
        from ffpt.lammps.io import THERMOSTAT  # a new thermostat recipe reruns the MD

        self.stage("stability", [stab, THERMOSTAT], ("deploy", "ft_structures"),
                   self.stability)
        self.stage("report", [], ("evaluate", "scan", "stability"), self.report)
        extra_stages.after(self)
        return self.run / "report" / "report.md"

    # ------------------------------------------------------------------ stage 1
    def pt_data_cfg(self, name: str | None = None) -> dict:
        """``pt_data`` of the main PT model, or with ``pt_extra[name].pt_data`` over it."""
        p = dict(self.cfg["pt_data"])
        if name is not None:
            p.update((self.cfg["pt_extra"][name] or {}).get("pt_data") or {})
        return p

    def pt_train_spec(self, name: str | None = None) -> dict:
        """``train.pt``, or with ``pt_extra[name].train`` over it."""
        spec = dict(self.cfg["train"]["pt"])
        if name is not None:
            spec.update((self.cfg["pt_extra"][name] or {}).get("train") or {})
        return spec

    def make_pt_data(self, name: str | None = None) -> dict:
        from ffpt.data.readers import read_frames, split_indices

        p = self.pt_data_cfg(name)
        tag = f"_{name}" if name else ""
        if p["path"]:
            fs = read_frames(p["path"])
            source = p["path"]
        else:
            from ffpt.sampling import generate_pt_data
            from ffpt.sampling.spec import build_teachers

            teachers, weights = build_teachers(p["teacher"], p.get("species"),
                                               **(p.get("teacher_options") or {}))
            fs = generate_pt_data(teachers, int(p["n_frames"]), sigma=float(p["sigma"]),
                                  seed=int(self.cfg["seed"]), proportions=weights,
                                  progress=self.progress)
            source = f"{p['teacher']} rattled, sigma {p['sigma']} A"
            if p.get("species"):
                source += f", species {p['species']}"
            if p.get("teacher_options"):
                source += f", {p['teacher_options']}"
        n_all, note = fs.n_frames, ""
        if p.get("max_force") or p.get("max_energy"):
            fmax = np.array([np.abs(fs.forces[fs.frame_slice(i)]).max()
                             for i in range(fs.n_frames)])
            keep = np.ones(fs.n_frames, bool)
            if p.get("max_force"):
                keep &= fmax <= float(p["max_force"])
            if p.get("max_energy"):
                keep &= fs.energy <= float(p["max_energy"])
            fs = fs.subset(np.flatnonzero(keep))
            note = (f"kept {fs.n_frames}/{n_all} frames with max |F| <= {p.get('max_force')} "
                    f"eV/A and E <= {p.get('max_energy')} eV")
        tr, _, te = split_indices(fs.n_frames, 0.0, float(p["test_fraction"]),
                                  int(self.cfg["seed"]))
        fs.subset(tr).save(self.path("data", f"pt{tag}_train.npz"))
        fs.subset(te).save(self.path("data", f"pt{tag}_test.npz"))
        return {"source": source, "filter": note, "n_train": len(tr), "n_test": len(te),
                "train": str(self.path("data", f"pt{tag}_train.npz")),
                "test": str(self.path("data", f"pt{tag}_test.npz"))}

    # ------------------------------------------------------------------ stage 2
    def make_ft_structures(self) -> dict:
        f = self.cfg["ft_data"]
        if f["path"]:
            from ffpt.data.readers import read_frames

            paths = f["path"] if isinstance(f["path"], list) else [f["path"]]
            sets = []
            for src in map(Path, paths):
                if not src.exists():
                    raise click.ClickException(
                        f"ft_data.path {src} does not exist; give labelled extxyz/.npz files "
                        "(or unset ft_data.path to sample and label water with xTB)"
                    )
                sets.append(read_frames(src, energy_key=f["energy_key"],
                                        forces_key=f["forces_key"]))
            fs = sets[0] if len(sets) == 1 else FrameSet.concatenate(sets)
            fs.save(self.path("data", "ft_labelled_input.npz"))
            start = fs.to_atoms(0) if not self.cfg["stability"]["start"] else None
            kind = "user data " + ", ".join(Path(p).name for p in paths)
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
        if self.cfg["stability"]["start"]:
            from ase.io import read

            start = read(self.cfg["stability"]["start"])
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
        if f["max_train_frames"] and len(tr) > int(f["max_train_frames"]):
            rng = np.random.default_rng(int(self.cfg["seed"]) + 1)
            tr = np.sort(rng.choice(tr, int(f["max_train_frames"]), replace=False))
        fs.subset(tr).save(self.path("data", "ft_train.npz"))
        fs.subset(te).save(self.path("data", "ft_test.npz"))
        return {"method": method, "n_train": len(tr), "n_test": len(te),
                "train": str(self.path("data", "ft_train.npz")),
                "test": str(self.path("data", "ft_test.npz"))}

    # ------------------------------------------------------------------ stage 4
    def training_config(self, which: str) -> dict:
        """The ``ffpt train`` config of the PT model or of one variant."""
        c = self.cfg
        init = None
        if which == "pt" or which.startswith("pt_"):
            name = which[3:] or None
            mode, spec = "pretrain", self.pt_train_spec(name)
            data = self.results["pt_data" + (f"_{name}" if name else "")]
        else:
            spec = dict(c["train"]["variants"][which])
            init = _init(spec)
            mode = "finetune" if init else "scratch"
            data = self.results["ft_labels"]
        spec.pop("init", None)
        config = {
            "mode": mode,
            "init_from": self.results[_pt_stage(init)]["best_checkpoint"] if init else None,
            "seed": int(c["seed"]),
            "data": {"train": data["train"], "test": data["test"], "val_fraction": 0.1},
            "model": dict(c["model"]),
            "training": {**c["train"]["common"], **spec},
        }
        if mode == "finetune" and spec.get("ft_strategy") == "replay":
            replay = dict(config["training"].get("replay") or {})
            replay.setdefault("data", self.results[_pt_stage(init).replace(
                "train_pt", "pt_data")]["train"])
            config["training"]["replay"] = replay
        return config

    def train_one(self, which: str) -> dict:
        from ffpt.train import train

        config = self.training_config(which)
        run_dir = self.run / "train" / which
        # the data behind the paths in config count too: the upstream stages' hashes
        if which == "pt" or which.startswith("pt_"):
            upstream = ["pt_data" + which[2:]]
        else:
            init = _init(self.cfg["train"]["variants"][which])
            upstream = ["ft_labels", _pt_stage(init)] if init else ["ft_labels"]
        tag = stage_hash(_without_budget(config), [self.hashes[u] for u in upstream])
        tag_file = run_dir / "demo_config_hash.txt"
        # same settings apart from the budget (max_epochs/max_steps): continue from last.pt
        resume = (run_dir / "last.pt").exists() and tag_file.exists() and (
            tag_file.read_text().strip() == tag) and not _budget_lowered(run_dir, config)
        if resume:  # interrupted earlier, or the budget was raised: continue from last.pt
            self.echo(f"    resuming {which} training from {run_dir / 'last.pt'}")
        elif run_dir.exists():
            shutil.rmtree(run_dir)  # changed settings: this stage's own folder starts over
        run_dir.mkdir(parents=True, exist_ok=True)
        tag_file.write_text(tag + "\n")
        res = train(config, run_dir, resume=resume, progress=self.progress)
        return {"best_checkpoint": str(res.best_checkpoint),
                "last_checkpoint": str(res.last_checkpoint), "log_csv": str(res.log_csv),
                "epochs": int(res.epochs), "metrics": _jsonable(res.metrics),
                "training": _jsonable(config["training"]), "mode": config["mode"]}

    # ------------------------------------------------------------------ stage 5
    def deploy(self) -> dict:
        out = {}
        for v in self.variants:
            path, meta = deploy_keeping_same(self.results[f"train_{v}"]["best_checkpoint"],
                                             self.path("models", f"{v}-deployed.pt"),
                                             dtype=self.cfg["stability"]["deploy_dtype"])
            out[v] = {"artifact": str(path), "elements": list(meta.elements)}
        return out

    # ------------------------------------------------------------------ stage 6
    def pt_test_frames(self) -> FrameSet:
        """PT test frames that no PT model trained on. The ``pt_extra`` data sets are rattled
        from the same seed, so the main set's test frames can be in an extra model's training
        frames: with extras, the union of every PT test set less every PT training frame."""
        if not self.extra_pts:
            return FrameSet.load(self.results["pt_data"]["test"])
        from ffpt.labelling.label import structure_hash

        def hashes(fs: FrameSet) -> list[str]:
            return [structure_hash(a) for a in fs.iter_atoms()]

        stages = ["pt_data", *(f"pt_data_{n}" for n in self.extra_pts)]
        seen = set()
        for st in stages:
            seen.update(hashes(FrameSet.load(self.results[st]["train"])))
        kept = []
        for st in stages:
            fs = FrameSet.load(self.results[st]["test"])
            idx = []
            for i, h in enumerate(hashes(fs)):  # each frame once, none that any PT trained on
                if h not in seen:
                    seen.add(h)
                    idx.append(i)
            if idx:
                kept.append(fs.subset(idx))
        if not kept:
            raise click.ClickException("every PT test frame is in some PT model's training "
                                       "frames; give pt_extra a data set of its own")
        return FrameSet.concatenate(kept)

    def evaluate(self) -> dict:
        pt_test = self.pt_test_frames()
        ft_test = FrameSet.load(self.results["ft_labels"]["test"])
        ck = {m: self.results[f"train_{m}"]["best_checkpoint"] for m in ["pt", *self.variants]}
        out = {"pt_on_pt_test": test_errors(ck["pt"], pt_test, max_frames=500),
               "pt_on_ft_test": test_errors(ck["pt"], ft_test)}
        for n in self.extra_pts:  # the pt_extra models on the same frames
            out[f"pt_{n}_on_pt_test"] = test_errors(
                self.results[f"train_pt_{n}"]["best_checkpoint"], pt_test, max_frames=500)
        for v in self.variants:
            out[f"{v}_on_ft_test"] = test_errors(ck[v], ft_test)
            # distance from the force field on rattled frames (scratch: never saw it)
            out[f"{v}_on_pt_test"] = test_errors(ck[v], pt_test, max_frames=500)
        return out

    # ------------------------------------------------------------------ stage 7
    def scan(self) -> dict:
        from ffpt.demo.checks import run_scans

        return run_scans(self)

    # ------------------------------------------------------------------ stage 8
    def stability(self) -> dict:
        from ffpt.demo.checks import run_survival

        return run_survival(self)

    # ------------------------------------------------------------------ stage 9
    def report(self) -> dict:
        from ffpt.demo.report import write_report

        return write_report(self)


#: the version of :meth:`Pipeline.evaluate`'s output, part of its stage hash (2: every
#: variant's errors on the PT test set too; 3: that set held out from every PT model, see
#: :meth:`Pipeline.pt_test_frames`, and the pt_extra models on it); a new version
#: re-evaluates, nothing retrains
EVALUATE_VERSION = 4


def _without_budget(config: dict) -> dict:
    """The training config less the keys a resume may change (ffpt.train.rundir allows them)."""
    training = {k: v for k, v in config["training"].items()
                if k not in ("max_epochs", "max_steps", "max_time_min")}
    return {**config, "training": training}


def _input_files(inputs: Any) -> dict[str, str]:
    """{path: SHA-256} of the existing files among ``inputs`` (a path, a list, or None)."""
    from ffpt.provenance import file_sha256

    paths = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    out: dict[str, str] = {}
    for p in paths:
        if isinstance(p, (list, tuple)):
            out.update(_input_files(p))
        elif p and Path(p).is_file():
            out[str(p)] = file_sha256(p)
    return out


def _salted(h: str, salt: str | None) -> str:
    """The hash the stages downstream see: ``h``, or ``h`` with the input files' hash when
    the stage reran because one of them changed."""
    return stage_hash(h, salt) if salt else h


def _budget_lowered(run_dir: Path, config: dict) -> bool:
    """True when a finished run in ``run_dir`` trained more epochs or steps than the budget in
    ``config`` now allows: continuing it would report a longer-trained model under the lower
    budget, so the stage starts over."""
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        return False
    done = json.loads(metrics.read_text())
    t = config["training"]
    return any(t.get(k) is not None and int(done.get(n, 0)) > int(t[k])
               for k, n in (("max_epochs", "epochs"), ("max_steps", "steps")))


def _init(spec: dict) -> str | None:
    """``'pt'``, ``'pt:<name>'`` (a ``pt_extra`` model) or ``None`` (from scratch)."""
    init = spec.get("init", "pt")
    if init in (None, "none", "scratch"):
        return None
    if init == "pt" or (isinstance(init, str) and init.startswith("pt:") and len(init) > 3):
        return init
    raise click.ClickException(f"variant init must be 'pt', 'pt:<name>' or none, not {init!r}")


def _pt_stage(init: str) -> str:
    """The training stage of the PT model a variant starts from."""
    return "train_pt" if init == "pt" else f"train_pt_{init[3:]}"


def pt_stage_names(pipe) -> list[str]:
    """The PT data and PT training stages (a child run copies their records)."""
    return ["pt_data", "train_pt"] + [s for n in pipe.extra_pts
                                      for s in (f"pt_data_{n}", f"train_pt_{n}")]


def test_errors(checkpoint: str, frames: FrameSet, max_frames: int | None = None) -> dict:
    """Energy MAE (meV/atom) and force MAE/RMSE (meV/A) of a checkpoint on labelled frames,
    evaluated in float64 (``ffpt.train.metrics.evaluate``)."""
    from ffpt.data.graph import GraphSet
    from ffpt.model.checkpoint import load_model
    from ffpt.train.metrics import evaluate

    if max_frames is not None and frames.n_frames > max_frames:
        frames = frames.subset(np.arange(max_frames))
    model = load_model(checkpoint, dtype="float64")
    m = evaluate(model, GraphSet(frames, model.elements, model.cutoff, progress=False))
    return {"n_frames": m["n_frames"],
            "energy_mae_meV_atom": 1000 * m["energy_per_atom_mae"],
            "forces_mae_meV_A": 1000 * m["forces_mae"],
            "forces_rmse_meV_A": 1000 * m["forces_rmse"]}


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


def deploy_keeping_same(checkpoint, output: Path, dtype: str):
    """``deploy_checkpoint``, but an existing artifact of the same model stays as it is.
    TorchScript archives are not byte-reproducible (a random serialization id, attribute
    order), so a redeployed unchanged checkpoint would get a new file hash, and every MD run
    keyed to the old hash would count as made with another model and be rerun. "Same" is
    the whole metadata (weights hash, dtype, elements, cutoff, versions, source) except the
    artifact's own hash, of an artifact that passes verification (a modified or corrupt one
    is replaced)."""
    from dataclasses import asdict

    from ffpt.deploy import deploy_checkpoint
    from ffpt.deploy.artifact import verify_artifact
    from ffpt.deploy.trust import ArtifactError

    output = Path(output)
    fresh = output.with_name(f".{output.stem}.new{output.suffix}")
    _, meta = deploy_checkpoint(checkpoint, fresh, dtype=dtype)
    try:
        old = verify_artifact(output)[0] if output.is_file() else None
    except ArtifactError:
        old = None

    def ident(m) -> dict:
        return {k: x for k, x in asdict(m).items() if k != "artifact_sha256"}

    if old is not None and ident(old) == ident(meta):
        fresh.unlink()
        return output, old
    fresh.replace(output)
    return output, meta
