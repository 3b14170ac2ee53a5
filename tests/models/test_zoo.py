"""The model zoo: parameter counts against the references, Fashion-MNIST-shaped forward passes,
output shapes of the dense-prediction, sequence and volume models, and argument errors.

Big models are only built (counting parameters is cheap) and run at small inputs, batch 1.
"""

import numpy as np
import pytest

import convstack as cs
from convstack import models
from convstack.models import IMAGE_CLASSIFIERS, MODELS, get_model


def count(module):
    return sum(p.numel() for p in module.parameters())


# torchvision's numbers (and the papers') at 1000 classes, 3x224x224.
REFERENCE_COUNTS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "googlenet": 6_624_904,
}


@pytest.mark.parametrize("name", list(REFERENCE_COUNTS))
def test_parameter_counts_equal_the_references(name):
    assert count(get_model(name, num_classes=1000, in_channels=3, input_size=224)) == REFERENCE_COUNTS[name]


# The other VGGs and AlexNet's 2012 variant: the convolutional part built for real, the 4096-wide
# classifier (123,642,856 parameters for VGG, 58,631,144 for AlexNet) added by formula, which
# saves building five more 120M-parameter layers.
def classifier_count(features, hidden=4096, classes=1000):
    return features * hidden + hidden + hidden * hidden + hidden + hidden * classes + classes


@pytest.mark.parametrize("name, reference", [
    ("vgg13", 133_047_848), ("vgg19", 143_667_240), ("vgg11_bn", 132_868_840), ("vgg13_bn", 133_053_736),
    ("vgg16_bn", 138_365_992), ("vgg19_bn", 143_678_248),
])
def test_vgg_variant_counts(name, reference):
    model = get_model(name, hidden=1)
    assert count(model.features) + classifier_count(512 * 7 * 7) == reference


def test_alexnet_2012_variant_count_and_layers():
    model = models.alexnet(lrn=True, hidden=1)
    assert count(model.features) + classifier_count(256 * 6 * 6) == 60_965_224  # the paper's "60 million"
    kinds = [type(m).__name__ for m in model.features]
    assert kinds.count("LocalResponseNorm") == 2 and kinds[2] == "LocalResponseNorm"
    assert [m.groups for m in model.features if type(m).__name__ == "Conv2d"] == [1, 2, 1, 2, 2]


@pytest.mark.parametrize("name, options, reference", [
    ("googlenet", {"aux_logits": True}, 13_004_888),
    ("resnet20", {}, 269_722),  # option A: the paper's 0.27M
    ("resnet20", {"shortcut": "B"}, 272_474),  # + 1x1 projections and their batch norms
    ("resnet32", {}, 464_154),
    ("resnet56", {}, 853_018),
    ("all_conv_net", {}, 1_369_738),  # Springenberg et al.: "1.3 M"
    ("lenet5", {"num_classes": 10, "in_channels": 1, "input_size": 28}, 61_706),
    ("unet", {"num_classes": 2, "in_channels": 1}, 31_030_658),
])
def test_other_counts(name, options, reference):
    options = {"num_classes": 10, "in_channels": 3, **options} if name.startswith(("resnet", "all")) else options
    assert count(get_model(name, **options)) == reference


def test_lenet5_original_counts_the_c3_table():
    model = models.lenet5(original=True, num_classes=10, in_channels=1, input_size=32)
    # C1 156, S2 12, C3 60 * 25 + 16 = 1,516, S4 32, C5 48,120, F6 10,164, output 850.
    assert model.effective_parameter_count() == 60_850
    assert count(model) == 60_850 + 900  # C3's dense weight holds 900 unconnected zeros
    assert type(model) is models.LeNet5Original


def test_lenet5_original_layers():
    model = models.lenet5_original(input_size=28)
    x = cs.randn(2, 1, 28, 28)
    assert model(x).shape == (2, 10)
    # Unconnected C3 weights are zero; S2 starts as a 2x2 average; f(1) = 1 for the scaled tanh.
    mask, c3 = model.C3.connection_mask.numpy(), model.C3.weight.detach().numpy()
    assert np.all(c3 * (1 - mask) == 0) and np.all(c3[mask[..., 0, 0] > 0] != 0)
    np.testing.assert_allclose(model.S2.weight.detach().numpy(), 0.25)
    np.testing.assert_allclose(model.squash(cs.tensor([1.0, -1.0])).detach().numpy(), [1.0, -1.0], atol=1e-4)
    # LeCun's initialisation: |w| <= 2.4 / F_in, e.g. C1 has F_in = 25, C5 has F_in = 400.
    assert np.abs(model.C1.weight.detach().numpy()).max() <= 2.4 / 25
    assert np.abs(model.C5.weight.detach().numpy()).max() <= 2.4 / 400


# Every image classifier on Fashion-MNIST-shaped input, exactly as the command line builds it
# (get_model(name, num_classes=, in_channels=, input_size=)). The 4096-wide classifiers of VGG
# and AlexNet are narrowed (``hidden``) except for one of each: their width changes no shape.
NARROW = {name: {"hidden": 64} for name in MODELS if name.startswith("vgg") and name not in ("vgg11",)}


@pytest.mark.parametrize("name", IMAGE_CLASSIFIERS)
def test_image_classifiers_run_on_fashion_mnist_shapes(name):
    model = get_model(name, num_classes=10, in_channels=1, input_size=28, **NARROW.get(name, {}))
    model.eval()
    with cs.no_grad():
        out = model(cs.randn(1, 1, 28, 28))
    assert out.shape == (1, 10)
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "alexnet"])
def test_small_inputs_get_a_small_stem_and_large_ones_the_papers(name):
    options = {"hidden": 8} if name == "alexnet" else {}
    small = get_model(name, num_classes=10, in_channels=1, input_size=28, **options)
    large = get_model(name, num_classes=10, in_channels=3, input_size=64, **options)
    stems = {"resnet18": lambda m: m.conv1, "googlenet": lambda m: m.conv1.conv, "alexnet": lambda m: m.features[0]}
    first = stems[name]
    assert first(small).kernel_size == (3, 3) and first(small).stride == (1, 1)
    assert first(large).kernel_size in ((7, 7), (11, 11)) and first(large).stride in ((2, 2), (4, 4))
    # Same state-dict names either way: only the stem's shape differs.
    assert list(small.state_dict()) == list(large.state_dict())


def test_resnet_and_googlenet_train_mode_with_batch_two():
    resnet = models.resnet18(num_classes=10, in_channels=1, input_size=28, width=8)
    assert resnet(cs.randn(2, 1, 28, 28)).shape == (2, 10)
    net = models.googlenet(num_classes=10, in_channels=3, input_size=64, aux_logits=True)
    logits, aux2, aux1 = net(cs.randn(2, 3, 64, 64))
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    net.eval()
    with cs.no_grad():
        assert net(cs.randn(1, 3, 64, 64)).shape == (1, 10)


def test_resnet_cifar_option_a_shortcut_pads_with_zeros():
    model = models.resnet20(num_classes=10, in_channels=3, input_size=32)
    shortcut = model.layer2[0].downsample
    x = cs.randn(2, 16, 8, 8)
    y = shortcut(x).detach().numpy()
    assert y.shape == (2, 32, 4, 4)
    np.testing.assert_array_equal(y[:, :16], x.numpy()[:, :, ::2, ::2])
    np.testing.assert_array_equal(y[:, 16:], 0)
    assert model(cs.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name, options, shape_in, shape_out", [
    ("unet", {"num_classes": 3, "in_channels": 1, "input_size": 28, "depth": 2, "width": 4}, (2, 1, 28, 28),
     (2, 3, 28, 28)),
    ("unet", {"num_classes": 2, "in_channels": 3, "input_size": 27, "depth": 3, "width": 4}, (1, 3, 27, 27),
     (1, 2, 27, 27)),  # odd side: upsampled maps padded to their skips
    ("fcn_segmentation", {"num_classes": 5, "in_channels": 3, "input_size": 30, "widths": (4, 8, 8)}, (2, 3, 30, 30),
     (2, 5, 30, 30)),
    ("recurrent_labeller", {"num_classes": 4, "in_channels": 3, "input_size": 20, "hidden": 8}, (2, 3, 20, 20),
     (2, 4, 20, 20)),
    ("conv_autoencoder", {"num_classes": 10, "in_channels": 1, "input_size": 28}, (2, 1, 28, 28), (2, 1, 28, 28)),
    ("conv_autoencoder", {"in_channels": 3, "input_size": 33, "widths": (4, 8, 8)}, (1, 3, 33, 33), (1, 3, 33, 33)),
    ("temporal_cnn", {"num_classes": 3, "in_channels": 2, "input_size": 50}, (4, 2, 50), (4, 3)),
    ("cnn3d", {"num_classes": 2, "in_channels": 1, "input_size": 12, "widths": (4, 8)}, (2, 1, 12, 12, 12), (2, 2)),
])
def test_dense_sequence_and_volume_models_shapes(name, options, shape_in, shape_out):
    assert get_model(name, **options)(cs.randn(*shape_in)).shape == shape_out


def test_autoencoder_output_is_a_probability_map():
    out = models.conv_autoencoder(input_size=16)(cs.randn(2, 1, 16, 16) * 10).detach().numpy()
    assert out.min() >= 0 and out.max() <= 1


def test_fcn_upsampling_starts_bilinear():
    from convstack.models.segmentation import bilinear_upsampling

    ramp = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8).repeat(8, axis=2)  # (1, 1, 8, 8), x = column
    out = bilinear_upsampling(1, 2)(cs.tensor(ramp)).detach().numpy()[0, 0]  # (16, 16)
    # Bilinear upsampling by 2 of a linear ramp is a ramp of half the slope (away from the border).
    np.testing.assert_allclose(np.diff(out[4:12, 2:14], axis=1), 0.5, atol=1e-6)


def test_recurrent_labeller_shares_u_v_w_across_steps():
    model = models.recurrent_labeller(num_classes=3, in_channels=1, input_size=8, hidden=4, steps=4)
    assert sorted(name for name, _ in model.named_parameters()) == ["U.bias", "U.weight", "V.bias", "V.weight",
                                                                     "W.weight"]
    steps = model.forward_steps(cs.randn(1, 1, 8, 8))
    assert len(steps) == 4 and not np.allclose(steps[0].detach().numpy(), steps[-1].detach().numpy())
    one_step = models.recurrent_labeller(num_classes=3, in_channels=1, input_size=8, hidden=4, steps=1)
    assert count(one_step) == count(model)


def test_temporal_cnn_dilations_double():
    model = models.temporal_cnn(levels=5)
    convs = [m for m in model.features if type(m).__name__ == "Conv1d"]
    assert [c.dilation for c in convs] == [(1,), (2,), (4,), (8,), (16,)]
    assert [c.padding for c in convs] == [(1,), (2,), (4,), (8,), (16,)]


def test_every_model_accepts_the_command_line_options():
    for name in MODELS:
        if name in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "alexnet"):
            continue  # built above, at the same options
        size = 32 if name not in ("temporal_cnn",) else 64
        get_model(name, num_classes=4, in_channels=2, input_size=size)


@pytest.mark.parametrize("call, message", [
    (lambda: models.resnet18(num_classes=0), "resnet: invalid value for argument `num_classes`: expected a positive"),
    (lambda: models.vgg11(in_channels=-1), r"vgg \(A\): invalid value for argument `in_channels`"),
    (lambda: models.resnet20(shortcut="C"), "resnet20: invalid value for argument `shortcut`: expected 'A'"),
    (lambda: models.unet(input_size=8, depth=4), r"unet: invalid value for argument `input_size`: expected at least 2"),
    (lambda: models.all_conv_net(input_size=8), "all_conv_net: invalid value for argument `input_size`: expected at "),
    (lambda: models.temporal_cnn(kernel_size=4), "temporal_cnn: invalid value for argument `kernel_size`"),
    (lambda: models.cnn3d(input_size=2, widths=(4, 8, 8)), "cnn3d: invalid value for argument `input_size`"),
    (lambda: models.fcn_segmentation(widths=(8,)), "fcn_segmentation: invalid value for argument `widths`"),
    (lambda: models.conv_autoencoder(widths=()), "conv_autoencoder: invalid value for argument `widths`"),
    (lambda: models.googlenet(input_size=True), "googlenet: invalid value for argument `input_size`"),
])
def test_argument_errors_name_the_model_and_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
