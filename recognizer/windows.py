"""Predictions over time for long videos: the test protocol on sliding windows, each frame decoded once.

A window is ``window`` frames long and windows start every ``stride`` frames; frame indices are
0-based and a window covers [start, end). When the last regular window stops short of the end,
one more window ending at the last frame is added, so every frame is covered. Inside a window
the views are those of evaluation.ViewDataset for a clip of that length (--num-segments
segment centres, --new-length frames each, 1/3/10 crops).

Frames are decoded in increasing order, each at most once, and kept only while a window still
to come needs them: memory holds about one window of frames whatever the video's length.
"""
import numpy as np

from . import data, evaluation


def window_bounds(num_frames, window, stride):
    """[(start, end)] of the windows over ``num_frames`` frames (one window when the video is shorter)."""
    if num_frames <= window:
        return [(0, num_frames)]
    bounds = [(start, start + window) for start in range(0, num_frames - window + 1, stride)]
    if bounds[-1][1] < num_frames:
        bounds.append((num_frames - window, num_frames))
    return bounds


def window_frames(start, end, opt):
    """0-based frame indices the views of window [start, end) read, in view order (repeats possible)."""
    length = end - start
    offsets = data.test_offsets(length, opt.num_segments, opt.new_length * opt.new_step)
    return [start + n - 1 for n in data.frame_numbers(offsets, length, opt.new_length, opt.new_step)]


class FrameSource(object):
    """Decoded RGB frames of a video or frame folder, fetched in batches by 0-based index."""

    def __init__(self, path, video, new_width=0, new_height=0, num_frames=0):
        self.path, self.video = path, video
        self.new_width, self.new_height = new_width, new_height
        self.reader = data.open_video(path, new_width, new_height) if video else None
        self.num_frames = len(self.reader) if video else num_frames
        if self.num_frames == 0:
            raise data.BadSample(path, 'has no frames')
        self.decoded = 0

    def read(self, indices):
        """Frames for sorted unique 0-based ``indices``."""
        numbers = [i + 1 for i in indices]
        self.decoded += len(numbers)
        if self.video:
            return data.read_video_frames(self.reader, self.path, numbers)
        return data.read_frames(self.path, numbers, self.new_width, self.new_height)


def window_views(frames, opt):
    """uint8 views of one window as evaluation.ViewDataset builds them for a clip."""
    views = evaluation.crop_views(frames, opt.input_size, opt.num_crop)
    return views.reshape((-1, opt.new_length) + views.shape[1:])


def score_windows(source, predictor, opt):
    """Yield (start, end, view logits (V, C)) for every window of ``source``, decoding each frame once."""
    bounds = window_bounds(source.num_frames, opt.window, opt.stride)
    cache = {}
    for number, (start, end) in enumerate(bounds):
        indices = window_frames(start, end, opt)
        missing = sorted(set(indices) - set(cache))
        cache.update(zip(missing, source.read(missing)))
        logits = predictor.view_logits(window_views([cache[i] for i in indices], opt))
        next_start = bounds[number + 1][0] if number + 1 < len(bounds) else source.num_frames
        for index in [i for i in cache if i < next_start]:
            del cache[index]
        yield start, end, logits


def topk_pairs(scores, names, k):
    """[[class name, probability], ...] of the k best classes."""
    top = evaluation.topk_classes(np.asarray(scores)[None], k)[0]
    return [[names[c], float(scores[c])] for c in top]
