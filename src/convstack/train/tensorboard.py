"""``TensorBoardLogger``: a Trainer callback writing TensorBoard event files through tensorboardX.

    trainer = Trainer(model, optimizer, callbacks=[TensorBoardLogger("runs/tb/lenet5")])
    # then: tensorboard --logdir runs/tb

What it writes (tags as TensorBoard shows them):

    step/loss, step/accuracy, step/lr          every ``step_interval`` steps (x: global step)
    loss/train, loss/val, accuracy/train, accuracy/val, accuracy/val_top5, learning_rate,
    throughput/images_per_s, time/epoch_seconds                        each epoch (x: epoch)
    filters/LAYER, feature_maps/LAYER, grad_cam/LAYER                  pictures, each epoch
    weights/NAME, gradients/NAME                                      histograms, each epoch
    model/summary (text, at the start) and the hyperparameters with the final metrics
    (TensorBoard's HParams tab; the session's end is written when training ends)

tensorboardX is an optional dependency (``pip install 'convstack[tensorboard]'``),
imported when training starts; the pictures come from ``convstack.vis.snapshots``.
"""

from __future__ import annotations

import numpy

from convstack.models.summary import summary
from convstack.train.callbacks import Callback
from convstack.vis._model import conv_layer_names
from convstack.vis._plot import to_numpy
from convstack.vis.snapshots import (
    feature_maps_picture,
    filters_picture,
    first_input,
    gives_class_scores,
    grad_cam_pictures,
    upscale,
)

EPOCH_TAGS = {
    "loss": "loss/train",
    "val_loss": "loss/val",
    "acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "val_top5": "accuracy/val_top5",
    "lr": "learning_rate",
    "images_per_s": "throughput/images_per_s",
    "time": "time/epoch_seconds",
}
HPARAM_METRICS = ("accuracy/val", "loss/val", "accuracy/train", "loss/train")


def _summary_writer(log_dir):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(
            "TensorBoard logging needs tensorboardX, an optional dependency of convstack: "
            "pip install 'convstack[tensorboard]' (or pip install tensorboardX pillow)"
        ) from None
    return SummaryWriter(logdir=str(log_dir))


def _hparam_value(value):
    """A value TensorBoard's HParams tab takes (bool, number or string)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class TensorBoardLogger(Callback):
    """Log scalars, pictures, histograms and hyperparameters of a training run for TensorBoard.

    Args:
        log_dir: the folder of this run's event files (``tensorboard --logdir`` its parent
            to compare runs).
        samples: inputs (N, C, H, W) as the model takes them: feature maps of the first,
            Grad-CAMs of up to ``max_images``; default: the training set's first item
            (feature maps only).
        images: the same samples for display (e.g. raw uint8 (N, H, W)) under the Grad-CAMs.
        step_interval: write the per-step scalars every this many steps (0: never).
        histograms: write histograms of every parameter and its gradient each epoch.
        hparams: hyperparameters for the HParams tab; default: ``trainer.config``'s
            ``hyperparameters``, ``model`` and ``dataset``.
        max_images: Grad-CAMs per epoch.
        picture_size: pictures are enlarged (nearest neighbour) to at least this many
            pixels a side, since TensorBoard shows them at their own size.
    """

    def __init__(
        self,
        log_dir,
        samples=None,
        images=None,
        step_interval: int = 10,
        histograms: bool = True,
        hparams: dict | None = None,
        max_images: int = 4,
        picture_size: int = 192,
    ):
        for name, value in (("step_interval", step_interval), ("max_images", max_images)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"TensorBoardLogger: invalid value for argument `{name}`: expected a non-negative integer, "
                    f"received {value!r}"
                )
        self.log_dir = log_dir
        self.samples = None if samples is None else to_numpy(samples)
        if self.samples is not None and self.samples.ndim != 4:
            raise ValueError(
                "TensorBoardLogger: invalid value for argument `samples`: expected inputs (N, C, H, W), "
                f"received shape {self.samples.shape}"
            )
        self.images = images
        self.step_interval, self.histograms, self.hparams = step_interval, histograms, hparams
        self.max_images, self.picture_size = max_images, picture_size
        self.writer = None

    def on_fit_start(self, trainer):
        self.writer = _summary_writer(self.log_dir)
        if self.samples is None:
            first = first_input(getattr(trainer, "train_loader", None))
            self.samples = None if first is None or first.ndim != 3 else first[None]
        self._classifier = False
        if self.samples is not None:
            text = summary(trainer.model, tuple(self.samples.shape[1:]))
            self.writer.add_text("model/summary", "    " + text.replace("\n", "\n    "), trainer.epoch)
            self._classifier = gives_class_scores(trainer.model, self.samples[:1])
        self._hparams(trainer)

    def on_batch_end(self, trainer, batch, logs):
        if not self.step_interval or (batch + 1) % self.step_interval:
            return
        step = trainer.epoch * (logs.get("batches") or 0) + batch + 1
        self.writer.add_scalar("step/loss", logs["loss"], step)
        if logs.get("acc") is not None:
            self.writer.add_scalar("step/accuracy", logs["acc"], step)
        self.writer.add_scalar("step/lr", trainer.optimizer.param_groups[0]["lr"], step)

    def on_epoch_end(self, trainer, epoch, logs):
        step = epoch + 1
        for key, value in logs.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(EPOCH_TAGS.get(key, f"other/{key}"), value, step)
        self._pictures(trainer.model, step)
        if self.histograms:
            for name, param in trainer.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", to_numpy(param.data), step)
                if param.grad is not None:
                    self.writer.add_histogram(f"gradients/{name}", to_numpy(param.grad.data), step)
        self.writer.flush()

    def _pictures(self, model, step) -> None:
        convs = conv_layer_names(model)
        if not convs:
            return
        size = self.picture_size
        filters = filters_picture(model)
        self.writer.add_image(f"filters/{convs[0]}", upscale(filters, size), step, dataformats=_layout(filters))
        if self.samples is None:
            return
        maps = feature_maps_picture(model, convs[0], self.samples[0])
        self.writer.add_image(f"feature_maps/{convs[0]}", upscale(maps, 2 * size), step, dataformats="HW")
        count = min(self.max_images, len(self.samples))
        if count and self._classifier:  # Grad-CAM explains class scores (N, K)
            shown = None if self.images is None else to_numpy(self.images)[:count]
            cams, layer = grad_cam_pictures(model, self.samples[:count], shown)
            enlarged = numpy.stack([upscale(cam, size) for cam in cams])  # (N, H, W, 3)
            self.writer.add_images(f"grad_cam/{layer}", enlarged, step, dataformats="NHWC")

    def _hparams(self, trainer) -> None:
        """The HParams tab's records: the experiment and this session's start now, its end later.

        They go into this run's own folder (``SummaryWriter.add_hparams`` would make a sub-run),
        so that the tab reads the metrics from the run's own epoch scalars.
        """
        from tensorboardX.summary import hparams as hparams_summaries

        values = self.hparams
        if values is None:
            config = trainer.config or {}
            values = dict(config.get("hyperparameters") or {})
            values.update({key: config[key] for key in ("model", "dataset") if key in config})
        self._session_end = None
        if not values:
            return
        validating = getattr(trainer, "val_loader", None) is not None
        metrics = [tag for tag in HPARAM_METRICS if validating or "/val" not in tag]
        experiment, session_start, self._session_end = hparams_summaries(
            {key: _hparam_value(value) for key, value in values.items()}, dict.fromkeys(metrics, 0.0)
        )
        self.writer.file_writer.add_summary(experiment)
        self.writer.file_writer.add_summary(session_start)

    def on_fit_end(self, trainer):
        if self._session_end is not None:
            self.writer.file_writer.add_summary(self._session_end)
        self.writer.close()
        self.writer = None


def _layout(picture) -> str:
    return "HW" if picture.ndim == 2 else "HWC"
