"""Label smoothing, mixup and distillation: losses on a fixed batch against their formulas, and runs."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from conftest import fit_quickly, run_trainer, train_command
from recognizer import checkpoint
from recognizer.training import Objective, mix, smooth_targets

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-1.0, 1.5, 0.0], [0.3, 0.3, 0.3]], dtype=np.float32)
LABELS = np.array([0, 2, 1, 0], dtype=np.float32)


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def soft_ce(logits, targets):
    return -(targets * log_softmax(logits)).sum(axis=1)


def one_hot(labels, classes):
    return np.eye(classes)[labels.astype(int)]


def test_plain_loss_is_cross_entropy_on_the_labels():
    loss = Objective(3)(nd.array(LOGITS), nd.array(LABELS), None).asnumpy()
    np.testing.assert_allclose(loss, soft_ce(LOGITS, one_hot(LABELS, 3)), rtol=1e-4)


def test_label_smoothing_puts_eta_over_c_on_every_class():
    targets = smooth_targets(nd.array(LABELS), 3, 0.1).asnumpy()
    np.testing.assert_allclose(targets[0], [0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3], rtol=1e-6)
    loss = Objective(3, label_smoothing=True)(nd.array(LOGITS), nd.array(LABELS), None).asnumpy()
    expected = soft_ce(LOGITS, 0.9 * one_hot(LABELS, 3) + 0.1 / 3)
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_mixup_mixes_clips_and_targets_with_the_reversed_batch():
    clips = np.random.default_rng(0).integers(0, 256, (4, 3, 2, 2, 3)).astype(np.uint8)
    lam = 0.7
    mixed = mix(nd.array(clips, dtype='uint8'), lam).asnumpy()
    np.testing.assert_allclose(mixed, lam * clips + (1 - lam) * clips[::-1].astype(np.float32), rtol=1e-4)
    loss = Objective(3, label_smoothing=True)(nd.array(LOGITS), nd.array(LABELS), None, lam).asnumpy()
    smooth = 0.9 * one_hot(LABELS, 3) + 0.1 / 3
    np.testing.assert_allclose(loss, soft_ce(LOGITS, lam * smooth + (1 - lam) * smooth[::-1]), rtol=1e-4)


def test_distillation_mixes_the_hard_loss_with_the_teachers_softened_targets():
    teacher = mx.gluon.nn.Dense(3, in_units=5)
    teacher.initialize(mx.init.Normal(1.0))
    x = nd.array(np.random.default_rng(1).normal(size=(4, 5)))
    temperature, hard_weight = 4.0, 0.3
    loss = Objective(3, teacher=teacher, temperature=temperature, hard_weight=hard_weight)(
        nd.array(LOGITS), nd.array(LABELS), x).asnumpy()
    teacher_logits = teacher(x).asnumpy()
    soft = np.exp(log_softmax(teacher_logits / temperature))
    expected = (hard_weight * soft_ce(LOGITS, one_hot(LABELS, 3)) +
                (1 - hard_weight) * temperature ** 2 * soft_ce(LOGITS / temperature, soft))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


@pytest.fixture(scope='module')
def teacher_params(tiny_set, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.params')
    fit_quickly(tiny_set, path, steps=40)
    return path


@pytest.mark.slow
@pytest.mark.parametrize('flags', [
    ['--label-smoothing', '--finetune-from', 'START'],
    ['--mixup', '--mixup-alpha', '0.4', '--mixup-off-epoch', '1', '--finetune-from', 'START'],
    ['--teacher', 'vgg16_ucf101', '--teacher-params', 'START', '--temperature', '4']])
def test_runs_train_with_finite_falling_loss(flags, tiny_set, teacher_params, tmp_path):
    """Smoothing and mixup from a trained start, as they are used; the student of distillation from scratch."""
    flags = [teacher_params if f == 'START' else f for f in flags]
    save = tmp_path / 'run'
    args = train_command(tiny_set, save, '--batch-norm', '--seed', '4', '--num-epochs', '3', *flags)
    args[args.index('--lr') + 1], args[args.index('--batch-size') + 1] = '0.0002', '4'
    done = run_trainer(args)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = checkpoint.read_metrics(str(save / 'metrics.csv'))
    losses = [r['train_loss'] for r in rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
