"""What the trainer writes when the disk fills up, and the TensorBoard events it writes otherwise."""
import glob
import os
import struct
import subprocess

import pytest

from conftest import run_trainer, train_command
from recognizer import checkpoint


@pytest.fixture
def small_filesystem(tmp_path):
    """A 400 MB tmpfs: room for one vgg16 checkpoint at 32 px (134 MB .params + 134 MB .states), not more."""
    mount_point = tmp_path / 'small_fs'
    mount_point.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=400m', 'tmpfs', str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root): %s' % done.stderr.strip())
    yield mount_point
    subprocess.run(['umount', '-l', str(mount_point)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_with_one_line_naming_the_intact_checkpoint(tiny_set, small_filesystem):
    save = small_filesystem / 'run'
    done = run_trainer(train_command(tiny_set, save, '--train-only', '--log-interval', '0'))
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and 'Traceback' not in done.stderr, done.stderr[-3000:]
    # Epoch 0's resume point fits; epoch 1's (written first, its last checkpoint then a link to it) does not.
    intact = checkpoint.list_resume_points(str(save))
    assert [os.path.basename(p) for p in intact] == ['epoch-001-iter-00000']
    assert 'the filesystem of %s is full while writing epoch-002-iter-00000.' % (save / 'resume') in errors[0]
    assert ' free, about ' in errors[0] and 'MB needed' in errors[0]
    assert 'The newest intact checkpoint is %s.{params,states,json}' % intact[0] in errors[0]
    assert glob.glob(str(save / '**' / '*.tmp-*'), recursive=True) == []
    # The start-up warning said so before any training.
    assert '--save-dir %s has ' % save in done.stderr and 'of checkpoints' in done.stderr
    # The run continues from the intact point once there is room (here: with the checkpoint moved out).
    assert checkpoint.load_resume_meta(intact[0])['epoch'] == 1


def read_tensorboard_scalars(path):
    """{tag: [(step, value)]} from a TensorBoard event file (TFRecord framing, Event protobufs)."""
    from tensorboardX.proto import event_pb2
    scalars = {}
    with open(path, 'rb') as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                break
            length = struct.unpack('<Q', header[:8])[0]
            payload = f.read(length)
            f.read(4)   # the payload's CRC
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.mark.slow
def test_tensorboard_events_hold_the_metrics_of_every_epoch(tiny_set, tmp_path):
    save = tmp_path / 'run'
    done = run_trainer(train_command(tiny_set, save, '--tensorboard'))
    assert done.returncode == 0, done.stderr[-3000:]
    events = glob.glob(str(save / 'events.out.tfevents.*'))
    assert len(events) == 1
    scalars = read_tensorboard_scalars(events[0])
    rows = checkpoint.read_metrics(str(save / 'metrics.csv'))
    assert sorted(scalars) == ['lr', 'train_acc', 'train_loss', 'val_loss', 'val_top1', 'val_top5']
    for key in scalars:
        assert [step for step, _ in scalars[key]] == [0, 1]
        assert [value for _, value in scalars[key]] == pytest.approx([row[key] for row in rows], rel=1e-4)


@pytest.mark.parametrize('optimizer,multi_precision', [('sgd', False), ('nag', False), ('sgd', True)])
def test_a_snapshot_writes_what_save_parameters_and_save_states_write(tmp_path, optimizer, multi_precision):
    """Byte for byte, after the weights moved on: what resume exactness rests on."""
    import mxnet as mx
    from mxnet import autograd, gluon, nd
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3), gluon.nn.BatchNorm(), gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier())
    settings = {'learning_rate': 0.1, 'momentum': 0.9, 'multi_precision': multi_precision}
    trainer = gluon.Trainer(net.collect_params(), optimizer, settings, update_on_kvstore=False)

    def step():
        with autograd.record():
            loss = net(nd.random.uniform(shape=(2, 3, 8, 8))).sum()
        loss.backward()
        trainer.step(2)
    step()
    net.save_parameters(str(tmp_path / 'direct.params'))
    trainer.save_states(str(tmp_path / 'direct.states'))
    snapshot = checkpoint.Snapshot(net, trainer)
    step()   # training goes on before the writer gets to it
    snapshot.write(str(tmp_path / 'snapshot'))
    for ext in ('.params', '.states'):
        assert (tmp_path / ('snapshot' + ext)).read_bytes() == (tmp_path / ('direct' + ext)).read_bytes()
