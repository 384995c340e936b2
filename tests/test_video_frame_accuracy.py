"""Frame accuracy of the video loader on codecs with inter-frame coding and B-frames.

The frames decord returns for sampled numbers must be the frames the preparation scripts extract
(recognizer.extract, the decoder scripts/prepare_ucf101.py runs: OpenCV reading every frame in
order) under the same 1-based numbers. Every frame carries its own number in its pixels
(recognizer.videocodecs.stamp_number), so an off-by-one seek is caught even where neighbouring
frames look alike. The MJPG videos of the other tests never exercise seeking: every MJPG frame
is a keyframe.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from recognizer import data, extract, videocodecs, videoread
from recognizer.synthetic import make_synthetic_ucf101, render_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH, HEIGHT, NUM_FRAMES, KEYINT = 64, 48, 60, 20
# JPEG (quality 95) noise between an extracted frame and the same decoded frame, mean absolute
# difference over pixels (about 3 on these noisy frames); neighbouring frames differ by at least
# twice as much (checked in the test, so that the bound means something).
JPEG_TOLERANCE = 4.0
# x264 places B-frames where it finds them worth it, few on this noisy content: make it use them all.
FIXED_B_FRAMES = {'h264': {'x264opts': 'b-adapt=0:scenecut=0'}}


def numbered_clip(seed, num_frames=NUM_FRAMES, width=WIDTH, height=HEIGHT):
    """BGR frames of a moving synthetic object, each stamped with its 1-based number."""
    frames = render_clip(seed % 8, np.random.default_rng(seed), num_frames, width, height)
    return [videocodecs.stamp_number(img, n) for n, img in enumerate(frames, 1)]


def extracted(video, tmp_path):
    """Frame folder of ``video`` as the preparation scripts write it (at the video's own size)."""
    folder = str(tmp_path / ('frames_' + os.path.basename(video)))
    key, count, error = extract.extract_video(('v', video, folder, 0, 0, data.NAME_PATTERN))
    assert error is None and count == NUM_FRAMES, error
    return folder


# (codec, container, how the loader reads it, recognizer.videoread): decord's seeking is wrong for
# MPEG-4 part 2 with B-frames and in .avi files, whose frames the loader decodes in order, by
# timestamp with PyAV ('skip') or with OpenCV where there are no timestamps ('order').
CASES = [('h264', '.mp4', 'skip'), ('mpeg4', '.mkv', 'skip'), ('h264', '.avi', 'order'), ('mpeg4', '.avi', 'order')]


@pytest.fixture(scope='module', params=CASES, ids=['%s%s' % case[:2] for case in CASES])
def coded(request, tmp_path_factory):
    """(codec, video path, frame folder, picture types, keyframe flags) for one inter-frame codec."""
    codec, container, mode = request.param
    tmp = tmp_path_factory.mktemp(codec)
    video = videocodecs.write_video(str(tmp / ('clip' + container)), numbered_clip(1), codec, keyint=KEYINT,
                                    options=FIXED_B_FRAMES.get(codec))
    assert data.open_video(video).mode == mode
    types, keys = videocodecs.frame_types(video)
    assert len(types) == NUM_FRAMES
    # The file really is what the test is about: B-frames, and several keyframes to seek between.
    assert types.count('B') >= NUM_FRAMES // 4 and sum(keys) >= 2, (types, keys)
    return codec, video, extracted(video, tmp), types, keys


def sampled_numbers(keys, types):
    """1-based frame numbers out of order: B-frames, frames just after and before keyframes,
    backward jumps across keyframes, a repeat and the last frame; no keyframe itself."""
    b_frames = [i + 1 for i, t in enumerate(types) if t == 'B' and not keys[i]]
    key_numbers = [i + 1 for i, k in enumerate(keys) if k]
    after_key = [k + 1 for k in key_numbers if k < NUM_FRAMES and not keys[k]]
    before_key = [k - 1 for k in key_numbers[1:] if not keys[k - 2]]
    numbers = [b_frames[-1], b_frames[0], after_key[-1], before_key[0], b_frames[len(b_frames) // 2],
               after_key[0], b_frames[0], NUM_FRAMES]
    assert not any(keys[n - 1] for n in numbers if n != NUM_FRAMES)
    return numbers


def assert_same_frames(decoded, folder, numbers):
    """Each decoded RGB frame carries its number and equals the extracted JPEG of that number
    within JPEG noise, while differing clearly from the JPEGs of the neighbouring numbers."""
    for frame, n in zip(decoded, numbers):
        assert videocodecs.read_number(frame) == n, 'asked for frame %d, got frame %d' % (
            n, videocodecs.read_number(frame))
        near = [m for m in (n - 1, n, n + 1) if 1 <= m <= NUM_FRAMES]
        diffs = {m: np.abs(frame.astype(np.int16) - jpeg).mean()
                 for m, jpeg in zip(near, data.read_frames(folder, near))}
        assert diffs[n] < JPEG_TOLERANCE, (n, diffs)
        assert all(d > 2 * diffs[n] for m, d in diffs.items() if m != n), (n, diffs)


def test_sampled_frames_equal_the_extracted_frames_of_the_same_numbers(coded):
    codec, video, folder, types, keys = coded
    numbers = sampled_numbers(keys, types)
    decoded = data.read_video_frames(data.open_video(video), video, numbers)
    assert len(decoded) == len(numbers) and decoded[0].shape == (HEIGHT, WIDTH, 3)
    assert_same_frames(decoded, folder, numbers)


def test_reads_in_increasing_order_go_on_from_the_last_frame_decoded(coded, monkeypatch):
    """recognizer.windows reads a long video in increasing chunks: each frame is decoded once,
    except after a step back."""
    codec, video, folder, _, _ = coded
    reader = data.open_video(video)
    restarts = []
    for owner, name in ((videoread.VideoFile, '_open_capture'), (videoread.TimestampDecoder, '_restart_at')):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, original=original: restarts.append(a[1:]) or original(*a))
    chunks = [[1, 2, 5], [6, 9], [10, 14, 15], [KEYINT - 1, KEYINT], [3]]
    for numbers in chunks:
        assert [videocodecs.read_number(f) for f in data.read_video_frames(reader, video, numbers)] == numbers
    assert len(restarts) == 2, restarts    # at the first frame, and for the step back to frame 3


def test_inaccurate_seeking_is_said_once_per_codec_and_container(tmp_path, caplog):
    frames = numbered_clip(2, num_frames=30)
    for k in range(2):
        videocodecs.write_video(str(tmp_path / ('%d.avi' % k)), frames, 'mpeg4', keyint=10)
    videoread._warned.discard(('FMP4', '.avi'))    # the pytest process may have read one before
    with caplog.at_level('WARNING', logger='recognizer.videoread'):
        for k in range(2):
            path = str(tmp_path / ('%d.avi' % k))
            assert videocodecs.read_number(data.read_video_frames(data.open_video(path), path, [7])[0]) == 7
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and 'decord cannot be trusted to seek in FMP4 videos in .avi files' in said[0], said


def test_training_samples_from_the_video_equal_those_from_its_frames(coded):
    """The training loader's own draws (3 segments x 2 frames, several epochs) on both paths."""
    codec, video, folder, _, _ = coded
    common = dict(train=True, num_segments=3, new_length=2, new_step=3, seed=11)

    def stack(frames, rng):
        return np.stack(frames)
    from_video = data.ClipDataset([data.Clip(video, -1, 0, 1)], stack, video=True, **common)
    from_frames = data.ClipDataset([data.Clip(folder, NUM_FRAMES, 0, 1)], stack, **common)
    seen = set()
    for epoch in range(6):
        a, _, _ = from_video[(0, epoch)]
        b, _, _ = from_frames[(0, epoch)]
        numbers = [videocodecs.read_number(img) for img in b]
        seen.update(numbers)
        assert [videocodecs.read_number(img) for img in a] == numbers
        assert np.abs(a.astype(np.int16) - b).mean() < JPEG_TOLERANCE
    assert len(seen) > 12, 'the epochs should sample many different frames'


@pytest.mark.slow
def test_prepare_ucf101_frames_equal_decord_frames_of_xvid_avi_with_b_frames(tmp_path):
    """UCF101's own format end to end: XviD .avi files with B-frames, extracted by the script."""
    root = str(tmp_path / 'ucf101')
    syn = make_synthetic_ucf101(root, num_classes=2, train_per_class=1, val_per_class=1, num_frames=NUM_FRAMES,
                                width=WIDTH, height=HEIGHT, frames=False)
    videos = sorted(os.path.join(d, f) for d, _, files in os.walk(syn['videos_dir']) for f in files)
    for seed, path in enumerate(videos):
        videocodecs.write_video(path, numbered_clip(seed), 'mpeg4', keyint=KEYINT)
    res = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'prepare_ucf101.py'),
                          '--src_dir', syn['videos_dir'], '--anno_dir', syn['anno_dir'],
                          '--out_dir', os.path.join(root, 'rawframes'), '--out_list_path', os.path.join(root, 'lists'),
                          '--num_worker', '1', '--new_width', '0', '--new_height', '0'],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'decoded %d video(s)' % len(videos) in res.stdout
    for path in videos:
        types, keys = videocodecs.frame_types(path)
        numbers = sampled_numbers(keys, types)
        folder = os.path.join(root, 'rawframes', os.path.relpath(os.path.splitext(path)[0], syn['videos_dir']))
        assert_same_frames(data.read_video_frames(data.open_video(path), path, numbers), folder, numbers)


def test_a_missing_pyav_is_one_clear_error_not_a_bad_sample(tmp_path, monkeypatch):
    from recognizer.errors import UserError
    video = videocodecs.write_video(str(tmp_path / 'clip.mp4'), numbered_clip(3, num_frames=30), 'h264', keyint=10)
    monkeypatch.setitem(sys.modules, 'av', None)   # `import av` now raises ImportError
    with pytest.raises(UserError, match='needs PyAV to be decoded .*pip install -r requirements.txt'):
        data.read_video_frames(data.open_video(video), video, [5, 12])
