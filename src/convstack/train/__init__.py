"""Training: the ``Trainer`` loop, evaluation, metrics and callbacks."""

from convstack.train.callbacks import Callback, EarlyStopping, HistoryWriter, ProgressBar
from convstack.train.metrics import confusion_matrix, format_confusion, per_class_accuracy, topk_correct
from convstack.train.trainer import NonFiniteLossError, Trainer, evaluate

__all__ = [
    "Callback",
    "EarlyStopping",
    "HistoryWriter",
    "ProgressBar",
    "Trainer",
    "NonFiniteLossError",
    "evaluate",
    "confusion_matrix",
    "format_confusion",
    "per_class_accuracy",
    "topk_correct",
]
