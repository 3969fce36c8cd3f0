"""Write a :class:`~ffpt.analysis.scan.HoleReport`: CSV table, Markdown summary, PNGs."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from ffpt.analysis.scan import KINDS, HoleReport
from ffpt.data.frames import atomic_write

XLABELS = {"stretch": "bond length / r0", "bend": "angle (deg)", "approach": "pair distance (Å)"}
OUTPUTS = ("holes.csv", "holes.md", "scans.png", "flagged_scans.png")


def write_csv(report: HoleReport, path: str | os.PathLike) -> Path:
    """Every scan point: model, kind, atoms, coordinate, unit, E - E_ref, depth, flag."""
    buf = io.StringIO()
    w = None
    for row in report.rows():
        if w is None:
            w = csv.DictWriter(buf, fieldnames=list(row), lineterminator="\n")
            w.writeheader()
        w.writerow({k: f"{v:.6g}" if isinstance(v, float | np.floating) else v
                    for k, v in row.items()})  # fmt: skip
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))
    return Path(path)


def summary_markdown(report: HoleReport) -> str:
    """Per model: scans, flagged scans, worst dip and where; then the flagged scans."""
    counts = {k: sum(s.kind == k for s in report.scans) for k in KINDS}
    lines = [
        f"# Hole scan of {report.formula}",
        "",
        f"{len(report.scans)} rigid scans ({', '.join(f'{v} {k}' for k, v in counts.items())}). "
        f"A point is flagged `below_ref` when E − E_ref < −{report.tolerance:g} eV and `dip` "
        f"when it lies more than {report.threshold:g} eV below the highest energy met walking "
        "away from the reference geometry.",
        "",
        "| model | E_ref (eV) | scans | flagged scans | worst (eV below max) | where "
        "| min E − E_ref (eV) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in report.models:
        w = report.worst(m)
        where = w and f"{w['kind']} {w['label']} at {w['value']:.3g} {w['unit']} ({w['flag']})"
        lo = min(float(np.nanmin(r)) if np.isfinite(r).any() else np.nan for r in report.rel[m])
        lines.append(
            f"| {m} | {report.e_ref[m]:.6g} | {len(report.scans)} | "
            f"{len(report.flagged_scans(m))} | {w['depth']:.3g} | {where} | {lo:.3g} |"
            if w else
            f"| {m} | {report.e_ref[m]:.6g} | {len(report.scans)} | 0 | – | – | {lo:.3g} |"
        )  # fmt: skip
    flagged = [(m, s) for m in report.models for s in report.flagged_scans(m)]
    if flagged:
        lines += ["", "## Flagged scans", "",
                  "| model | kind | atoms | flagged points | first flagged at | deepest (eV) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for m, s in flagged:
            sc, f = report.scans[s], report.flags[m][s]
            bad = np.flatnonzero(f != "")
            walk = bad[np.argsort(np.abs(bad - sc.ref))]  # nearest to the reference first
            deep = report.severity(m, s)
            lines.append(f"| {m} | {sc.kind} | {sc.label} | {len(bad)} | "
                         f"{sc.values[walk[0]]:.3g} {sc.unit} | {deep.max():.3g} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _x(scan) -> np.ndarray:
    return scan.values / scan.values[scan.ref] if scan.kind == "stretch" else scan.values


def _draw(ax, report: HoleReport, scan_ids, ymax: float, colors) -> None:
    lo = 0.0
    for m in report.models:
        for s in scan_ids:
            rel = report.rel[m][s]
            if np.isfinite(rel).any():
                lo = min(lo, float(np.nanmin(rel)))
    lo = max(lo, -ymax) - 0.5
    hi = [float(np.nanmax(report.rel[m][s][report.flags[m][s] != ""], initial=-np.inf))
          for m in report.models for s in scan_ids]  # fmt: skip
    ymax = min(max([ymax, *(h + 0.5 for h in hi)]), 10 * ymax)  # show flagged points above ymax
    for m, c in zip(report.models, colors, strict=False):
        for n, s in enumerate(scan_ids):
            sc, rel = report.scans[s], report.rel[m][s]
            ax.plot(_x(sc), rel, color=c, lw=1.0, alpha=0.8, label=m if n == 0 else None)
            bad = report.flags[m][s] != ""
            if bad.any():
                y = np.clip(np.nan_to_num(rel[bad], nan=lo), lo, ymax)
                ax.plot(_x(sc)[bad], y, "x", color="red", ms=5)
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_ylim(lo, ymax)
    ax.set_ylabel("E − E_ref (eV)")


def plot_report(
    report: HoleReport, outdir: Path, ymax: float = 10.0, max_panels: int = 12
) -> list[Path]:
    """``scans.png``: one panel per scan kind, all models overlaid, flagged points as red x;
    ``flagged_scans.png`` (when any): the ``max_panels`` deepest flagged scans, one each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    kinds = [k for k in KINDS if any(s.kind == k for s in report.scans)]
    figs = []
    if kinds:
        fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4), squeeze=False)
        for ax, k in zip(axes[0], kinds, strict=True):
            ids = [s for s, sc in enumerate(report.scans) if sc.kind == k]
            _draw(ax, report, ids, ymax, colors)
            ax.set_xlabel(XLABELS[k])
            ax.set_title(k)
            ax.legend(fontsize=7)
        fig.suptitle(f"{report.formula}: rigid scans (red x: flagged)")
        figs.append((fig, outdir / "scans.png"))
    score: dict[int, float] = {}
    for m in report.models:
        for s in report.flagged_scans(m):
            score[s] = max(score.get(s, -np.inf), float(report.severity(m, s).max()))
    worst = sorted(score, key=score.get, reverse=True)[:max_panels]
    if worst:
        ncol = min(4, len(worst))
        nrow = -(-len(worst) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.3 * nrow), squeeze=False)
        for ax in axes.flat[len(worst):]:
            ax.set_visible(False)
        for ax, s in zip(axes.flat, worst, strict=False):
            sc = report.scans[s]
            _draw(ax, report, [s], ymax, colors)
            ax.set_title(f"{sc.kind} {sc.label}", fontsize=9)
            ax.set_xlabel(XLABELS[sc.kind])
            ax.legend(fontsize=6)
        fig.suptitle(f"{report.formula}: flagged scans (deepest first)")
        figs.append((fig, outdir / "flagged_scans.png"))
    paths = []
    for fig, path in figs:
        fig.tight_layout()
        atomic_write(path, lambda f, fig=fig: fig.savefig(f, format="png", dpi=110))
        plt.close(fig)
        paths.append(path)
    return paths


def read_scan_csv(path: str | os.PathLike) -> dict[tuple[str, str], dict]:
    """``holes.csv`` back as ``(model, atoms) -> {kind, unit, x, rel}`` (sorted by ``x``)."""
    rows: dict[tuple[str, str], dict] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            d = rows.setdefault((r["model"], r["atoms"]), {"kind": r["kind"], "unit": r["unit"],
                                                          "x": [], "rel": []})
            d["x"].append(float(r["coordinate"]))
            d["rel"].append(float(r["e_minus_ref_eV"]))
    for d in rows.values():
        order = np.argsort(d["x"])
        d["x"], d["rel"] = np.asarray(d["x"])[order], np.asarray(d["rel"])[order]
    return rows


def plot_named_scans(csv_path: str | os.PathLike, labels: list[str], png: str | os.PathLike,
                     ymax: float = 10.0, title: str = "") -> Path:
    """The scans ``labels`` (e.g. ``"C10-O12-H20"``) of a ``holes.csv``, one panel each, every
    model overlaid: how the models' energies rise (or fall) along chosen coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_scan_csv(csv_path)
    models = list(dict.fromkeys(m for m, _ in rows))
    missing = [lb for lb in labels if not any(a == lb for _, a in rows)]
    if missing:
        raise ValueError(f"{csv_path}: no scan {missing}; scans are named like "
                         f"{next(iter(rows))[1]!r} (see holes.md)")
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.6), squeeze=False)
    for ax, lb in zip(axes[0], labels, strict=True):
        lo = 0.0
        for m in models:
            d = rows.get((m, lb))
            if d is not None:
                ax.plot(d["x"], d["rel"], lw=1.2, label=m)
                lo = min(lo, float(np.nanmin(d["rel"])))
        d = next(rows[(m, lb)] for m in models if (m, lb) in rows)
        ax.axhline(0.0, color="0.7", lw=0.8)
        ax.set_ylim(max(lo, -ymax) - 0.3, ymax)
        ax.set_xlabel(XLABELS[d["kind"]].replace("bond length / r0", f"bond length ({d['unit']})"))
        ax.set_ylabel("E − E_ref (eV)")
        ax.set_title(f"{d['kind']} {lb}", fontsize=9)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(png, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return Path(png)


def write_report(report: HoleReport, outdir: str | os.PathLike, ymax: float = 10.0) -> dict:
    """``holes.csv``, ``holes.md`` and the PNGs in ``outdir``; returns {name: path}."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    out = {"csv": write_csv(report, outdir / "holes.csv")}
    md = summary_markdown(report)
    atomic_write(outdir / "holes.md", lambda f: f.write(md.encode()))
    out["md"] = outdir / "holes.md"
    for p in plot_report(report, outdir, ymax=ymax):
        out[p.stem] = p
    return out
