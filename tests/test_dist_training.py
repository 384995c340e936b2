"""Data-parallel training through MXNet's parameter server, on loopback only.

scripts/launch_dist.py starts 1 scheduler, 1 server and 2 workers on 127.0.0.1, each
running train_recognizer.py --kvstore dist_sync on a small synthetic set; every run is
bounded by the launcher's --timeout and by subprocess timeouts, and the process table
is checked afterwards.  RECOGNIZER_SHARD_DUMP makes each worker write the training-list
indices it read per epoch, which is how the shards are checked.
"""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import mxnet as mx
import pytest

from conftest import REPO, train_command
from recognizer.errors import UserError
from recognizer.kvstore import Allreduce, agree_on_resume_point, average_running_stats
from recognizer.synthetic import make_synthetic_ucf101

LAUNCHER = os.path.join(REPO, 'scripts', 'launch_dist.py')
NUM_TRAIN = 24      # 3 classes x 8: 12 clips per worker, 6 steps of 2 per epoch
NUM_VAL = 6


@pytest.fixture(scope='module')
def dist_set(tmp_path_factory):
    """A set no other test trains on (its own seed), 3 classes, 32 px crops."""
    root = tmp_path_factory.mktemp('dist_ucf101')
    return make_synthetic_ucf101(str(root / 'syn'), num_classes=3, train_per_class=8, val_per_class=2,
                                 num_frames=12, width=54, height=40, seed=17)


def launch_command(data, save_dir, *extra, timeout=150):
    trainer = train_command(data, save_dir, '--kvstore', 'dist_sync', '--batch-norm', '--lr', '0.001',
                            '--log-interval', '1', *extra)
    return [sys.executable, LAUNCHER, '-n', '2', '-s', '1', '--grace', '2', '--timeout', str(timeout),
            sys.executable, os.path.join(REPO, 'train_recognizer.py')] + trainer


def dist_env(shard_dir):
    os.makedirs(shard_dir, exist_ok=True)
    # One OpenMP thread per process: 2 workers + server + scheduler share 2 cores.
    return dict(os.environ, OMP_NUM_THREADS='1', RECOGNIZER_SHARD_DUMP=str(shard_dir))


def processes_mentioning(marker, role=None):
    """PIDs of live processes whose command line contains ``marker`` (and with DMLC_ROLE=role)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().decode(errors='replace')
            if marker not in cmdline or int(pid) == os.getpid():
                continue
            if role is not None:
                with open('/proc/%s/environ' % pid, 'rb') as handle:
                    if ('DMLC_ROLE=%s' % role).encode() not in handle.read().split(b'\0'):
                        continue
        except OSError:
            continue
        found.append(int(pid))
    return found


def assert_nothing_left(marker, wait=5.0):
    deadline = time.monotonic() + wait
    while processes_mentioning(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(marker) == []


def read_shards(shard_dir, epoch):
    shards = {}
    for rank in (0, 1):
        with open(os.path.join(shard_dir, 'shard-rank%d-epoch%03d.json' % (rank, epoch))) as handle:
            shards[rank] = json.load(handle)['indices']
    return shards


@pytest.mark.slow
def test_two_workers_train_the_same_model_on_disjoint_shards(dist_set, tmp_path):
    save, shard_dir = tmp_path / 'run', tmp_path / 'shards'
    start = time.monotonic()
    result = subprocess.run(launch_command(dist_set, save), cwd=REPO, env=dist_env(shard_dir),
                            capture_output=True, text=True, timeout=200)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-4000:]
    assert 'Traceback' not in result.stderr

    # 3. one checksum line per worker, and the replicas agree (all parameters, BatchNorm statistics included).
    sums = dict(re.findall(r'\[rank (\d)\] param checksum: ([0-9a-f]{64})', result.stdout))
    assert sorted(sums) == ['0', '1'], result.stdout
    assert sums['0'] == sums['1']

    # 1. disjoint shards that together cover the list, reshuffled every epoch.
    orders = []
    for epoch in (0, 1):
        shards = read_shards(shard_dir, epoch)
        assert len(shards[0]) == len(shards[1]) == NUM_TRAIN // 2
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(NUM_TRAIN))
        orders.append(shards)
    assert orders[0] != orders[1]

    # Validation is aggregated: both ranks log the same numbers, over all 6 clips.
    rank1 = [line for line in result.stderr.splitlines() if '[rank 1] [Epoch 001] validation' in line]
    rank0 = [line for line in result.stderr.splitlines()
             if '[Epoch 001] validation' in line and '[rank 1]' not in line]
    assert len(rank0) == len(rank1) == 1, result.stderr[-3000:]
    assert rank0[0].split('validation: ')[1] == rank1[0].split('validation: ')[1]

    # Rank 0 alone writes: one log without rank-1 lines, one metrics.csv, GluonCV's checkpoints.
    log = (save / 'train.log').read_text()
    assert '[Epoch 001] validation' in log and '[rank 1]' not in log
    with open(save / 'metrics.csv') as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r['epoch']) for r in rows] == [0, 1]
    for row in rows:
        hits = float(row['val_top1']) * NUM_VAL
        assert abs(hits - round(hits)) < 1e-4, row    # a fraction of all 6 clips, not of one worker's 3
    assert (save / 'ucf101-vgg16_ucf101-001.params').exists()
    assert {p.stem for p in save.glob('*.params')} == {p.stem for p in save.glob('*.states')}
    assert '[rank 1]' in result.stderr and '[rank 1] [Epoch 001] training' in result.stderr

    # 5. the loss falls: the validation loss, measured without dropout's noise on all 6 clips.
    # (The training loss in metrics.csv is rank 0's shard under dropout 0.9: too noisy in 12 steps.)
    print('dist run: %.1f s, train loss %s -> %s, val loss %s -> %s' % (
        elapsed, rows[0]['train_loss'], rows[1]['train_loss'], rows[0]['val_loss'], rows[1]['val_loss']))
    assert float(rows[1]['val_loss']) < float(rows[0]['val_loss']), rows
    assert_nothing_left(str(tmp_path))


@pytest.mark.slow
def test_killed_worker_fails_the_launch_and_leaves_no_process(dist_set, tmp_path):
    save, shard_dir = tmp_path / 'run', tmp_path / 'shards'
    cmd = launch_command(dist_set, save, '--num-epochs', '5', timeout=60)
    proc = subprocess.Popen(cmd, cwd=REPO, env=dist_env(shard_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # A worker writes its shard when its first epoch starts: training is under way.
        deadline = time.monotonic() + 60
        while not list(shard_dir.glob('shard-rank1-*')) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        victims = processes_mentioning(str(save), role='worker')
        assert len(victims) == 2, (victims, proc.poll())
        start = time.monotonic()
        os.kill(victims[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - start < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert 'was killed by signal 9; stopping all processes' in err, err[-2000:]
    assert_nothing_left(str(tmp_path))


class FakeKV(object):
    """What one worker sees of a 2-worker dist kvstore: a pull returns its push plus the other's."""

    type = 'dist_sync'

    def __init__(self, rank, other_push):
        self.rank, self.num_workers, self.other_push = rank, 2, other_push
        self.pushed = None

    def init(self, key, value):
        pass

    def push(self, key, value):
        self.pushed = value.copy()

    def pull(self, key, out):
        out[:] = self.pushed + self.other_push(self.pushed)


def write_resume_meta(folder, epoch, iteration):
    prefix = os.path.join(str(folder), 'epoch-%03d-iter-%05d' % (epoch, iteration))
    with open(prefix + '.json', 'w') as handle:
        json.dump({'epoch': epoch, 'iteration': iteration}, handle)
    return prefix


def test_workers_that_see_different_resume_points_stop_with_one_message(tmp_path):
    point = write_resume_meta(tmp_path, 2, 0)
    # Rank 1 found the same point: [epoch, iteration] of rank 0 then of rank 1.
    agree_on_resume_point(Allreduce(FakeKV(0, lambda mine: mx.nd.array([0, 0, 2, 0]))), str(tmp_path), [point])
    # Rank 1 runs on a host whose --save-dir holds nothing.
    with pytest.raises(UserError, match=r'rank 0: epoch 2 iteration 0, rank 1: none.*shared'):
        agree_on_resume_point(Allreduce(FakeKV(0, lambda mine: mx.nd.array([0, 0, -1, -1]))), str(tmp_path), [point])
    # Rank 1's view of the same job: every rank reports the same message.
    with pytest.raises(UserError, match=r'rank 0: epoch 2 iteration 0, rank 1: none'):
        agree_on_resume_point(Allreduce(FakeKV(1, lambda mine: mx.nd.array([2, 0, 0, 0]))), str(tmp_path), [])


def test_batchnorm_statistics_are_averaged_over_workers_and_weights_untouched():
    net = mx.gluon.nn.HybridSequential()
    conv, bn = mx.gluon.nn.Conv2D(2, 1, in_channels=1), mx.gluon.nn.BatchNorm(in_channels=2)
    net.add(conv, bn)
    net.initialize(mx.init.One())
    # Gluon's global name counters differ with what ran before: address parameters by block.
    bn.running_mean.set_data(mx.nd.array([1.0, 3.0]))
    bn.running_var.set_data(mx.nd.array([2.0, 2.0]))
    # The other worker's statistics, in the same (sorted-name) order: mean then var.
    other = mx.nd.array([3.0, 5.0, 4.0, 6.0])
    average_running_stats(Allreduce(FakeKV(0, lambda mine: other)), net)
    assert bn.running_mean.data().asnumpy().tolist() == [2.0, 4.0]
    assert bn.running_var.data().asnumpy().tolist() == [3.0, 4.0]
    assert conv.weight.data().asnumpy().ravel().tolist() == [1.0, 1.0]
    assert bn.gamma.data().asnumpy().tolist() == [1.0, 1.0]


def test_shard_dump_holds_exactly_the_clips_each_part_reads(tmp_path, monkeypatch):
    from recognizer.data import EpochBatchSampler
    monkeypatch.delenv('RECOGNIZER_SHARD_DUMP', raising=False)
    list(EpochBatchSampler(10, 2, shuffle=True, num_parts=2, part_index=0))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv('RECOGNIZER_SHARD_DUMP', str(tmp_path))
    read = {}
    for part in (0, 1):
        sampler = EpochBatchSampler(10, 2, shuffle=True, seed=4, num_parts=2, part_index=part)
        sampler.set_epoch(3)
        read[part] = [index for batch in sampler for index, epoch in batch]
        with open(tmp_path / ('shard-rank%d-epoch003.json' % part)) as handle:
            dumped = json.load(handle)
        # 5 clips per part, batches of 2 with the last one discarded: the dump lists the 4 read.
        assert dumped == {'rank': part, 'epoch': 3, 'indices': read[part]} and len(read[part]) == 4
    assert not set(read[0]) & set(read[1])
