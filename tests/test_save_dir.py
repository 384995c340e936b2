"""One run per save dir (the lock), and resume points that survive damage."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, metrics_without_timing, run_trainer, snapshot, train_command
from recognizer import checkpoint, lock
from recognizer.errors import UserError

ARGS = ('--batch-norm', '--lr', '0.001', '--seed', '5')
HOLD_LOCK = """
import sys, time
sys.path.insert(0, %r)
from recognizer.lock import SaveDirLock
held = SaveDirLock(sys.argv[1]).acquire()
print('locked', flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding the lock of tmp_path/'held' (killed at the end)."""
    folder = tmp_path / 'held'
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, '-c', HOLD_LOCK % REPO, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    yield folder, proc
    proc.kill()
    proc.wait()


def test_a_held_save_dir_is_refused_naming_the_holder(holder):
    folder, proc = holder
    before = snapshot(folder)
    with pytest.raises(UserError, match=r'in use by another run \(pid %d on \S+ since \d{4}-' % proc.pid):
        lock.check_not_in_use(str(folder))
    with pytest.raises(UserError, match='pid %d' % proc.pid):
        lock.SaveDirLock(str(folder)).acquire()
    assert snapshot(folder) == before


def test_the_lock_of_a_killed_process_does_not_block(holder):
    folder, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock.check_not_in_use(str(folder))
    held = lock.SaveDirLock(str(folder)).acquire()
    assert '"pid": %d' % os.getpid() in (folder / lock.LOCK_NAME).read_text()
    held.release()


@pytest.mark.slow
def test_a_second_run_into_a_busy_save_dir_refuses_and_the_first_is_unaffected(tiny_set, tmp_path):
    lone, shared = tmp_path / 'lone', tmp_path / 'shared'
    assert run_trainer(train_command(tiny_set, lone, *ARGS)).returncode == 0
    first = subprocess.Popen([sys.executable, os.path.join(REPO, 'train_recognizer.py')] +
                             train_command(tiny_set, shared, *ARGS), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (shared / 'train.log').exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    tic = time.time()
    second = run_trainer(train_command(tiny_set, shared, *ARGS, '--auto-resume'))
    refused_in = time.time() - tic
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert second.returncode == 2 and refused_in < 30
    errors = second.stderr.strip().splitlines()
    assert len(errors) == 1 and 'is in use by another run (pid %d on ' % first.pid in errors[0], errors
    assert metrics_without_timing(shared) == metrics_without_timing(lone)
    name = 'ucf101-vgg16_ucf101-001.params'
    assert (shared / name).read_bytes() == (lone / name).read_bytes()


@pytest.fixture(scope='module')
def two_epoch_run(tiny_set, tmp_path_factory):
    """A finished 2-epoch run (resume points after epochs 0 and 1) and a straight 3-epoch run."""
    base = tmp_path_factory.mktemp('resume_damage')
    for name, epochs in (('two', '2'), ('three', '3')):
        done = run_trainer(train_command(tiny_set, base / name, *ARGS, '--num-epochs', epochs))
        assert done.returncode == 0, done.stderr[-2000:]
    return base


def copy_run(source, target):
    import shutil
    shutil.copytree(str(source), str(target))
    return target


@pytest.mark.slow
def test_a_truncated_newest_resume_point_falls_back_to_the_older_one(tiny_set, two_epoch_run, tmp_path):
    save = copy_run(two_epoch_run / 'two', tmp_path / 'run')
    points = checkpoint.list_resume_points(str(save))
    assert [os.path.basename(p) for p in points] == ['epoch-001-iter-00000', 'epoch-002-iter-00000']
    full_size = os.path.getsize(points[1] + '.params')
    with open(points[1] + '.params', 'r+b') as f:
        f.truncate(1000)
    done = run_trainer(train_command(tiny_set, save, *ARGS, '--num-epochs', '3', '--auto-resume'))
    assert done.returncode == 0, done.stderr[-2000:]
    warnings = [line for line in done.stderr.splitlines() if 'rejected resume point' in line]
    assert warnings == ['--auto-resume: rejected resume point %s: its .params has 1000 bytes, the .json says %d '
                        '(truncated or overwritten)' % (points[1], full_size)]
    assert 'resumed from %s: epoch 1, iteration 0' % points[0] in done.stderr
    straight = two_epoch_run / 'three'
    assert metrics_without_timing(save) == metrics_without_timing(straight)
    name = 'ucf101-vgg16_ucf101-002.params'
    assert (save / name).read_bytes() == (straight / name).read_bytes()
    assert 'rejected resume point' in (save / 'train.log').read_text()


@pytest.mark.slow
def test_every_resume_point_damaged_stops_and_changes_nothing(tiny_set, two_epoch_run, tmp_path):
    save = copy_run(two_epoch_run / 'two', tmp_path / 'run')
    first, newest = checkpoint.list_resume_points(str(save))
    with open(newest + '.params', 'r+b') as f:
        f.truncate(1000)
    with open(first + '.states', 'r+b') as f:   # same size, garbage inside: found by loading it
        f.write(b'\0' * 64)
    before = snapshot(save)
    done = run_trainer(train_command(tiny_set, save, *ARGS, '--num-epochs', '3', '--auto-resume'))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and 'Traceback' not in done.stderr
    assert errors[0].startswith('error: --auto-resume: no usable resume point in %s/resume (' % save)
    assert newest in errors[0] and first in errors[0] and 'move resume/ aside' in errors[0]
    assert snapshot(save) == before


def assert_no_partial_checkpoint(save):
    """Every checkpoint file under its final name is whole: .params load, resume points match their .json."""
    from mxnet import nd
    for root, _, files in os.walk(str(save)):
        for name in files:
            if name.endswith('.params') and '.tmp-' not in name:
                assert nd.load(os.path.join(root, name)), name
    for prefix in checkpoint.resume_point_prefixes(str(save)):
        damage = checkpoint.resume_point_damage(prefix)
        assert damage is None or 'write was interrupted' in damage, (prefix, damage)


@pytest.mark.slow
def test_kill9_at_random_moments_then_auto_resume_ends_bit_identical(tiny_set, tmp_path):
    args = ARGS + ('--num-epochs', '3')
    straight = tmp_path / 'straight'
    tic = time.time()
    assert run_trainer(train_command(tiny_set, straight, *args)).returncode == 0
    duration = time.time() - tic
    killed = tmp_path / 'killed'
    command = [sys.executable, os.path.join(REPO, 'train_recognizer.py')] + train_command(tiny_set, killed, *args)
    rng = np.random.default_rng(17)
    for attempt in range(3):
        proc = subprocess.Popen(command + (['--auto-resume'] if attempt else []), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(float(rng.uniform(0.3, 0.9)) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert_no_partial_checkpoint(killed)
    done = run_trainer(train_command(tiny_set, killed, *args, '--auto-resume'))
    assert done.returncode == 0, done.stderr[-2000:]
    assert_no_partial_checkpoint(killed)
    assert metrics_without_timing(killed) == metrics_without_timing(straight)
    name = 'ucf101-vgg16_ucf101-002.params'
    assert (killed / name).read_bytes() == (straight / name).read_bytes()
