"""Copy the reports of the strategy runs into benchmarks/results/ft_strategies/<system>/
(report.md, summary.json, PNGs; no raw MD) with the machine, date and wall time."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results" / "ft_strategies"


def machine() -> str:
    from ffpt.provenance import machine_summary

    return machine_summary()


def collect(system: str) -> None:
    run = ROOT / "runs" / "ft_strategies" / system / "report"
    if not (run / "summary.json").exists():
        raise SystemExit(f"{run}/summary.json missing: run "
                         f"benchmarks/ft_strategies/run.sh {system}")
    dst = OUT / system
    dst.mkdir(parents=True, exist_ok=True)
    for f in run.iterdir():
        if f.suffix in (".png", ".md", ".json"):
            shutil.copy2(f, dst / f.name)
    summary = json.loads((run / "summary.json").read_text())
    wall = sum(summary["stage_seconds"].values())
    meta = {
        "system": system,
        "machine": machine(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime((run / "summary.json").stat()
                                                               .st_mtime)),
        "wall_time_s_all_stages": round(wall),
        "load_average_at_report": summary.get("load_average_at_report"),
        "command": f"benchmarks/ft_strategies/run.sh {system}",
    }
    (dst / "run_info.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{system}: copied to {dst} ({meta['date_utc']}, {wall:.0f} s of stages)")


if __name__ == "__main__":
    for s in sys.argv[1:] or ["water", "rxn09"]:
        collect(s)
