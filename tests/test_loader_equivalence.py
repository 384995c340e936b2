"""Our fast uint8 loader draws and produces what GluonCV's VideoGroupTrainTransform does.

The crop sizes, offsets and flips are compared with GluonCV's own candidate lists and with
the choices its transform actually makes (recovered from its output pixels); one fixed crop,
read from JPEG files and normalised on the device, equals GluonCV's float output.
"""
import collections
import os
import random

import cv2
import mxnet as mx
import numpy as np
import pytest
from gluoncv.data.transforms import video as gluon_video

from recognizer import data, transforms

RATIOS = [1.0, 0.875, 0.75, 0.66]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def gluon_transform(size, more_fix_crop=True, max_distort=1):
    return gluon_video.VideoGroupTrainTransform(size=(size, size), scale_ratios=RATIOS, mean=MEAN, std=STD,
                                                more_fix_crop=more_fix_crop, max_distort=max_distort)


def to_uint8(gluon_frames):
    """GluonCV's normalised CHW float frames back to HWC uint8 (exact: the values came from uint8)."""
    chw = np.stack(gluon_frames)
    pixels = (chw * np.reshape(STD, (3, 1, 1)) + np.reshape(MEAN, (3, 1, 1))) * 255.0
    return np.rint(pixels).astype(np.uint8).transpose(0, 2, 3, 1)


@pytest.mark.parametrize('h, w, more_fix_crop, max_distort', [(256, 340, True, 1), (40, 53, False, 2)])
def test_candidate_sizes_and_offsets_are_gluoncv_s(h, w, more_fix_crop, max_distort):
    msc = gluon_video.VideoMultiScaleCrop(size=(24, 24), scale_ratios=RATIOS)
    sizes = msc.fillCropSize(RATIOS, max_distort, h, w)
    assert transforms.crop_sizes(h, w, RATIOS, max_distort) == [tuple(int(v) for v in s) for s in sizes]
    for ch, cw in sizes:
        assert (transforms.fixed_offsets(h, w, ch, cw, more_fix_crop)
                == [tuple(o) for o in msc.fillFixOffset(more_fix_crop, h, w, ch, cw)])


def outcome_table(frames, size):
    """Output bytes -> every (crop_h, crop_w, y, x, flip) that gives exactly that output."""
    h, w = frames[0].shape[:2]
    table = collections.defaultdict(set)
    for ch, cw in transforms.crop_sizes(h, w, RATIOS):
        for y, x in transforms.fixed_offsets(h, w, ch, cw):
            for flip in (False, True):
                out = transforms.crop_resize_flip(frames, y, x, ch, cw, size, size, flip)
                table[out.tobytes()].add((ch, cw, y, x, flip))
    return table


def choice_frequencies(choices, key):
    counts = collections.Counter(key(c) for c in choices)
    return {k: v / float(len(choices)) for k, v in counts.items()}


def test_crop_and_flip_choices_are_distributed_as_gluoncv_s():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (40, 53, 3), dtype=np.uint8)]   # noise: every crop looks different
    table = outcome_table(frames, 24)
    random.seed(0)
    gluon = gluon_transform(24)
    draws = 1500
    theirs = []
    for _ in range(draws):
        found = table[to_uint8(gluon(frames)).tobytes()]
        assert found, 'GluonCV made a crop outside our candidate list'
        theirs.append(sorted(found)[0])
    ours = []
    for i in range(draws):
        y, x, ch, cw, flip = transforms.draw_train_crop(40, 53, np.random.default_rng([7, i]), RATIOS)
        ours.append((ch, cw, y, x, flip))
    sizes = transforms.crop_sizes(40, 53, RATIOS)
    for key, expected in ((lambda c: c[:2], 1.0 / len(set(sizes))), (lambda c: c[4], 0.5)):
        mine, gluons = choice_frequencies(ours, key), choice_frequencies(theirs, key)
        assert set(mine) == set(gluons)
        tolerance = 4 * np.sqrt(expected * (1 - expected) / draws)
        for k in mine:
            assert abs(mine[k] - expected) < tolerance and abs(gluons[k] - expected) < tolerance, k
    # Within one crop size every offset of GluonCV's list is used, by both.
    big = [c for c in ours if c[:2] == sizes[0]]
    assert {c[2:4] for c in big} == set(transforms.fixed_offsets(40, 53, *sizes[0]))
    assert {c[2:4] for c in theirs if c[:2] == sizes[0]} == {c[2:4] for c in big}


def write_frames(folder, sizes, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for n, (w, h) in enumerate(sizes, 1):
        small = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, 'img_%05d.jpg' % n), img)
    return folder


class FixedChoice(object):
    """Stands in for GluonCV's ``random`` module: always the given candidates, flip as told."""

    def __init__(self, size_index, offset_index, flip):
        self.picks = [size_index, offset_index]
        self.flip = flip

    def choice(self, seq):
        return seq[self.picks.pop(0)]

    def random(self):
        return 0.0 if self.flip else 1.0


@pytest.mark.parametrize('size_index, offset_index, flip', [(3, 9, True), (0, 4, False), (7, 1, True)])
def test_fixed_crop_from_jpeg_equals_gluoncv_normalised_output(tmp_path, monkeypatch, size_index,
                                                               offset_index, flip):
    # Frames 1-2 already have the --new-width/--new-height size, frame 3 must be resized first.
    folder = write_frames(str(tmp_path / 'clip'), [(106, 80), (106, 80), (96, 72)])
    ours = data.read_frames(folder, [1, 2, 3], new_width=106, new_height=80)
    theirs = []
    for n in (1, 2, 3):    # GluonCV's frame reading (VideoClsCustom._image_TSN_cv2_loader)
        img = cv2.imread(os.path.join(folder, 'img_%05d.jpg' % n))
        if img.shape[:2] != (80, 106):
            img = cv2.resize(img, (106, 80))
        theirs.append(img[:, :, ::-1])
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))

    ch, cw = transforms.crop_sizes(80, 106, RATIOS)[size_index]
    y, x = transforms.fixed_offsets(80, 106, ch, cw)[offset_index]
    clip = transforms.crop_resize_flip(ours, y, x, ch, cw, 64, 64, flip)
    ours_float = transforms.normalize_on_device(mx.nd.array(clip, dtype='uint8')).asnumpy()
    monkeypatch.setattr(gluon_video, 'random', FixedChoice(size_index, offset_index, flip))
    expected = np.stack(gluon_transform(64)(theirs))
    assert ours_float.shape == expected.shape == (3, 3, 64, 64)
    assert np.abs(ours_float - expected).max() < 1e-5


def test_read_frames_reads_each_number_once_and_reports_broken_files(tmp_path):
    folder = write_frames(str(tmp_path / 'clip'), [(53, 40)] * 3)
    frames = data.read_frames(folder, [3, 3, 1])
    assert frames[0] is frames[1] and frames[0].shape == (40, 53, 3) and frames[0].dtype == np.uint8
    assert np.array_equal(frames[2], cv2.imread(os.path.join(folder, 'img_00001.jpg'))[:, :, ::-1])
    with open(os.path.join(folder, 'img_00002.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    for number in (2, 4):    # corrupt, missing
        with pytest.raises(data.BadSample) as err:
            data.read_frames(folder, [1, number])
        assert err.value.path.endswith('img_%05d.jpg' % number)


@pytest.mark.parametrize('crop, out, flip', [((37, 29), 24, True), ((24, 24), 24, True), ((24, 24), 24, False),
                                             ((40, 40), 32, False)])
def test_crop_resize_flip_equals_crop_then_cv2_resize_then_np_flip(crop, out, flip):
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (40, 53, 3), dtype=np.uint8) for _ in range(2)]
    got = transforms.crop_resize_flip(frames, 2, 5, crop[0], crop[1], out, out, flip)
    for frame, result in zip(frames, got):
        expected = cv2.resize(frame[2:2 + crop[0], 5:5 + crop[1]], (out, out))
        assert np.array_equal(result, np.flip(expected, axis=1) if flip else expected)


def random_crop_32(frames, rng):
    """A per-sample random crop and flip: any change in seeding or order would show."""
    y, x = rng.integers(0, 9, size=2)
    clip = np.stack(frames)[:, y:y + 32, x:x + 32]
    return clip[:, :, ::-1] if rng.random() < 0.5 else clip


def test_thread_process_and_inline_loaders_give_identical_batches(tmp_path):
    clips = [data.Clip(write_frames(str(tmp_path / ('c%d' % c)), [(40, 40)] * 6, seed=c), 6, c % 3, c + 1)
             for c in range(6)]
    dataset = data.ClipDataset(clips, random_crop_32, train=True, num_segments=2, seed=5)
    results = []
    for workers, threads in ((0, True), (2, True), (2, False)):
        sampler = data.EpochBatchSampler(len(dataset), 2, shuffle=True, seed=5)
        sampler.set_epoch(1)
        loader = data.make_loader(dataset, sampler, workers, threads=threads)
        results.append([(np.asarray(c.asnumpy() if isinstance(c, mx.nd.NDArray) else c), labels.tolist())
                        for c, labels, _ in loader])
    assert len(results[0]) == 3 and results[0][0][0].shape == (2, 2, 32, 32, 3)
    for other in results[1:]:
        assert [labels for _, labels in other] == [labels for _, labels in results[0]]
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(other, results[0]))
