"""Datasets, the DataLoader, transforms and safe file readers.

    >>> from convstack.data import DataLoader, fashion_mnist
    >>> train = fashion_mnist("train")                      # doctest: +SKIP
    >>> loader = DataLoader(train, batch_size=64, shuffle=True)
    >>> images, labels = next(iter(loader))                 # float32 (64, 1, 28, 28), int64 (64,)

Readers never unpickle and never trust a header: every malformed file raises
``DataFormatError`` (a ``ValueError``) naming the file and what is wrong.
"""

from convstack.data._sampling import InterpolationMode
from convstack.data.affine import RandomAffine, RandomRotation
from convstack.data.auto_augment import RandAugment, TrivialAugmentWide
from convstack.data.blur import GaussianBlur
from convstack.data.cifar import CIFAR10_CLASSES, cifar10, cifar100, read_cifar_batch
from convstack.data.color import ColorJitter
from convstack.data.crop import CenterCrop, RandomResizedCrop
from convstack.data.dataset import Dataset, ImageArrayDataset, Subset, TensorDataset, collate, random_split
from convstack.data.distributed_sampler import DistributedSampler, ShardSampler
from convstack.data.download import cache_dir, download_file
from convstack.data.erasing import RandomErasing
from convstack.data.errors import ChecksumError, DataFormatError
from convstack.data.fashion_mnist import CLASSES, MNIST_CLASSES, fashion_mnist, mnist
from convstack.data.finder import BUNDLED_SAMPLE, load_idx_split
from convstack.data.idx import read_idx, write_idx
from convstack.data.image_folder import ImageFolder, read_image
from convstack.data.loader import DataLoader
from convstack.data.mixing import CutMix, MixUp, RandomChoice
from convstack.data.stats import channel_stats
from convstack.data.transforms import (
    Compose,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    Resize,
    ToTensor,
    Transform,
    apply_batch,
)
from convstack.data.workers import get_worker_info

__all__ = [
    "Dataset", "TensorDataset", "ImageArrayDataset", "Subset", "random_split", "collate", "DataLoader",
    "DistributedSampler", "ShardSampler",
    "Transform", "Compose", "ToTensor", "Normalize", "Pad", "RandomCrop", "RandomHorizontalFlip",
    "RandomVerticalFlip", "Resize", "apply_batch", "channel_stats",
    "CenterCrop", "RandomResizedCrop", "ColorJitter", "RandomRotation", "RandomAffine", "GaussianBlur",
    "RandomErasing", "TrivialAugmentWide", "RandAugment", "MixUp", "CutMix", "RandomChoice", "InterpolationMode",
    "get_worker_info",
    "DataFormatError", "ChecksumError", "read_idx", "write_idx", "read_cifar_batch", "read_image",
    "ImageFolder", "cifar10", "cifar100", "CIFAR10_CLASSES", "fashion_mnist", "mnist", "CLASSES",
    "MNIST_CLASSES", "BUNDLED_SAMPLE", "load_idx_split", "download_file", "cache_dir",
]
