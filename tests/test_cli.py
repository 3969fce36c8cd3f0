"""The training CLI end to end, and README's commands (each one exists and is documented)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, morse_frames

from ffpt.cli import COMMANDS, main


def test_train_evaluate_info_cli(tmp_path):
    morse_frames(16, seed=0).save(tmp_path / "train.npz")
    morse_frames(6, seed=1).save(tmp_path / "test.extxyz")
    cfg = {"data": {"train": "train.npz", "val_fraction": 0.25},
           "model": {"features": 8, "num_radial": 4, "num_interactions": 1, "cutoff": 3.0},
           "training": {"max_epochs": 2, "batch_size": 4}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner()
    out = r.invoke(main, ["train", str(tmp_path / "cfg.yaml"), "-o", str(tmp_path / "run"),
                          "--no-progress", "training.max_epochs=3"])
    assert out.exit_code == 0, out.output
    ck = tmp_path / "run" / "best.pt"
    assert ck.exists()
    from ffpt.model import load_checkpoint

    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 3  # override applied
    out = r.invoke(main, ["evaluate", str(ck), str(tmp_path / "test.extxyz"),
                          "--png", str(tmp_path / "parity.png")])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.output[: out.output.rindex("}") + 1])
    assert metrics["n_frames"] == 6 and metrics["forces_mae"] > 0
    assert (tmp_path / "parity.png").stat().st_size > 1000
    out = r.invoke(main, ["info", str(ck)])
    assert out.exit_code == 0 and "elements       H O" in out.output
    # typos and missing files are clear errors, not tracebacks
    out = r.invoke(main, ["train", str(tmp_path / "cfg.yaml"), "training.lr_typo=1"])
    assert out.exit_code != 0 and "unknown key 'lr_typo'" in out.output
    out = r.invoke(main, ["info", str(tmp_path / "test.extxyz")])
    assert out.exit_code != 0 and "not a readable ffpt checkpoint" in out.output


def test_readme_commands_exist_and_have_help():
    readme = (REPO / "README.md").read_text()
    used = set(re.findall(r"ffpt (?!-)([a-z][a-z-]+)", readme)) & set(COMMANDS) | {"train"}
    assert {"train", "evaluate", "info", "pt-data", "demo", "label"} <= used
    r = CliRunner()
    for cmd in sorted(used):
        out = r.invoke(main, [cmd, "--help"])
        assert out.exit_code == 0, (cmd, out.output)
        assert "unavailable" not in out.output, (cmd, out.output)


def test_readme_config_example_is_valid():
    from ffpt.train import resolve

    readme = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    cfg = resolve(yaml.safe_load(block))
    assert cfg["mode"] == "finetune" and cfg["training"]["lr"] == 1e-4


@pytest.mark.parametrize("path", sorted((REPO / "inputs").rglob("*.yaml")))
def test_example_training_configs_resolve(path):
    from ffpt.train import load_config

    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict) or "data" not in cfg or "training" not in cfg:
        pytest.skip("not a training config")
    load_config(path)
