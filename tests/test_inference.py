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
