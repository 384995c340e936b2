"""TSN segment sampling against GluonCV's VideoClsCustom on the same inputs."""
import numpy as np
import pytest
from gluoncv.data import VideoClsCustom

from recognizer.data import frame_numbers, train_offsets, val_offsets, test_offsets


def gluoncv_dataset(num_segments, new_length=1, new_step=1):
    ds = VideoClsCustom(root='', setting='', lazy_init=True, num_segments=num_segments,
                        new_length=new_length, new_step=new_step)
    ds.new_width = ds.new_height = 0   # no resize: the fake imread returns 2x2 frames
    return ds


@pytest.mark.parametrize('num_frames,segments,length,step', [
    (120, 3, 1, 1), (7, 3, 1, 1), (3, 3, 1, 1), (2, 3, 1, 1), (300, 25, 1, 1), (90, 1, 32, 2), (40, 1, 32, 2)])
def test_val_and_test_offsets_equal_gluoncv(num_frames, segments, length, step):
    ds = gluoncv_dataset(segments, length, step)
    skip = length * step
    expected_val, _ = ds._sample_val_indices(num_frames)
    expected_test, _ = ds._sample_test_indices(num_frames)
    assert list(val_offsets(num_frames, segments, skip)) == list(expected_val)
    assert list(test_offsets(num_frames, segments, skip)) == list(expected_test)


def test_val_offsets_are_segment_centres():
    # 120 frames, 3 segments of 40: centres at 20, 60, 100 (0-based) -> 1-based 21, 61, 101.
    assert list(val_offsets(120, 3, 1)) == [21, 61, 101]


def test_train_offsets_one_random_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    draws = np.array([train_offsets(120, 3, 1, rng) for _ in range(3000)])
    for k in range(3):
        # Segment k covers 1-based frames 40k+1 .. 40k+40, each drawn about equally often.
        assert draws[:, k].min() == 40 * k + 1 and draws[:, k].max() == 40 * k + 40
        counts = np.bincount(draws[:, k] - 40 * k - 1, minlength=40)
        assert counts.min() > 30
    assert not (draws == draws[0]).all()


def test_train_offsets_short_clip_cases_match_gluoncv_rules():
    rng = np.random.default_rng(1)
    # 5 frames, 3 segments: average segment length 1 -> offsets are exactly 1, 2, 3.
    assert list(train_offsets(5, 3, 1, rng)) == [1, 2, 3]
    # 2 frames, 3 segments: GluonCV falls back to frame 1 for every segment.
    assert list(train_offsets(2, 3, 1, rng)) == [1, 1, 1]
    # 4 frames, 3 segments of 32x2 frames: shorter than one skip -> all from frame 1.
    assert list(train_offsets(4, 3, 64, rng)) == [1, 1, 1]


@pytest.mark.parametrize('num_frames,offsets,length,step', [
    (120, [21, 61, 101], 1, 1), (10, [1], 4, 2), (10, [7], 4, 2), (70, [3], 32, 2), (5, [1, 1], 3, 1)])
def test_frame_numbers_match_gluoncv_loader(num_frames, offsets, length, step, tmp_path):
    ds = gluoncv_dataset(len(offsets), length, step)
    read = []

    def fake_imread(path):   # records which frame GluonCV asked for
        read.append(int(path.split('/')[-1]))
        return np.zeros((2, 2, 3), np.uint8)

    ds.name_pattern = '%d'
    ds.cv2 = type('FakeCV2', (), {'imread': staticmethod(fake_imread)})
    ds._image_TSN_cv2_loader(str(tmp_path), num_frames, offsets, np.zeros(length, dtype=int))
    assert frame_numbers(offsets, num_frames, length, step) == read
