"""Training straight from videos (--video-loader --use-decord): same sampling as frame folders."""
import csv
import math

import numpy as np
import pytest

import train_recognizer as tr
from conftest import run_trainer, train_command
from recognizer import data
from recognizer.errors import UserError


def video_command(data_set, save_dir, *extra):
    """train_command reading split 1 from UCF-101/*.avi and the *_videos.txt lists instead of frames."""
    args = train_command(data_set, save_dir, *extra)
    swap = {data_set['rawframes_dir']: data_set['videos_dir'],
            data_set['train_list_rawframes']: data_set['train_list_videos'],
            data_set['val_list_rawframes']: data_set['val_list_videos']}
    return [swap.get(a, a) for a in args] + ['--video-loader', '--use-decord']


def paired_datasets(tiny_set, train, new_width, new_height, monkeypatch):
    """The same list as a frame-folder and a video ClipDataset, recording the frame numbers each reads."""
    read = {'frames': [], 'video': []}
    read_frames, read_video = data.read_frames, data.read_video_frames

    def frames_spy(clip_dir, numbers, *args):
        read['frames'].append(list(numbers))
        return read_frames(clip_dir, numbers, *args)

    def video_spy(reader, path, numbers):
        read['video'].append(list(numbers))
        return read_video(reader, path, numbers)

    monkeypatch.setattr(data, 'read_frames', frames_spy)
    monkeypatch.setattr(data, 'read_video_frames', video_spy)
    subset = 'train' if train else 'val'
    frames = data.read_clip_list(tiny_set['%s_list_rawframes' % subset], tiny_set['rawframes_dir'], 3)
    videos = data.read_clip_list(tiny_set['%s_list_videos' % subset], tiny_set['videos_dir'], 3, video=True)
    common = dict(train=train, num_segments=3, new_width=new_width, new_height=new_height, seed=5)

    def stack(clip_frames, rng):
        # Record the transform's next random draw: both paths must hand it the same generator state.
        return np.stack(clip_frames), rng.integers(1 << 30)

    return data.ClipDataset(frames, stack, **common), data.ClipDataset(videos, stack, video=True, **common), read


@pytest.mark.parametrize('train, new_width, new_height', [(True, 0, 0), (False, 0, 0), (True, 64, 48)])
def test_video_and_frame_folder_give_the_same_samples(tiny_set, monkeypatch, train, new_width, new_height):
    from_frames, from_video, read = paired_datasets(tiny_set, train, new_width, new_height, monkeypatch)
    assert len(from_frames) == len(from_video) == (12 if train else 6)
    shape = (3, new_height or 40, new_width or 54, 3)
    for index in range(len(from_frames)):
        for epoch in (0, 3):
            (a, draw_a), label_a, _ = from_frames[(index, epoch)]
            (b, draw_b), label_b, _ = from_video[(index, epoch)]
            assert label_a == label_b == from_frames.clips[index].label
            assert draw_a == draw_b
            assert a.shape == b.shape == shape and a.dtype == b.dtype == np.uint8
            # The AVIs are MJPG, the frames JPEG of the same renders: close, not identical.
            diff = np.abs(a.astype(np.int16) - b).mean(axis=(1, 2, 3))
            assert diff.max() < 10, diff
    # Exactly the sampled frames are decoded (one per segment), the same numbers on both paths.
    assert read['video'] == read['frames']
    assert all(len(numbers) == 3 and all(1 <= n <= 12 for n in numbers) for numbers in read['video'])
    if train:
        assert len({tuple(n) for n in read['video']}) > 1, 'training offsets should be random'


def test_video_frame_k_is_frame_folder_image_k(tiny_set):
    """No off-by-one: each decoded frame is nearest to the JPEG of the same 1-based number."""
    clip = data.read_clip_list(tiny_set['val_list_videos'], tiny_set['videos_dir'], 3, video=True)[0]
    folder = data.read_clip_list(tiny_set['val_list_rawframes'], tiny_set['rawframes_dir'], 3)[0].path
    numbers = list(range(1, 13))
    jpegs = np.stack(data.read_frames(folder, numbers)).astype(np.int16)
    decoded = np.stack(data.read_video_frames(data.open_video(clip.path), clip.path, numbers))
    assert jpegs.shape == decoded.shape
    for k in range(12):
        distances = np.abs(jpegs - decoded[k]).mean(axis=(1, 2, 3))
        assert distances.argmin() == k, distances


def test_video_loader_needs_use_decord():
    opt = tr.parse_args(['--model', 'vgg16_ucf101', '--video-loader'])
    with pytest.raises(UserError, match='add --use-decord'):
        tr.check_args(opt)


def test_video_list_naming_a_missing_video_is_refused_with_its_line(tiny_set, tmp_path):
    bad = tmp_path / 'train_videos.txt'
    lines = open(tiny_set['train_list_videos']).read().splitlines()
    bad.write_text('\n'.join(lines[:2] + ['Class00/v_Class00_g99_c01.avi 12 0'] + lines[2:]) + '\n')
    with pytest.raises(UserError, match=r'train_videos.txt:3: video .*g99_c01.avi does not exist'):
        data.read_clip_list(str(bad), tiny_set['videos_dir'], 3, video=True)


def final_row(save_dir):
    with open(save_dir / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    return {k: float(v) for k, v in rows[0].items()}


@pytest.mark.slow
def test_one_epoch_from_videos_trains_like_one_epoch_from_frames(tiny_set, tmp_path):
    runs = {}
    for name, command in (('video', video_command), ('frames', train_command)):
        save = tmp_path / name
        result = run_trainer(command(tiny_set, save, '--num-epochs', '1', '--batch-norm', '--lr', '0.001'))
        assert result.returncode == 0, result.stderr[-3000:]
        assert '[Epoch 000] validation: acc-top1=' in result.stderr
        runs[name] = final_row(save)
    video, frames = runs['video'], runs['frames']
    assert video['bad_samples'] == 0
    for key in ('train_loss', 'val_loss', 'val_top1'):
        assert math.isfinite(video[key])
    # Same seed, same clips, same offsets and crops: only the codec noise differs.
    assert video['train_loss'] == pytest.approx(frames['train_loss'], rel=0.05)
    assert video['val_loss'] == pytest.approx(frames['val_loss'], rel=0.05)
