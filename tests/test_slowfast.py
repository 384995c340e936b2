"""--slowfast sampling against GluonCV's VideoClsCustom, from frame folders and from videos.

Every frame of the generated clips is one flat grey level equal to its 1-based number (videos:
twice the number, decoding is lossy), so the frames a loader returned can be read back from
their pixels. GluonCV's own __getitem__ reads the same files; its (segments, 3, T, H, W)
output and ours, split per segment, must list the same frame numbers in the same order.
"""
import cv2
import mxnet as mx
import numpy as np
import pytest
from gluoncv.data import VideoClsCustom

from recognizer import data, transforms
from recognizer.errors import UserError

SIZE = 32   # decord cannot decode frames narrower than 32 px
VIDEO_SCALE = 2


def grey(value):
    return np.full((SIZE, SIZE, 3), value, dtype=np.uint8)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """Clips of several lengths as PNG frame folders and MJPG videos, with one list file each."""
    root = tmp_path_factory.mktemp('slowfast')
    lengths = [9, 40, 64, 70, 127]
    frame_lines, video_lines = [], []
    for k, n in enumerate(lengths):
        folder = root / 'frames' / ('clip%d' % k)
        folder.mkdir(parents=True)
        for i in range(1, n + 1):
            cv2.imwrite(str(folder / ('img_%05d.png' % i)), grey(i))
        video = root / 'videos' / ('clip%d.avi' % k)
        video.parent.mkdir(exist_ok=True)
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 25, (SIZE, SIZE))
        for i in range(1, n + 1):
            writer.write(grey(VIDEO_SCALE * i))
        writer.release()
        frame_lines.append('clip%d %d 0' % (k, n))
        video_lines.append('clip%d.avi %d 0' % (k, n))
    (root / 'frames.txt').write_text('\n'.join(frame_lines) + '\n')
    (root / 'videos.txt').write_text('\n'.join(video_lines) + '\n')
    return dict(root=root, lengths=lengths)


def numbers_of(frames, video):
    """1-based frame numbers of (T, H, W, 3) or (3, T, H, W) grey frames."""
    values = np.asarray(frames, dtype=np.float64)
    per_frame = values.mean(axis=(1, 2, 3)) if values.shape[-1] == 3 else values.mean(axis=(0, 2, 3))
    return [int(round(v / (VIDEO_SCALE if video else 1))) for v in per_frame]


def gluoncv_dataset(clips, video, train, new_length, fast, slow, segments):
    list_name = 'videos.txt' if video else 'frames.txt'
    return VideoClsCustom(root=str(clips['root'] / ('videos' if video else 'frames')),
                          setting=str(clips['root'] / list_name), train=train, name_pattern='img_%05d.png',
                          num_segments=segments, new_length=new_length, new_width=SIZE, new_height=SIZE,
                          target_width=SIZE, target_height=SIZE, video_loader=video, use_decord=True,
                          slowfast=True, slow_temporal_stride=slow, fast_temporal_stride=fast)


def gluoncv_segments(dataset, index, video):
    """Frame numbers per segment of GluonCV's item ``index`` (its output is (segments, 3, T, H, W))."""
    clip, _ = dataset[index]
    return [numbers_of(segment, video) for segment in clip.asnumpy()]


def our_dataset(clips, video, train, new_length, fast, slow, segments):
    list_name = 'videos.txt' if video else 'frames.txt'
    items = data.read_clip_list(str(clips['root'] / list_name), str(clips['root'] / ('videos' if video else 'frames')),
                                num_classes=1, video=video, name_pattern='img_%05d.png')
    return data.ClipDataset(items, lambda frames, rng: np.stack(frames), train=train, num_segments=segments,
                            new_length=new_length, new_width=SIZE, new_height=SIZE, video=video, slowfast=(fast, slow),
                            name_pattern='img_%05d.png')


def our_segments(dataset, index, segments):
    clip, _, _ = dataset[(index, 0)]
    return [numbers_of(part, dataset.video) for part in np.split(clip, segments)]


SETTINGS = [(64, 2, 16, 1), (64, 2, 8, 1), (32, 1, 8, 1), (16, 2, 4, 2), (128, 2, 8, 1)]


@pytest.mark.parametrize('video', [False, True], ids=['frames', 'video'])
@pytest.mark.parametrize('new_length,fast,slow,segments', SETTINGS)
def test_validation_frames_equal_gluoncv(clips, video, new_length, fast, slow, segments):
    theirs = gluoncv_dataset(clips, video, False, new_length, fast, slow, segments)
    ours = our_dataset(clips, video, False, new_length, fast, slow, segments)
    for index, n in enumerate(clips['lengths']):
        expected = gluoncv_segments(theirs, index, video)
        assert our_segments(ours, index, segments) == expected, n
        # fast frames, then slow frames, per segment
        assert all(len(seg) == new_length // fast + new_length // slow for seg in expected)


@pytest.mark.parametrize('video', [False, True], ids=['frames', 'video'])
@pytest.mark.parametrize('new_length,fast,slow,segments', SETTINGS)
def test_training_frames_equal_gluoncv_for_its_random_offsets(clips, video, new_length, fast, slow, segments):
    """GluonCV draws offsets with np.random: replay its draw, then compare the frames read from them."""
    theirs = gluoncv_dataset(clips, video, True, new_length, fast, slow, segments)
    for index, n in enumerate(clips['lengths']):
        for seed in range(3):
            np.random.seed(seed)
            offsets, _ = theirs._sample_train_indices(n)
            np.random.seed(seed)
            expected = gluoncv_segments(theirs, index, video)
            flat = data.slowfast_frame_numbers(offsets, n, new_length, fast, slow)
            assert [part.tolist() for part in np.split(np.array(flat), segments)] == expected


def test_training_draws_gluoncv_train_offsets(clips):
    """Our training items take the fast/slow frames from train_offsets drawn with the item's own generator."""
    ours = our_dataset(clips, False, True, 16, 2, 4, 2)
    n = clips['lengths'][3]
    rng = np.random.default_rng([ours.seed, 0, 3, 0])
    offsets = data.train_offsets(n, 2, 16, rng)
    assert our_segments(ours, 3, 2) == [part.tolist() for part in np.split(
        np.array(data.slowfast_frame_numbers(offsets, n, 16, 2, 4)), 2)]
    draws = {tuple(ours.frame_numbers(n, np.random.default_rng(s))[:1]) for s in range(30)}
    assert len(draws) > 5   # the offset is random in training


def test_frame_selection_of_one_segment_by_hand():
    # 64 consecutive frames from frame 5: fast = every 2nd (6, 8, ..., 68), slow = every 16th (20, 36, 52, 68).
    numbers = data.slowfast_frame_numbers([5], 100, 64, 2, 16)
    assert numbers[:32] == list(range(6, 69, 2)) and numbers[32:] == [20, 36, 52, 68]
    # A 9-frame clip: positions stop at frame 9, as GluonCV's loader does.
    assert data.slowfast_frame_numbers([1], 9, 8, 2, 4) == [2, 4, 6, 8, 4, 8]


def test_network_input_splits_segments_into_fast_then_slow_frames(clips):
    ours = our_dataset(clips, False, False, 16, 2, 4, 2)
    clip, _, _ = ours[(2, 0)]
    per_segment = data.frames_per_segment(16, True, 2, 4)
    x = transforms.network_input(mx.nd.array(clip[None], dtype='uint8'), per_segment).asnumpy()
    assert x.shape == (2, 3, 12, SIZE, SIZE)
    expected = [numbers_of(part, False) for part in np.split(clip, 2)]
    # normalised grey levels keep their order: compare the frame order of each segment
    for segment, numbers in zip(x, expected):
        assert np.argsort(segment[0].mean(axis=(1, 2)), kind='stable').tolist() == \
            np.argsort(numbers, kind='stable').tolist()


@pytest.mark.parametrize('new_length,new_step,fast,slow,message', [
    (64, 2, 2, 16, '--new-step must be 1'),
    (64, 1, 3, 16, 'must be a multiple of --fast-temporal-stride 3'),
    (8, 1, 2, 16, 'gives the slow pathway no frame'),
])
def test_impossible_settings_are_refused(new_length, new_step, fast, slow, message):
    with pytest.raises(UserError, match=message):
        data.ClipDataset([], None, True, new_length=new_length, new_step=new_step, slowfast=(fast, slow))


def test_frames_per_segment():
    assert data.frames_per_segment(64, True, 2, 16) == 36
    assert data.frames_per_segment(128, True, 2, 8) == 80
    assert data.frames_per_segment(32, False) == 32


def view_options(new_length, fast, slow, segments, video):
    """The test protocol's options (scripts/test_recognizer.py's flags) for one crop of the whole frame."""
    import argparse
    return argparse.Namespace(input_size=SIZE, num_crop=1, num_segments=segments, new_length=new_length, new_step=1,
                              new_width=SIZE, new_height=SIZE, video_loader=video, slowfast=True,
                              fast_temporal_stride=fast, slow_temporal_stride=slow)


@pytest.mark.parametrize('video', [False, True], ids=['frames', 'video'])
@pytest.mark.parametrize('new_length,fast,slow,segments', SETTINGS)
def test_test_protocol_views_equal_gluoncv_test_mode(clips, video, new_length, fast, slow, segments):
    """scripts/test_recognizer.py --slowfast: each view holds the frames of GluonCV's test_mode item."""
    from recognizer.evaluation import ViewDataset
    theirs = gluoncv_dataset(clips, video, False, new_length, fast, slow, segments)
    theirs.test_mode = True
    list_name = 'videos.txt' if video else 'frames.txt'
    items = data.read_clip_list(str(clips['root'] / list_name), str(clips['root'] / ('videos' if video else 'frames')),
                                num_classes=1, video=video, name_pattern='img_%05d.png')
    ours = ViewDataset(items, view_options(new_length, fast, slow, segments, video), name_pattern='img_%05d.png')
    for index, n in enumerate(clips['lengths']):
        views, _, _, error = ours[index]
        assert error is None and views.shape == (segments, new_length // fast + new_length // slow, SIZE, SIZE, 3)
        assert [numbers_of(view, video) for view in views] == gluoncv_segments(theirs, index, video), n


@pytest.mark.slow
def test_test_recognizer_scores_a_slowfast_checkpoint(tmp_path):
    """The whole test protocol on a (random) SlowFast checkpoint: 36-frame views, every clip scored."""
    import json
    from conftest import run_trainer
    from recognizer.models import build_network
    from recognizer.synthetic import make_synthetic_ucf101
    syn = make_synthetic_ucf101(str(tmp_path / 'syn'), num_classes=2, train_per_class=1, val_per_class=2,
                                num_frames=40, width=54, height=40, seed=1)
    model = 'slowfast_4x16_resnet50_kinetics400'
    net = build_network(model, 2, [mx.cpu()], pretrained_base=False)
    net(mx.nd.zeros((1, 3, data.frames_per_segment(64, True, 2, 16), 64, 64)))
    net.save_parameters(str(tmp_path / 'sf.params'))
    res = run_trainer(['--model', model, '--num-classes', '2', '--resume-params', tmp_path / 'sf.params',
                       '--data-dir', syn['rawframes_dir'], '--val-list', syn['val_list_rawframes'], '--slowfast',
                       '--new-length', '64', '--new-height', '64', '--new-width', '86', '--input-size', '64',
                       '--input-5d', '--save-dir', tmp_path / 'out'], script='scripts/test_recognizer.py')
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['clips'] == 4 and summary['skipped'] == [] and summary['views_per_clip'] == 1
    assert len((tmp_path / 'out' / 'predictions.csv').read_text().splitlines()) == 1 + 4
