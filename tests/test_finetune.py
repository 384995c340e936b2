"""--finetune-from: a checkpoint of one class count starts a run with another."""
import os

import mxnet as mx
import numpy as np
import pytest

from conftest import fit_quickly, run_trainer, train_command
from recognizer import checkpoint
from recognizer.errors import UserError
from recognizer.synthetic import make_synthetic_ucf101


def small_net(num_classes, hidden=6):
    net = mx.gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(mx.gluon.nn.Dense(hidden, in_units=4), mx.gluon.nn.Dense(num_classes, in_units=hidden))
    net.initialize(mx.init.Uniform())
    return net


def test_matching_weights_are_copied_and_the_classifier_is_left_fresh(tmp_path):
    source = small_net(3)
    path = str(tmp_path / 'three.params')
    source.save_parameters(path)
    target = small_net(5)
    fresh_before = target[1].weight.data().asnumpy().copy()
    loaded, fresh = checkpoint.load_matching_params(target, path)
    assert loaded == ['0.weight', '0.bias'] and fresh == ['1.weight', '1.bias']
    np.testing.assert_array_equal(target[0].weight.data().asnumpy(), source[0].weight.data().asnumpy())
    np.testing.assert_array_equal(target[1].weight.data().asnumpy(), fresh_before)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / 'other.params')
    small_net(3, hidden=7).save_parameters(path)
    with pytest.raises(UserError, match=r'only 0 of the 4 parameters of this network fit it .*pass the --model'):
        checkpoint.load_matching_params(small_net(5), path)


@pytest.fixture(scope='module')
def five_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp('five')
    return make_synthetic_ucf101(str(root / 'syn'), num_classes=5, train_per_class=6, val_per_class=2,
                                 num_frames=12, width=54, height=40, seed=11)


@pytest.mark.slow
def test_a_three_class_checkpoint_fine_tunes_to_five_classes_and_learns(tiny_set, five_classes, tmp_path):
    params = str(tmp_path / 'three_classes.params')
    fit_quickly(tiny_set, params, steps=40)
    tuned = tmp_path / 'five'
    args = train_command(five_classes, tuned, '--batch-norm', '--seed', '2', '--num-epochs', '3', '--dataset', 'custom',
                         '--finetune-from', params)
    args[args.index('--lr') + 1], args[args.index('--batch-size') + 1] = '0.0002', '4'
    args.remove('--no-pretrained-base')   # the checkpoint replaces the ImageNet weights: nothing to fetch
    done = run_trainer(args, env={'MXNET_HOME': str(tmp_path / 'empty_model_cache')})
    assert done.returncode == 0, done.stderr[-2000:]
    total = len(checkpoint.read_param_file(params))
    assert ('--finetune-from %s: loaded %d of %d parameters; initialised fresh for --num-classes 5: '
            'output.weight, output.bias' % (params, total - 2, total)) in done.stderr
    rows = checkpoint.read_metrics(str(tuned / 'metrics.csv'))
    assert min(r['train_loss'] for r in rows[1:]) < rows[0]['train_loss']
    assert max(r['val_top1'] for r in rows) >= 0.5    # chance: 0.2
    assert checkpoint.read_param_file(str(tuned / 'custom-vgg16_ucf101-002.params'))['output.weight'].shape[0] == 5


@pytest.mark.slow
def test_finetune_from_a_checkpoint_of_another_architecture_is_one_line(tiny_set, tmp_path):
    first = tmp_path / 'bn'
    assert run_trainer(train_command(tiny_set, first, '--batch-norm', '--num-epochs', '1',
                                     '--train-only')).returncode == 0
    params = str(first / 'ucf101-vgg16_ucf101-000.params')
    done = run_trainer(train_command(tiny_set, tmp_path / 'plain', '--finetune-from', params))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and 'Traceback' not in done.stderr
    assert errors[0].startswith('error: --finetune-from %s: only ' % params) and 'pass the --model' in errors[0]
    assert not os.path.exists(str(tmp_path / 'plain'))
