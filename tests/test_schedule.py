"""The per-iteration LR equals GluonCV's LRSequential as its train_recognizer.py builds it."""
import pytest
from gluoncv.utils import LRScheduler, LRSequential

from recognizer.errors import UserError
from recognizer.schedule import LRSchedule, parse_decay_epochs


def gluoncv_schedule(mode, lr, epochs, iters, warmup_epochs, warmup_lr, decay_epochs, factor):
    return LRSequential([
        LRScheduler('linear', base_lr=warmup_lr, target_lr=lr, nepochs=warmup_epochs, iters_per_epoch=iters),
        LRScheduler(mode, base_lr=lr, target_lr=0, nepochs=epochs - warmup_epochs, iters_per_epoch=iters,
                    step_epoch=[e - warmup_epochs for e in decay_epochs], step_factor=factor, power=2)])


@pytest.mark.parametrize('mode,warmup', [('step', 0), ('step', 2), ('poly', 0), ('poly', 1), ('cosine', 3)])
def test_matches_gluoncv_at_every_iteration(mode, warmup):
    ours = LRSchedule(mode, 0.01, 10, 7, warmup, 0.001, [4, 8], 0.1)
    theirs = gluoncv_schedule(mode, 0.01, 10, 7, warmup, 0.001, [4, 8], 0.1)
    for it in range(10 * 7 + 3):
        # MXNet's optimizer asks the scheduler with update count = iteration + 1.
        assert ours(it) == pytest.approx(theirs(it + 1), rel=1e-12, abs=1e-15), it


def test_step_values_at_given_iterations():
    s = LRSchedule('step', 0.001, 80, 100, decay_epochs=[30, 60, 80], decay_factor=0.1)
    assert s(0) == pytest.approx(0.001)
    assert s(30 * 100 - 2) == pytest.approx(0.001)
    assert s(30 * 100 - 1) == pytest.approx(0.0001)
    assert s(60 * 100) == pytest.approx(0.00001)


def test_warmup_is_linear_from_warmup_lr():
    s = LRSchedule('cosine', 0.1, 5, 11, warmup_epochs=1, warmup_lr=0.0)
    assert s(-1) == pytest.approx(0.0)
    assert s(4) == pytest.approx(0.1 * 5 / 10)
    assert s(54) == pytest.approx(0.0)


def test_bad_decay_epochs_and_mode_are_user_errors():
    assert parse_decay_epochs('30,60, 80') == [30, 60, 80]
    with pytest.raises(UserError, match='--lr-decay-epoch'):
        parse_decay_epochs('30;60')
    with pytest.raises(UserError, match='step, poly or cosine'):
        LRSchedule('exp', 0.1, 1, 1)
