"""Shared fixtures: a tiny synthetic UCF101-layout set and a runner for the training CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognizer.synthetic import make_synthetic_ucf101  # noqa: E402


@pytest.fixture(scope='session')
def tiny_set(tmp_path_factory):
    """3 classes, 4 train + 2 val clips each, 12 frames of 54x40 (frames and videos)."""
    root = tmp_path_factory.mktemp('tiny_ucf101')
    return make_synthetic_ucf101(str(root / 'syn'), num_classes=3, train_per_class=4, val_per_class=2,
                                 num_frames=12, width=54, height=40, seed=3)


def train_command(data, save_dir, *extra):
    """The issue's reference command line, at 32 px, on ``data`` (a make_synthetic_ucf101 dict)."""
    return ['--model', 'vgg16_ucf101', '--num-segments', '3', '--num-classes', str(len(data['classes'])),
            '--data-dir', data['rawframes_dir'], '--train-list', data['train_list_rawframes'],
            '--val-list', data['val_list_rawframes'], '--input-size', '32', '--new-height', '40',
            '--new-width', '53', '--batch-size', '2', '--num-epochs', '2', '--lr', '0.01', '-j', '0',
            '--no-pretrained-base', '--save-dir', str(save_dir)] + list(extra)


def run_trainer(args, env=None, timeout=300, script='train_recognizer.py'):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, os.path.join(REPO, script)] + [str(a) for a in args],
                          cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


TIMING_COLUMNS = ('samples_per_sec', 'epoch_time')


def snapshot(folder):
    """Names, sizes and contents of everything in a folder, to prove nothing changed."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def metrics_without_timing(save):
    lines = (save / 'metrics.csv').read_text().splitlines()
    header = lines[0].split(',')
    keep = [i for i, name in enumerate(header) if name not in TIMING_COLUMNS]
    return [[line.split(',')[i] for i in keep] for line in lines]


def fit_quickly(syn, params_path, steps=30, seed=0):
    """Train VGG16-BN at 32 px on ``syn`` and save it in train_recognizer.py's checkpoint format.

    train_recognizer.py needs well over a hundred SGD steps to get VGG16-BN above chance here (its dropout
    of 0.9 before the classifier forces a small learning rate), too slow for a unit test; the same network,
    with dropout off and Adam, learns the synthetic classes in a few dozen steps. Evaluation and fine-tuning
    only see the saved parameters, which have the same names and shapes either way.
    """
    import mxnet as mx
    from mxnet import autograd, gluon, nd
    from recognizer import data, transforms
    from recognizer.models import build_network
    mx.random.seed(seed)
    num_classes = len(syn['classes'])
    net = build_network('vgg16_ucf101', num_classes, [mx.cpu()], pretrained_base=False, batch_norm=True)
    net.apply(lambda block: setattr(block, '_rate', 0.0) if isinstance(block, gluon.nn.Dropout) else None)
    clips = data.read_clip_list(syn['train_list_rawframes'], syn['rawframes_dir'], num_classes)
    dataset = data.ClipDataset(clips, lambda frames, rng: transforms.train_transform(frames, rng, 32, [1.0, 0.875]),
                               train=True, num_segments=1)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 2e-4})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.default_rng(seed)
    for step in range(steps):
        batch = data.batchify([dataset[(int(i), step)] for i in rng.choice(len(clips), 8, replace=False)])
        x = transforms.normalize_on_device(nd.array(batch[0], dtype='uint8')).reshape((-1, 3, 32, 32))
        with autograd.record():
            loss = loss_fn(net(x), nd.array(batch[1]))
        loss.backward()
        trainer.step(8)
    net.save_parameters(params_path)


def assert_user_error(res, *words):
    """A script run that failed with exit 2 and one `error:` line holding every word."""
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    for word in words:
        assert word in lines[0]
