"""Fine-tuning: freeze/unfreeze by pattern, the head found and replaced, per-group learning rates, and the
whole recipe: LeNet-5 trained on Fashion-MNIST classes 0-4, fine-tuned on classes 5-9 with its features
frozen and a new head: the frozen weights stay bit for bit, the new task is learnt well above chance.
"""

import numpy as np
import pytest

import convstack as cs
import convstack.nn.functional as F
from convstack import data, models, nn, optim
from convstack.io import save_checkpoint, save_torch_state_dict
from convstack.train.finetune import (
    find_head,
    freeze,
    param_groups_with_lr,
    prepare_finetune,
    replace_head,
    unfreeze,
)


def test_freeze_and_unfreeze_by_pattern():
    model = models.lenet5()
    frozen = freeze(model, "features.*")
    assert frozen == [n for n, _ in model.named_parameters() if n.startswith("features.")] and frozen
    assert all(not p.requires_grad for n, p in model.named_parameters() if n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if n not in frozen)
    assert unfreeze(model, ["features.0", "*.bias"]) == ["features.0.weight", "features.0.bias"] + [
        n for n, _ in model.named_parameters() if n.endswith(".bias") and not n.startswith("features.0")]
    assert model.features[0].weight.requires_grad and not model.features[3].weight.requires_grad
    with pytest.raises(ValueError, match="freeze: pattern 'feature.*' matches no parameter of LeNet5"):
        freeze(model, "feature.*")
    with pytest.raises(ValueError, match="freeze: invalid value for argument `patterns`"):
        freeze(model, [])


def test_frozen_parameters_get_no_gradient_and_no_update():
    model = models.lenet5()
    freeze(model, "features")
    before = model.features[0].weight.detach().numpy().copy()
    optimizer = optim.SGD(optim.param_groups_weight_decay(model, 5e-4), lr=0.1, momentum=0.9)
    loss = F.cross_entropy(model(cs.randn(4, 1, 28, 28)), cs.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    assert model.features[0].weight.grad is None
    np.testing.assert_array_equal(model.features[0].weight.detach().numpy(), before)


@pytest.mark.parametrize("name, head, options", [
    ("lenet5", "classifier.5", {}), ("resnet18", "fc", {}), ("vgg11", "classifier.6", {"hidden": 8}),
    ("alexnet", "classifier.6", {"hidden": 8}), ("googlenet", "fc", {}), ("lenet5_original", "output", {}),
    ("all_conv_net", "features.19", {"widths": (4, 8)}), ("unet", "head", {"input_size": 16, "depth": 1, "width": 4}),
])
def test_replace_head(name, head, options):
    model = models.get_model(name, **options)
    old = find_head(model)[1]
    assert replace_head(model, 3) == head
    new = model.get_submodule(head)
    assert new is not old and type(new) is type(old) and new.weight.shape[0] == 3
    assert new.weight.shape[1:] == old.weight.shape[1:]
    with pytest.raises(ValueError, match="replace_head: invalid value for argument `num_classes`"):
        replace_head(model, 0)


def test_replace_head_output_shape():
    model = models.resnet20(num_classes=10)
    replace_head(model, 4)
    assert model(cs.randn(2, 3, 32, 32)).shape == (2, 4)


def test_param_groups_with_lr():
    model = models.lenet5()
    freeze(model, "features.0.*")
    groups = param_groups_with_lr(model, {"features.*": 1e-4, "classifier.5.*": 0.5}, default_lr=1e-2)
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [
        ("features.*", 1e-4, 2), ("classifier.5.*", 0.5, 2), ("default", 1e-2, 4)]
    optimizer = optim.SGD(groups, lr=1e-2)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 0.5, 1e-2]
    with pytest.raises(ValueError, match="param_groups_with_lr: pattern 'head.*' matches no parameter"):
        param_groups_with_lr(model, {"head.*": 0.1}, 0.01)
    with pytest.raises(ValueError, match="invalid learning rate for 'features.*'"):
        param_groups_with_lr(model, {"features.*": -1}, 0.01)


def weights(model) -> dict:
    return {name: value.numpy() for name, value in model.state_dict().items()}


def test_prepare_finetune_loads_strictly_except_a_resized_head(tmp_path):
    source = models.lenet5(num_classes=10)
    save_checkpoint(tmp_path / "run.ckpt", {"model": source.state_dict(), "config": {"model": "lenet5"}, "epoch": 1})
    target = models.lenet5(num_classes=10)
    report = prepare_finetune(target, tmp_path / "run.ckpt", "features.*", num_classes=4)
    assert report["head"] == "classifier.5" and report["head_reset"]
    assert target.classifier[5].out_features == 4
    for name in ("features.0.weight", "classifier.3.weight"):
        np.testing.assert_array_equal(weights(target)[name], weights(source)[name])
    assert report["frozen"] == [n for n, _ in target.named_parameters() if n.startswith("features.")]
    # Same number of classes: the head is loaded too.
    same = models.lenet5(num_classes=3)
    report = prepare_finetune(same, tmp_path / "run.ckpt", num_classes=10)
    assert report["head_reset"] is False
    np.testing.assert_array_equal(weights(same)["classifier.5.weight"], weights(source)["classifier.5.weight"])
    # A safetensors state dict works the same way; a head mismatch without num_classes is an error.
    save_torch_state_dict(source, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="has a head of shape \\(10, 84\\) .* pass num_classes"):
        prepare_finetune(models.lenet5(num_classes=4), tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"does not fit CifarResNet: missing \['conv1.weight'"):
        prepare_finetune(models.resnet20(), tmp_path / "w.safetensors", num_classes=3)


def subset(dataset, classes, per_class):
    keep = np.concatenate([np.flatnonzero(dataset.labels == c)[:per_class] for c in classes])
    images = dataset.images[keep].astype(np.float32)[:, None] / 255.0
    images = (images - 0.286) / 0.353  # Fashion-MNIST's mean and standard deviation
    return images, dataset.labels[keep].astype(np.int64) - min(classes)


def fit(model, images, labels, epochs, lr, rng):
    optimizer = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(order), 50):
            batch = order[start:start + 50]
            loss = F.cross_entropy(model(cs.tensor(images[batch])), cs.tensor(labels[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def accuracy(model, images, labels):
    model.eval()
    with cs.no_grad():
        return float((model(cs.tensor(images)).numpy().argmax(1) == labels).mean())


def test_fine_tune_lenet5_from_classes_0_4_to_classes_5_9(tmp_path, rng):
    train = data.fashion_mnist("train", sample=True)
    test = data.fashion_mnist("test", sample=True)
    # Pretrain: a 10-way LeNet-5 that only ever sees T-shirts, trousers, pullovers, dresses and coats.
    pretrained = models.lenet5(num_classes=10)
    fit(pretrained, *subset(train, range(5), 200), epochs=1, lr=0.05, rng=rng)
    save_checkpoint(tmp_path / "best.ckpt", {"model": pretrained.state_dict(), "config": {"model": "lenet5"}})
    # Fine-tune on sandals, shirts, sneakers, bags and ankle boots: frozen features, a new 5-way head.
    model = models.lenet5(num_classes=10)
    report = prepare_finetune(model, tmp_path / "best.ckpt", freeze_patterns="features.*", num_classes=5)
    assert report["head_reset"] and report["frozen"]
    frozen_before = {n: p.detach().numpy().copy() for n, p in model.named_parameters() if n in report["frozen"]}
    hidden_before = model.classifier[1].weight.detach().numpy().copy()
    fit(model, *subset(train, range(5, 10), 150), epochs=2, lr=0.05, rng=rng)
    for name, parameter in model.named_parameters():
        if name in frozen_before:
            np.testing.assert_array_equal(parameter.detach().numpy(), frozen_before[name], err_msg=name)  # bit for bit
    assert not np.array_equal(model.classifier[1].weight.detach().numpy(), hidden_before)
    score = accuracy(model, *subset(test, range(5, 10), 200))
    print(f"\nfine-tuned LeNet-5 on classes 5-9 (frozen features): test accuracy {score:.1%} (chance 20%)")
    assert score > 0.6
    assert model(cs.randn(1, 1, 28, 28)).shape == (1, 5)


def test_fine_tune_an_imported_onnx_model(tmp_path):
    pytest.importorskip("onnx")
    from convstack.io import export_onnx, import_onnx

    export_onnx(models.resnet20(num_classes=10), cs.randn(1, 3, 32, 32), tmp_path / "r.onnx")
    model = import_onnx(tmp_path / "r.onnx")
    frozen = freeze(model, ["conv1.*", "bn1.*", "layer1.*", "layer2.*"])
    assert "layer1.0.conv1.weight" in frozen
    assert replace_head(model, 3) == "fc" and isinstance(model.fc, nn.Linear)
    model.train()
    loss = F.cross_entropy(model(cs.randn(2, 3, 32, 32)), cs.tensor([0, 2]))
    loss.backward()
    assert model.fc.weight.grad is not None and model.get_submodule("layer3.0.conv1").weight.grad is not None
    assert model.get_submodule("layer1.0.conv1").weight.grad is None
