"""Training stage: configs, the scratch/pretrain/finetune loop, metrics."""

from ffpt.train.config import DEFAULTS, load_config, resolve
from ffpt.train.metrics import evaluate
from ffpt.train.trainer import TrainResult, load_splits, train

__all__ = ["DEFAULTS", "TrainResult", "evaluate", "load_config", "load_splits", "resolve", "train"]
