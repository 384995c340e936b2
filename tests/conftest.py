"""Shared fixtures: a tiny synthetic UCF101-layout set and a runner for the training CLI."""
import os
import subprocess
import sys

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
