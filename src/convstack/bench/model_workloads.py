"""Whole-model workloads: a LeNet-5 training epoch, ResNet-20 training step and inference, VGG-11 inference.

Each convstack model has a hand-written PyTorch twin (``convstack.bench.twins``) with the same
architecture; the twin starts from a copy of convstack's weights and both are fed the same
arrays. Both loops are the bare minimum (zero_grad, forward, cross-entropy, backward, step):
no data loader, no metrics, so that the rows compare the frameworks and nothing else.
"""

from __future__ import annotations

import math
import time

import numpy

from convstack.bench.layer_workloads import random_arrays
from convstack.bench.runner import Workload, timed

LENET_BATCH = 64
LENET_LR, LENET_MOMENTUM = 0.05, 0.9
RESNET_BATCH = 128
VGG_BATCH, VGG_SIZE = 16, 64


def fashion_mnist_arrays(context: dict):
    """The Fashion-MNIST training images as float32 (N, 1, 28, 28) in [0, 1], shuffled once (seed 0).

    The full training set when the official files are in ``/usr/share/datasets/fashion-mnist``,
    otherwise the sample bundled with convstack; ``context['lenet_data']`` says which. Loaded
    once per run and shared by both frameworks.
    """
    if "lenet_images" not in context:
        from convstack.data.fashion_mnist import SYSTEM_DIR, fashion_mnist

        if SYSTEM_DIR.is_dir():
            dataset = fashion_mnist("train", root=SYSTEM_DIR, download=False)
        else:
            dataset = fashion_mnist("train", sample=True)
        order = numpy.random.default_rng(0).permutation(len(dataset))
        images = dataset.images[order].astype(numpy.float32) / numpy.float32(255)
        context["lenet_images"] = numpy.ascontiguousarray(images.reshape(len(dataset), 1, 28, 28))
        context["lenet_labels"] = dataset.labels[order].astype(numpy.int64)
        context["lenet_data"] = f"{len(dataset)} images from {dataset.source}"
    return context["lenet_images"], context["lenet_labels"]


def _epoch_plan(context: dict):
    """The batches one rep runs, and the factor that extrapolates them to the whole epoch."""
    images, labels = fashion_mnist_arrays(context)
    batches = math.ceil(len(images) / LENET_BATCH)
    used = max(1, math.ceil(batches * context.get("epoch_fraction", 1.0)))
    bounds = [(i * LENET_BATCH, min((i + 1) * LENET_BATCH, len(images))) for i in range(used)]
    samples = bounds[-1][1]
    return images, labels, bounds, len(images) / samples


def _lenet_convstack(context):
    import convstack as cs
    import convstack.nn.functional as F
    from convstack import models

    images, labels, bounds, scale = _epoch_plan(context)
    cs.manual_seed(0)
    model = models.lenet5()
    context["lenet_convstack_model"] = model  # the twin copies its initial weights
    model.train()
    optimizer = cs.optim.SGD(model.parameters(), lr=LENET_LR, momentum=LENET_MOMENTUM)

    def epoch() -> float:
        start = time.perf_counter()
        for begin, end in bounds:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(cs.Tensor._make(images[begin:end])), cs.Tensor._make(labels[begin:end]))
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) * scale

    return epoch


def _lenet_torch(context, torch):
    from convstack.bench import twins

    images, labels, bounds, scale = _epoch_plan(context)
    model = twins.LeNet5()
    source = context.pop("lenet_convstack_model", None)
    if source is not None:
        twins.copy_weights(source, model)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LENET_LR, momentum=LENET_MOMENTUM)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)

    def epoch() -> float:
        start = time.perf_counter()
        for begin, end in bounds:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[begin:end]), labels[begin:end])
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) * scale

    return epoch


# ------------------------------------------------------------------------------ ResNet-20, VGG-11
def _inputs(batch, size, classes, seed=5):
    (x,) = random_arrays(seed, (batch, 3, size, size))
    labels = numpy.random.default_rng(seed).integers(0, classes, batch).astype(numpy.int64)
    return x, labels


def _convstack_model(name: str, training: bool):
    def setup(context):
        import convstack as cs
        import convstack.nn.functional as F
        from convstack import models

        cs.manual_seed(0)
        if name == "resnet20":
            model, (x, labels) = models.resnet20(), _inputs(RESNET_BATCH, 32, 10)
        else:
            model, (x, labels) = models.vgg11(input_size=VGG_SIZE), _inputs(VGG_BATCH, VGG_SIZE, 1000)
        context[f"{name}_convstack_model"] = model
        x_t, labels_t = cs.Tensor._make(x), cs.Tensor._make(labels)
        if not training:
            model.eval()

            def infer():
                with cs.no_grad():
                    model(x_t)

            return timed(infer)
        model.train()
        optimizer = cs.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step():
            optimizer.zero_grad()
            F.cross_entropy(model(x_t), labels_t).backward()
            optimizer.step()

        return timed(step)

    return setup


def _torch_model(name: str, training: bool):
    def setup(context, torch):
        from convstack.bench import twins

        if name == "resnet20":
            model, (x, labels) = twins.CifarResNet(), _inputs(RESNET_BATCH, 32, 10)
        else:
            model, (x, labels) = twins.VGG11(), _inputs(VGG_BATCH, VGG_SIZE, 1000)
        source = context.pop(f"{name}_convstack_model", None)
        if source is not None:
            twins.copy_weights(source, model)
        x, labels = torch.from_numpy(x), torch.from_numpy(labels)
        if not training:
            model.eval()

            def infer():
                with torch.no_grad():
                    model(x)

            return timed(infer)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), labels).backward()
            optimizer.step()

        return timed(step)

    return setup


def model_workloads(quick: bool = False):
    epoch_note = ("LeNet-5 training epoch, batch 64, SGD lr 0.05 momentum 0.9, cross-entropy, the same shuffled "
                  "Fashion-MNIST arrays in both (the full training set when /usr/share/datasets/fashion-mnist "
                  "exists, else the bundled sample)")
    if quick:
        epoch_note += "; --quick: a fraction of the epoch, timed and extrapolated to the whole epoch"
    return [
        Workload("lenet5 fashion-mnist epoch b64 train", "model", epoch_note, _lenet_convstack, _lenet_torch),
        Workload("resnet20 3x32x32 b128 train-step", "model",
                 "ResNet-20 (CIFAR, option-A shortcuts) training step: zero_grad, forward, cross-entropy, backward, "
                 "SGD momentum step; batch 128 of 3x32x32", _convstack_model("resnet20", True),
                 _torch_model("resnet20", True)),
        Workload("resnet20 3x32x32 b128 inference", "model",
                 "ResNet-20 forward in eval mode under no_grad; batch 128 of 3x32x32",
                 _convstack_model("resnet20", False), _torch_model("resnet20", False)),
        Workload("vgg11 3x64x64 b16 inference", "model",
                 "VGG-11 (1000 classes) forward in eval mode under no_grad; batch 16 of 3x64x64",
                 _convstack_model("vgg11", False), _torch_model("vgg11", False)),
    ]
