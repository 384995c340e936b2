"""scripts/demo.sh plumbing on a tiny set: Python check, data reuse, continue/move-aside, the summary.

The real demo (a few minutes of training) is not run here; DEMO_* variables shrink it to one
batch per epoch so that only the script's own logic is exercised.
"""
import csv
import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO


def run_demo(tmp_path, epochs, min_top1='0', python=sys.executable):
    env = dict(os.environ, PYTHON=python, DEMO_DATA=str(tmp_path / 'data'), DEMO_DIR=str(tmp_path / 'demo'),
               DEMO_EPOCHS=str(epochs), DEMO_TRAIN_PER_CLASS='2', DEMO_VAL_PER_CLASS='1', DEMO_WORKERS='0',
               DEMO_MIN_TOP1=min_top1)
    env.pop('VIRTUAL_ENV', None)
    return subprocess.run(['bash', os.path.join(REPO, 'scripts', 'demo.sh')], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)


def metrics(run_dir):
    with open(os.path.join(str(run_dir), 'metrics.csv')) as f:
        return list(csv.DictReader(f))


def summary(stdout):
    """{label: value} of the lines after '==== demo summary ===='."""
    lines = stdout.split('==== demo summary ====')[1].strip().splitlines()
    return dict(re.match(r'(.+?):\s+(.*)', line).groups() for line in lines)


def check_summary(result, run_dir, epochs):
    rows = metrics(run_dir)
    assert [int(r['epoch']) for r in rows] == list(range(epochs))
    found = summary(result.stdout)
    top1 = float(rows[-1]['val_top1'])
    assert found['final validation top-1'] == '%.3f after %d epochs (chance 0.200: 5 classes)' % (top1, epochs)
    assert os.path.isfile(found['training curves (plot)']) and found['training curves (plot)'].endswith('.png')
    best = found['best checkpoint']
    assert best == 'none' if top1 == 0 else (os.path.isfile(best) and best.endswith('-best.params'))
    assert re.fullmatch(r'\d+ min \d\d s', found['wall time'])
    return found


@pytest.mark.slow
def test_demo_runs_continues_an_interrupted_run_and_moves_a_finished_one_aside(tmp_path):
    first = run_demo(tmp_path, 1)
    assert first.returncode == 0, first.stderr[-3000:]
    assert '[Epoch 000] validation: acc-top1=' in first.stderr
    check_summary(first, tmp_path / 'demo', 1)
    assert (tmp_path / 'data' / 'DEMO_DATA_COMPLETE').is_file()

    # Asking for more epochs than the run in DEMO_DIR has: it is continued with --auto-resume.
    second = run_demo(tmp_path, 2)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'reusing the synthetic set' in second.stdout
    assert 'continuing the interrupted run' in second.stderr and '(1 of 2 epochs done)' in second.stderr
    assert 'resumed from' in second.stderr
    check_summary(second, tmp_path / 'demo', 2)

    # A finished run is moved aside, never deleted, and a fresh one trained; a missed target exits 1.
    third = run_demo(tmp_path, 1, min_top1='1.01')
    assert third.returncode == 1
    assert 'below the expected 1.01' in third.stderr
    moved = glob.glob(str(tmp_path / 'demo.*'))
    assert len(moved) == 1 and 'holds a finished run; moving it to %s' % moved[0] in third.stderr
    assert len(metrics(moved[0])) == 2
    check_summary(third, tmp_path / 'demo', 1)


def test_demo_refuses_a_python_mxnet_cannot_run_on(tmp_path):
    fake = tmp_path / 'python3.12'
    fake.write_text('#!/bin/sh\ncase "$*" in *platform*) echo 3.12.1; exit 0;; esac\nexit 1\n')
    fake.chmod(0o755)
    result = run_demo(tmp_path, 1, python=str(fake))
    assert result.returncode == 1
    assert 'is Python 3.12.1; MXNet 1.9.1 needs Python 3.8-3.11' in result.stderr
    assert not (tmp_path / 'data').exists() and not (tmp_path / 'demo').exists()
