"""The training/validation transforms: one crop and flip per clip, shapes, normalisation."""
import mxnet as mx
import numpy as np
import pytest

from recognizer import transforms


def gradient_clip(num_frames=3, h=40, w=53):
    """Frames whose pixels encode y, x (channels 0, 1) and the frame index (channel 2)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return [np.stack([ys * 4, xs * 4, np.full_like(ys, f * 60)], axis=-1).astype(np.uint8)
            for f in range(num_frames)]


def test_every_frame_of_a_clip_gets_the_same_crop_and_flip():
    frames = gradient_clip()
    rng = np.random.default_rng(5)
    flips = 0
    for _ in range(40):
        out = transforms.train_transform(frames, rng, 32, [1.0, 0.875, 0.75, 0.66])
        assert out.shape == (3, 32, 32, 3) and out.dtype == np.uint8
        # Same y/x content on every frame: the same crop, resize and flip; frames stay in order.
        assert (out[0, :, :, :2] == out[1, :, :, :2]).all() and (out[1, :, :, :2] == out[2, :, :, :2]).all()
        assert (out[:, :, :, 2] == np.array([0, 60, 120])[:, None, None]).all()
        flips += int(out[0, 16, 0, 1] > out[0, 16, -1, 1])
    assert 8 < flips < 32   # flip probability 0.5


def test_crop_candidates_follow_scale_ratios_and_distortion():
    sizes = transforms.crop_sizes(256, 340, [1.0, 0.875, 0.75, 0.66], max_distort=1)
    assert (256, 256) in sizes and (224, 256) in sizes and (168, 192) in sizes
    assert (256, 192) not in sizes    # two ratio steps apart: more than max_distort
    assert len(sizes) == 10
    offsets = transforms.fixed_offsets(256, 340, 224, 224, more_fix_crop=True)
    assert len(offsets) == 13 and (0, 0) in offsets and (32, 116) in offsets and (16, 58) in offsets
    assert len(transforms.fixed_offsets(256, 340, 224, 224, more_fix_crop=False)) == 5


def test_center_crop_position():
    frames = gradient_clip(1, 40, 53)
    out = transforms.center_crop(frames, 32)
    assert out.shape == (1, 32, 32, 3)
    assert out[0, 0, 0, 1] == round((53 - 32) / 2.) * 4 and out[0, 0, 0, 0] == 4 * 4 and out[0, 0, 0, 2] == 0


def test_normalize_on_device_matches_gluoncv_arithmetic():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, size=(2, 4, 5, 6, 3), dtype=np.uint8)
    out = transforms.normalize_on_device(mx.nd.array(clips, dtype='uint8')).asnumpy()
    assert out.shape == (2, 4, 3, 5, 6)
    mean = np.array(transforms.MEAN_RGB).reshape(3, 1, 1)
    std = np.array(transforms.STD_RGB).reshape(3, 1, 1)
    expected = (np.transpose(clips[1, 2], (2, 0, 1)) / 255.0 - mean) / std
    assert out[1, 2] == pytest.approx(expected, abs=1e-5)
