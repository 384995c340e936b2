"""scripts/feat_extract.py: one pooled feature per video, the classifier's input, resumable."""
import os
import subprocess
import sys

import numpy as np
import pytest

from recognizer import inputs
from recognizer.errors import UserError
from test_evaluation import REPO, train_checkpoint

NAMES = ['v_Class%02d_g01_c01' % c for c in range(4)]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.getbasetemp())


def view_flags(root, params):
    return ['--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm', '--resume-params', params,
            '--input-size', '32', '--num-segments', '4', '--three-crop']


def extract(root, params, save_dir, *extra):
    syn = os.path.join(root, 'syn')
    args = view_flags(root, params) + ['--data-list', os.path.join(syn, 'ucfTrainTestlist',
                                                                   'ucf101_val_split_1_videos.txt'),
                                       '--need-root', '--data-dir', os.path.join(syn, 'UCF-101'),
                                       '--save-dir', str(save_dir)] + list(extra)
    return subprocess.run([sys.executable, 'scripts/feat_extract.py'] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_data_list_lines_in_gluoncv_and_plain_form(tmp_path):
    listing = tmp_path / 'list.txt'
    listing.write_text('Class00/v_a.avi 16 0\n\nmy videos/clip b.mp4\nframes/v_c\n')
    assert inputs.read_data_list(str(listing)) == ['Class00/v_a.avi', 'my videos/clip b.mp4', 'frames/v_c']
    assert inputs.read_data_list(str(listing), '/data', need_root=True)[0] == '/data/Class00/v_a.avi'
    assert [inputs.input_name(p) for p in ('/x/v_a.avi', '/x/rawframes/v_c/', '/x/a.b')] == ['v_a', 'v_c', 'a.b']
    with pytest.raises(UserError, match='both have the name v_a'):
        inputs.unique_names(['/x/v_a.avi', '/y/v_a'])


@pytest.mark.slow
def test_one_feature_per_video_is_the_classifiers_input(checkpoint, tmp_path):
    import mxnet as mx
    root, params = checkpoint
    done = extract(root, params, tmp_path / 'feat')
    assert done.returncode == 0, done.stderr
    assert '4 feature files written, 0 already there, 0 inputs failed' in done.stdout
    assert sorted(os.listdir(tmp_path / 'feat')) == ['%s_feat.npy' % n for n in NAMES]
    feats = [np.load(tmp_path / 'feat' / ('%s_feat.npy' % n)) for n in NAMES]
    assert all(f.shape == (4096,) and f.dtype == np.float32 for f in feats)     # vgg16: fc7's 4096 values
    # The classifier applied to the pooled feature gives the clip's mean logits, as inference.py saves them.
    videos = [os.path.join(root, 'syn', 'UCF-101', 'Class%02d' % c, n + '.avi') for c, n in enumerate(NAMES)]
    infer = subprocess.run([sys.executable, 'scripts/inference.py'] + view_flags(root, params) +
                           ['--save-logits', '--save-dir', str(tmp_path / 'pred')] + videos, cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert infer.returncode == 0, infer.stderr
    weights = {k.split(':')[-1]: v.asnumpy() for k, v in mx.nd.load(params).items()}
    for name, feat in zip(NAMES, feats):
        logits = np.load(tmp_path / 'pred' / ('%s_logits.npy' % name))
        assert logits.shape == (4,)
        assert np.abs(weights['output.weight'] @ feat + weights['output.bias'] - logits).max() < 1e-4
    predicted = [int(np.argmax(weights['output.weight'] @ f + weights['output.bias'])) for f in feats]
    assert sum(p == c for c, p in enumerate(predicted)) >= 3              # held-out videos; chance is 1 in 4


@pytest.mark.slow
def test_existing_features_are_skipped_and_broken_inputs_reported(checkpoint, tmp_path):
    root, params = checkpoint
    out = tmp_path / 'feat'
    assert extract(root, params, out).returncode == 0
    stamps = {n: os.stat(out / n).st_mtime_ns for n in os.listdir(out)}
    os.remove(out / ('%s_feat.npy' % NAMES[2]))
    broken = tmp_path / 'v_broken.avi'
    broken.write_bytes(b'no video here')
    done = extract(root, params, out, str(broken))
    assert done.returncode == 1
    assert '1 feature files written, 3 already there, 1 inputs failed' in done.stdout
    assert 'v_broken.avi cannot be opened as a video' in done.stderr
    assert sorted(os.listdir(out)) == ['%s_feat.npy' % n for n in NAMES]
    assert all(os.stat(out / n).st_mtime_ns == t for n, t in stamps.items() if NAMES[2] not in n)
