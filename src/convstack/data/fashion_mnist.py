"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) and MNIST (LeCun et al. 1998).

``fashion_mnist()`` finds the official files (see ``convstack.data.finder`` for where it
looks: ``root``, ``$CONVSTACK_DATA``, the user cache, Debian's ``dataset-fashion-mnist``),
downloads them when missing, and, offline, falls back with a warning to the sample bundled
with convstack (1,000 training and 200 test images per class).
"""

from __future__ import annotations

from pathlib import Path

from convstack.data import finder

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# The official location and checksums, from the Fashion-MNIST README
# (github.com/zalandoresearch/fashion-mnist, "Get the Data").
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
# yann.lecun.com often refuses downloads; PyTorch's mirror serves the same files.
MNIST_BASE_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_SYSTEM_DIR = Path("/usr/share/datasets/mnist")


def fashion_mnist(split: str = "train", root=None, download: bool = True, transform=None,
                  base_url: str | None = None, sample: bool = False):
    """Fashion-MNIST: 28x28 grayscale images of 10 kinds of clothing (60,000 train, 10,000 test).

    Args:
        split: ``'train'`` or ``'test'``.
        root: a folder searched first (directly and in ``root/fashion-mnist``).
        download: download the files into the user cache when no folder has them.
        transform: applied to the images (default ``ToTensor()``: float32 (1, 28, 28) in [0, 1]).
        base_url: where to download from (default the official ``BASE_URL``).
        sample: use the bundled sample (10,000 train / 2,000 test images) without searching.

    Returns:
        An ``ImageArrayDataset``; ``.source`` is the folder the files came from, or
        ``'bundled sample'``; ``.classes`` is ``CLASSES``.

    Examples:
        >>> train = fashion_mnist("train")          # doctest: +SKIP
        >>> len(train), train.classes[train[0][1]], train.source
        (60000, 'Ankle boot', '/usr/share/datasets/fashion-mnist')
    """
    spec = finder.IdxDatasetSpec("fashion-mnist", FILES, MD5, CLASSES, SYSTEM_DIR, SAMPLE_DIR, (base_url or BASE_URL,))
    return finder.load_dataset(spec, split, root, download, transform, sample=sample)


def mnist(split: str = "train", root=None, download: bool = True, transform=None, base_url: str | None = None):
    """MNIST handwritten digits, found and downloaded like ``fashion_mnist`` (no bundled sample).

    Raises:
        FileNotFoundError: the files are nowhere and could not be downloaded.
    """
    base_urls = (base_url,) if base_url else MNIST_BASE_URLS
    spec = finder.IdxDatasetSpec("mnist", FILES, MNIST_MD5, MNIST_CLASSES, MNIST_SYSTEM_DIR, None, base_urls)
    return finder.load_dataset(spec, split, root, download, transform)
