"""The model zoo: each model is a function taking ``num_classes``, ``in_channels`` and an input size."""

from convstack.models.alexnet import AlexNet, alexnet
from convstack.models.all_conv import AllConvNet, all_conv_net
from convstack.models.autoencoder import ConvAutoencoder, conv_autoencoder
from convstack.models.googlenet import GoogLeNet, googlenet
from convstack.models.lenet import LeNet5, lenet5
from convstack.models.lenet_original import LeNet5Original, lenet5_original
from convstack.models.recurrent_labeller import RecurrentLabeller, recurrent_labeller
from convstack.models.resnet import ResNet, resnet18, resnet34, resnet50, resnet101
from convstack.models.resnet_cifar import CifarResNet, resnet20, resnet32, resnet56
from convstack.models.segmentation import FCN, fcn_segmentation
from convstack.models.spec import from_spec
from convstack.models.temporal import TemporalCNN, temporal_cnn
from convstack.models.unet import UNet, unet
from convstack.models.vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from convstack.models.volumetric import CNN3d, cnn3d

#: Model builders by the names the command line accepts.
MODELS = {
    "lenet5": lenet5, "lenet5_original": lenet5_original,
    "alexnet": alexnet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
    "resnet20": resnet20, "resnet32": resnet32, "resnet56": resnet56,
    "all_conv_net": all_conv_net,
    "unet": unet, "fcn_segmentation": fcn_segmentation, "recurrent_labeller": recurrent_labeller,
    "conv_autoencoder": conv_autoencoder,
    "temporal_cnn": temporal_cnn, "cnn3d": cnn3d,
}

#: Models whose output is one score per class for a whole image (the rest label pixels,
#: reconstruct images, or read sequences or volumes).
IMAGE_CLASSIFIERS = (
    "lenet5", "lenet5_original", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
    "vgg19_bn", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet20", "resnet32", "resnet56",
    "all_conv_net",
)


def get_model(name: str, **options):
    """Build the zoo model called ``name`` (see ``MODELS``), or a spec-string model with ``spec:...``."""
    if name.startswith("spec:"):
        return from_spec(name[len("spec:") :], **options)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(sorted(MODELS))} or 'spec:...'")
    return MODELS[name](**options)


__all__ = [
    "get_model", "MODELS", "IMAGE_CLASSIFIERS", "from_spec",
    "LeNet5", "lenet5", "LeNet5Original", "lenet5_original", "AlexNet", "alexnet",
    "VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "GoogLeNet", "googlenet", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101",
    "CifarResNet", "resnet20", "resnet32", "resnet56", "AllConvNet", "all_conv_net",
    "UNet", "unet", "FCN", "fcn_segmentation", "RecurrentLabeller", "recurrent_labeller",
    "ConvAutoencoder", "conv_autoencoder", "TemporalCNN", "temporal_cnn", "CNN3d", "cnn3d",
]
