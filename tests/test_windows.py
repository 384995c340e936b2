"""Sliding windows over long videos: bounds, the frames each window reads, every frame decoded once."""
from types import SimpleNamespace

import numpy as np

from recognizer import windows


def test_window_bounds_cover_every_frame():
    assert windows.window_bounds(100, 32, 32) == [(0, 32), (32, 64), (64, 96), (68, 100)]
    assert windows.window_bounds(96, 32, 16) == [(0, 32), (16, 48), (32, 64), (48, 80), (64, 96)]
    assert windows.window_bounds(20, 32, 16) == [(0, 20)]                    # shorter than one window


def test_window_frames_are_the_test_sampling_inside_the_window():
    opt = SimpleNamespace(num_segments=4, new_length=2, new_step=1)
    # 32 frames, 4 segments of 8: centres 4, 12, 20, 28 (1-based offsets in the window), two frames each.
    assert windows.window_frames(64, 96, opt) == [67, 68, 75, 76, 83, 84, 91, 92]


class CountingSource(object):
    """A 'video' whose frame k is filled with k; records every frame index it is asked to decode."""

    def __init__(self, num_frames):
        self.num_frames, self.requests = num_frames, []

    def read(self, indices):
        assert indices == sorted(indices)
        self.requests += indices
        return [np.full((6, 8, 3), k % 256, dtype=np.uint8) for k in indices]


class MeanPredictor(object):
    """Logits of a view = [mean pixel value]: tells which frames a window's views were cut from."""

    def view_logits(self, views):
        return views.reshape(len(views), -1).mean(axis=1, keepdims=True).astype(np.float32)


def test_each_frame_is_decoded_once_and_every_window_scored_from_its_own_frames():
    opt = SimpleNamespace(num_segments=5, new_length=1, new_step=1, input_size=6, num_crop=1, window=40, stride=10)
    source = CountingSource(250)
    scored = list(windows.score_windows(source, MeanPredictor(), opt))
    assert [(s, e) for s, e, _ in scored] == windows.window_bounds(250, 40, 10)
    assert len(source.requests) == len(set(source.requests))                # never decoded twice
    assert set(source.requests) == {i for s, e, _ in scored for i in windows.window_frames(s, e, opt)}
    for start, end, logits in scored:
        assert list(logits[:, 0]) == windows.window_frames(start, end, opt)   # the views came from these frames
