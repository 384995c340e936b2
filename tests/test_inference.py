"""scripts/inference.py: class names for videos and frame folders, failures reported per input."""
import json
import os
import subprocess
import sys

import pytest

from test_evaluation import REPO, train_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.getbasetemp())


def infer(root, params, inputs, *extra):
    syn = os.path.join(root, 'syn')
    args = ['--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm', '--resume-params', params,
            '--input-size', '32', '--num-segments', '10', '--class-index',
            os.path.join(syn, 'ucfTrainTestlist', 'classInd.txt')] + list(extra) + [str(i) for i in inputs]
    return subprocess.run([sys.executable, 'scripts/inference.py'] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def held_out_videos(root):
    """The split-1 test videos (never trained on), one per class, with their class names."""
    syn = os.path.join(root, 'syn')
    names = ['Class%02d' % c for c in range(4)]
    return [os.path.join(syn, 'UCF-101', n, 'v_%s_g01_c01.avi' % n) for n in names], names


def test_held_out_videos_are_named_by_their_class_in_json(checkpoint):
    root, params = checkpoint
    videos, names = held_out_videos(root)
    done = infer(root, params, videos, '--json', '--topk', '3', '--three-crop')
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report['num_crop'] == 3 and [r['input'] for r in report['results']] == videos
    for result, name in zip(report['results'], names):
        top = result['top']
        assert result['ok'] and len(top) == 3
        assert [t['probability'] for t in top] == sorted((t['probability'] for t in top), reverse=True)
        assert 0.0 <= top[-1]['probability'] <= top[0]['probability'] <= 1.0
    hits = sum(r['top'][0]['class'] == n for r, n in zip(report['results'], names))
    assert hits >= 3                                             # chance is 1 in 4


def test_unreadable_inputs_are_reported_and_the_others_still_classified(checkpoint, tmp_path):
    root, params = checkpoint
    videos, names = held_out_videos(root)
    frames = os.path.join(root, 'syn', 'rawframes', 'Class02', 'v_Class02_g01_c01')
    broken = tmp_path / 'broken.avi'
    broken.write_bytes(b'not a video at all')
    empty = tmp_path / 'empty_folder'
    empty.mkdir()
    missing = tmp_path / 'missing.avi'
    done = infer(root, params, [videos[1], broken, frames, missing, empty], '--topk', '2')
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 3
    assert str(broken) in errors[0] and 'cannot be opened as a video' in errors[0]
    assert str(missing) in errors[1] and 'does not exist' in errors[1]
    assert str(empty) in errors[2] and 'img_00001.jpg' in errors[2]
    assert '3 of 5 inputs could not be classified' in done.stderr
    blocks = done.stdout.strip().split('\n')
    assert blocks[0] == videos[1] and blocks[3] == frames and len(blocks) == 6
    assert blocks[1].split()[:2] == ['1.', 'Class01'] and blocks[4].split()[:2] == ['1.', 'Class02']


def long_video(path, classes, frames_per_class=24, seed=5):
    """An AVI that shows the synthetic classes one after the other, ``frames_per_class`` frames each."""
    import cv2
    import numpy as np
    from recognizer.synthetic import render_clip
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25, (56, 40))
    for c in classes:
        for frame in render_clip(c, rng, frames_per_class, 56, 40):
            writer.write(frame)
    writer.release()
    return str(path)


def test_a_long_video_gets_one_prediction_per_window_that_follows_its_content(checkpoint, tmp_path):
    root, params = checkpoint
    video = long_video(tmp_path / 'long.avi', [0, 2, 1])
    done = infer(root, params, [video], '--window', '24', '--stride', '24', '--num-segments', '4', '--topk', '2',
                 '--json', '--save-logits', '--save-preds', '--save-dir', tmp_path / 'pred')
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report['inputs'] == [{'input': video, 'ok': True, 'num_frames': 72, 'windows': 3}]
    assert [(w['start'], w['end']) for w in report['windows']] == [(0, 24), (24, 48), (48, 72)]
    for w in report['windows']:
        assert w['input'] == video and len(w['topk']) == 2 and w['topk'][0][1] >= w['topk'][1][1]
    assert [w['topk'][0][0] for w in report['windows']] == ['Class00', 'Class02', 'Class01']
    import numpy as np
    assert np.load(tmp_path / 'pred' / 'long_logits.npy').shape == (3, 4)
    assert list(np.load(tmp_path / 'pred' / 'long_preds.npy')) == [0, 2, 1]


def test_windows_as_csv_with_a_tail_window_and_overlap(checkpoint, tmp_path):
    import csv
    root, params = checkpoint
    video = long_video(tmp_path / 'long.avi', [3, 1], frames_per_class=25)
    done = infer(root, params, [video], '--window', '20', '--stride', '10', '--num-segments', '4', '--topk', '3')
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(done.stdout.splitlines()))
    bounds = sorted({(int(r['start']), int(r['end'])) for r in rows})
    assert bounds == [(0, 20), (10, 30), (20, 40), (30, 50)]       # 50 frames: the last window ends at the end
    assert len(rows) == 4 * 3 and [r['rank'] for r in rows[:3]] == ['1', '2', '3']
    assert rows[0]['class'] == 'Class03' and rows[-3]['class'] == 'Class01'


def test_a_gluoncv_data_list_with_saved_logits_and_predictions(checkpoint, tmp_path):
    import numpy as np
    root, params = checkpoint
    syn = os.path.join(root, 'syn')
    listing = os.path.join(syn, 'ucfTrainTestlist', 'ucf101_val_split_1_videos.txt')
    done = infer(root, params, [], '--data-list', listing, '--need-root', '--data-dir', os.path.join(syn, 'UCF-101'),
                 '--save-logits', '--save-preds', '--save-dir', tmp_path / 'pred', '--topk', '1')
    assert done.returncode == 0, done.stderr
    names = ['v_Class%02d_g01_c01' % c for c in range(4)]
    assert sorted(os.listdir(tmp_path / 'pred')) == sorted(['%s_%s.npy' % (n, k) for n in names
                                                            for k in ('logits', 'preds')])
    preds = [int(np.load(tmp_path / 'pred' / ('%s_preds.npy' % n))) for n in names]
    logits = [np.load(tmp_path / 'pred' / ('%s_logits.npy' % n)) for n in names]
    assert all(v.shape == (4,) for v in logits) and preds == [int(np.argmax(v)) for v in logits]
    assert sum(p == c for c, p in enumerate(preds)) >= 3
    printed = [line.split()[1] for line in done.stdout.splitlines() if line.strip().startswith('1.')]
    assert printed == ['Class%02d' % p for p in preds]


def test_slowfast_windows_are_refused_before_anything_runs(tmp_path):
    from conftest import assert_user_error
    res = subprocess.run([sys.executable, 'scripts/inference.py', '--model', 'slowfast_4x16_resnet50_kinetics400',
                          '--slowfast', '--new-length', '64', '--input-5d', '--window', '64', '--resume-params',
                          str(tmp_path / 'none.params'), str(tmp_path / 'clip.mp4')],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert_user_error(res, '--window does not sample --slowfast views yet')
