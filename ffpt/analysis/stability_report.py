"""Summary of a stability study: ``summary.json``, ``summary.md``, ``survival.png``."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ffpt.analysis.stability import Criteria, kaplan_meier, km_median

_KINDS = (("non-finite", "non-finite positions"), ("atoms ", "atoms too close"),
          ("O atoms", "O-O collapse"), ("H atom", "H without O (dissociation)"),
          ("bond ", "bond length change"), ("new close contact", "new close contact"),
          ("temperature", "temperature blow-up"), ("LAMMPS", "LAMMPS error"))


def failure_kind(reason: str) -> str:
    """A short category of a failure reason (for the summary table)."""
    return next((kind for key, kind in _KINDS if reason.startswith(key)), reason)


def _cell(records: list[dict], reactive: bool) -> dict:
    """Statistics of the runs of one model at one temperature."""
    times = [r["time_ps"] for r in records]
    failed = [r["failed"] for r in records]
    t, s = kaplan_meier(times, failed)
    out = {
        "runs": len(records),
        "failed": int(sum(failed)),
        "fraction_surviving": 1.0 - sum(failed) / len(records),
        "median_time_to_failure_ps": km_median(t, s),
        "km_t_ps": t.tolist(), "km_survival": s.tolist(),
        "runs_detail": [{k: r[k] for k in ("seed", "failed", "time_ps", "reason")}
                        for r in sorted(records, key=lambda r: r["seed"])],
        "failure_reasons": dict(Counter(failure_kind(r["reason"]) for r in records
                                        if r["failed"])),
    }
    if reactive:
        ev = [r["event_time_ps"] is not None for r in records]
        te, se = kaplan_meier([r["event_time_ps"] if e else r["time_ps"]
                               for r, e in zip(records, ev, strict=True)], ev)
        out["composition_changed"] = int(sum(ev))
        out["median_time_to_composition_change_ps"] = km_median(te, se)
        out["first_changes"] = [r["composition_change"] for r in records if r["event_time_ps"]
                                is not None]
    return out


def summarize(records: list[dict], models: list[str], temperatures: list[float],
              criteria: Criteria, settings: dict) -> dict:
    """Per model and temperature: runs, failures, fraction surviving, KM median and curve."""
    table = {}
    for m in models:
        for temp in temperatures:
            recs = [r for r in records if r["model"] == m and r["temperature_K"] == temp]
            if recs:
                table.setdefault(m, {})[f"{temp:g}"] = _cell(recs, criteria.system == "reactive")
    return {"criteria": asdict(criteria), "settings": settings, "results": table}


def _fmt(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.3g}"


def write_report(summary: dict, outdir: str | os.PathLike) -> None:
    """``summary.json``, ``summary.md`` and ``survival.png`` in ``outdir`` (atomic writes)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    reactive = summary["criteria"]["system"] == "reactive"
    st = summary["settings"]
    lines = [
        "# MD stability", "",
        f"Start `{st['start']}`, system **{summary['criteria']['system']}**, {st['steps']} steps"
        f" x {st['timestep_fs']} fs, Langevin friction {st['friction_ps']} 1/ps, seeds "
        f"{', '.join(map(str, st['seeds']))}; frames checked every {st['dump_every']} steps.",
        f"Criteria: {json.dumps(summary['criteria'])} (see `ffpt.analysis.stability`).",
        "Median time to failure: Kaplan-Meier (runs that reach the end are censored); "
        "'not reached' when more than half survive.", "",
        "| model | T (K) | runs | failed | surviving | median time to failure (ps) |"
        + (" composition changed | median time to change (ps) |" if reactive else "")
        + " failure reasons |",
        "|---|---|---|---|---|---|" + ("---|---|" if reactive else "") + "---|",
    ]
    for m, per_t in summary["results"].items():
        for temp, c in per_t.items():
            row = (f"| {m} | {temp} | {c['runs']} | {c['failed']} | "
                   f"{c['fraction_surviving']:.0%} | {_fmt(c['median_time_to_failure_ps'])} |")
            if reactive:
                row += (f" {c['composition_changed']} | "
                        f"{_fmt(c['median_time_to_composition_change_ps'])} |")
            reasons = "; ".join(f"{k} ({n})" for k, n in c["failure_reasons"].items())
            lines.append(row + f" {reasons or '-'} |")
    lines += ["", "![survival](survival.png)", ""]
    for name, text in (("summary.json", json.dumps(summary, indent=1)),
                       ("summary.md", "\n".join(lines))):
        tmp = outdir / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, outdir / name)
    plot_survival(summary, outdir / "survival.png")


def plot_survival(summary: dict, path: Path) -> None:
    """Kaplan-Meier curves: one panel per temperature, one line per model, censored runs as
    '+' marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = sorted({t for per_t in summary["results"].values() for t in per_t}, key=float)
    t_end = summary["settings"]["steps"] * summary["settings"]["timestep_fs"] / 1000.0
    n_models = len(summary["results"])
    many = n_models > 6  # legend beside the panels, not over the curves
    fig, axes = plt.subplots(1, len(temps), figsize=(4.2 * len(temps) + 2.6 * many, 3.4),
                             squeeze=False, sharey=True)
    colours = plt.get_cmap("tab10" if n_models <= 10 else "tab20")  # one colour per model
    for ax, temp in zip(axes[0], temps, strict=True):
        for k, (m, per_t) in enumerate(summary["results"].items()):
            c = per_t.get(temp)
            if c is None:
                continue
            t, s = np.array(c["km_t_ps"]), np.array(c["km_survival"])
            color = colours(k)
            ax.step(np.append(t, t_end), np.append(s, s[-1]), where="post", color=color,
                    ls=("-", "--", ":")[k % 3] if many else "-",
                    label=f"{m} ({c['runs'] - c['failed']}/{c['runs']})")
            cens = [r["time_ps"] for r in c["runs_detail"] if not r["failed"]]
            if cens:
                s_at = [s[np.searchsorted(t, x, side="right") - 1] for x in cens]
                ax.plot(cens, s_at, "+", color=color, ms=10, mew=1.5)
        ax.set_title(f"{float(temp):g} K")
        ax.set_xlabel("time (ps)")
        ax.set_xlim(0, t_end * 1.03)
        ax.set_ylim(-0.03, 1.05)
        if not many:
            ax.legend(fontsize=8, loc="lower left")
    if many:
        axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    axes[0, 0].set_ylabel("fraction of runs stable (Kaplan-Meier)")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
