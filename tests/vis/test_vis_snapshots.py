"""Snapshots: the pictures the dashboard and the TensorBoard logger show, as uint8 arrays."""

import numpy as np
import pytest
from tests.vis.patch_task import trained_patch_model

import convstack as cs
from convstack import data, nn
from convstack.vis import grad_cam, overlay
from convstack.vis.snapshots import (
    display_uint8,
    feature_maps_picture,
    filters_picture,
    first_input,
    gives_class_scores,
    grad_cam_pictures,
    misclassified_indices,
    to_uint8,
    upscale,
)


def test_filters_of_gray_rgb_and_deeper_layers():
    gray = filters_picture(nn.Sequential(nn.Conv2d(1, 6, 5)))
    assert gray.dtype == np.uint8 and gray.shape == (13, 19)  # 3x2 tiles of 5x5, 1 pixel apart
    rgb = filters_picture(nn.Sequential(nn.Conv2d(3, 4, 3)))
    assert rgb.shape == (9, 9, 3)  # 2x2 colour tiles of 3x3
    # a deeper layer of 3x3 kernels: one row per filter, one column per input channel
    deep = filters_picture(nn.Sequential(nn.Conv2d(1, 16, 3), nn.Conv2d(16, 5, 3)), "1")
    assert deep.shape == (5 * 4 + 1, 16 * 4 + 1)
    assert filters_picture(nn.Sequential(nn.Linear(2, 2))) is None


def test_each_filter_spans_the_full_range():
    layer = nn.Conv2d(1, 2, 3)
    layer.weight.data[:] = np.arange(18, dtype=np.float32).reshape(2, 1, 3, 3)
    picture = filters_picture(nn.Sequential(layer))
    first, second = picture[1:4, 1:4], picture[1:4, 5:8]
    assert first.min() == second.min() == 0 and first.max() == second.max() == 255
    assert picture[0].tolist() == [255] * 9  # white gutter


def test_feature_maps_picture_is_a_mosaic_of_the_channels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    sample = np.random.default_rng(0).normal(size=(1, 6, 6)).astype(np.float32)
    picture = feature_maps_picture(model, "0", sample)
    assert picture.shape == (2 * 7 + 1, 2 * 7 + 1)
    flat = feature_maps_picture(nn.Sequential(nn.Flatten(), nn.Linear(36, 5)), "1", sample)
    assert flat.shape == (2 * 2 + 1, 3 * 2 + 1)  # five units, a pixel each, on 2 rows of 3


def test_upscale_is_nearest_neighbour():
    image = np.array([[0, 255], [10, 20]], np.uint8)
    big = upscale(image, 5)
    assert big.shape == (6, 6) and (big[:3, :3] == 0).all() and (big[3:, 3:] == 20).all()
    assert upscale(image, 1).shape == (2, 2)


def test_grad_cam_pictures_blend_the_maps():
    model, images, _, _ = trained_patch_model()
    pictures, layer = grad_cam_pictures(model, images[:3])
    assert layer == "3" and pictures.shape == (3, 20, 20, 3) and pictures.dtype == np.uint8
    cams = grad_cam(model, "3", images[:3])
    assert np.array_equal(pictures[1], to_uint8(overlay(images[1], cams[1])))
    assert grad_cam_pictures(nn.Sequential(nn.Flatten(), nn.Linear(400, 2)), images[:1]) == (None, None)


def test_class_scores_first_input_and_mistakes():
    model, images, _, _ = trained_patch_model()
    assert gives_class_scores(model, images[:2])
    assert not gives_class_scores(nn.Sequential(nn.Conv2d(1, 2, 3)), images[:2])
    loader = data.DataLoader(data.TensorDataset(cs.tensor(images), cs.tensor(np.zeros(len(images), np.int64))))
    assert np.array_equal(first_input(loader), images[0])
    assert first_input(object()) is None
    assert misclassified_indices([0, 1, 2, 3], [0, 0, 2, 0], 5).tolist() == [1, 3]
    assert misclassified_indices([1, 1, 1], [0, 0, 0], 2).tolist() == [0, 1]


def test_display_uint8_keeps_bytes_and_rescales_floats():
    raw = np.array([[3, 200]], np.uint8)
    assert np.array_equal(display_uint8(raw), raw)
    assert display_uint8(np.array([[[-1.0, 1.0]]])).tolist() == [[0, 255]]
    with pytest.raises(ValueError, match="expected an image"):
        display_uint8(np.zeros((2, 2, 2, 2)))
