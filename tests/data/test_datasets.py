import numpy as np
import pytest

import convstack as cs
from convstack.data import ImageArrayDataset, Subset, TensorDataset, random_split


def test_tensor_dataset_rows_and_types():
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = cs.tensor(np.arange(6))
    dataset = TensorDataset(x, y)
    assert len(dataset) == 6
    row, label = dataset[-1]
    np.testing.assert_array_equal(row, x[5])
    assert isinstance(label, cs.Tensor) and int(label.data) == 5
    batch_x, batch_y = dataset.get_batch(np.array([4, 1]))
    np.testing.assert_array_equal(batch_x, x[[4, 1]])
    np.testing.assert_array_equal(batch_y, [4, 1])


def test_tensor_dataset_checks_first_dimension():
    with pytest.raises(ValueError, match=r"same first dimension.*\[\(3, 2\), \(4,\)\]"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_tensor_dataset_index_errors():
    dataset = TensorDataset(np.zeros(3))
    with pytest.raises(IndexError, match="index 3 out of range"):
        dataset[3]
    with pytest.raises(TypeError, match="integers"):
        dataset[1.0]


def test_image_array_dataset_counts_must_agree():
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        ImageArrayDataset(np.zeros((5, 2, 2), np.uint8), np.zeros(4, np.int64))


def test_image_array_dataset_default_transform_gives_chw_float():
    images = np.full((3, 4, 5), 255, np.uint8)
    dataset = ImageArrayDataset(images, [0, 1, 2], classes="abc", source="here")
    image, label = dataset[1]
    assert image.shape == (1, 4, 5) and image.dtype == np.float32 and float(image.data.max()) == 1.0
    assert label == 1
    batch, labels = dataset.get_batch(np.array([2, 0]))
    assert batch.shape == (2, 1, 4, 5) and labels.dtype == np.int64
    assert "source='here'" in repr(dataset)


def test_subset_maps_indices_and_batches():
    dataset = TensorDataset(np.arange(10) * 10)
    subset = Subset(dataset, [7, 2, -1])
    assert len(subset) == 3
    assert int(subset[1][0]) == 20
    np.testing.assert_array_equal(subset.get_batch(np.array([0, 2]))[0], [70, 90])
    with pytest.raises(IndexError):
        Subset(dataset, [10])


def test_subset_without_batch_indexing_has_no_get_batch():
    class Plain:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return i

    assert not hasattr(Subset(Plain(), [1]), "get_batch")


def test_random_split_lengths_disjoint_and_reproducible():
    dataset = TensorDataset(np.arange(10))
    parts = random_split(dataset, [7, 3], generator=np.random.default_rng(1))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    again = random_split(dataset, [7, 3], generator=np.random.default_rng(1))
    np.testing.assert_array_equal(parts[0].indices, again[0].indices)
    cs.manual_seed(3)
    first = random_split(dataset, [0.5, 0.5])[0].indices
    cs.manual_seed(3)
    np.testing.assert_array_equal(first, random_split(dataset, [0.5, 0.5])[0].indices)


def test_random_split_fractions_distribute_remainder():
    parts = random_split(TensorDataset(np.arange(11)), [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [6, 3, 2]


def test_random_split_rejects_bad_lengths():
    with pytest.raises(ValueError, match="summing to the dataset length 10"):
        random_split(TensorDataset(np.arange(10)), [4, 4])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(TensorDataset(np.arange(10)), [-1, 11])
