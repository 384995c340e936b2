"""Per-iteration learning rate: linear warmup, then step, poly or cosine decay.

The values are those of GluonCV's ``LRSequential([LRScheduler('linear', ...),
LRScheduler(mode, ...)])`` as its train_recognizer.py builds it, evaluated where
MXNet's optimizer evaluates it (update count = iteration + 1). Being a pure
function of the global iteration, it needs no state to resume exactly.
"""
import math

from .errors import UserError


def parse_decay_epochs(text, flag='--lr-decay-epoch'):
    try:
        return [int(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise UserError('%s %r: expected comma-separated whole epochs, e.g. 30,60,80' % (flag, text)) from None


class LRSchedule(object):
    def __init__(self, mode, base_lr, num_epochs, iters_per_epoch, warmup_epochs=0, warmup_lr=0.0,
                 decay_epochs=(), decay_factor=0.1, power=2):
        if mode not in ('step', 'poly', 'cosine'):
            raise UserError('--lr-mode %r: choose step, poly or cosine' % mode)
        self.mode = mode
        self.base_lr = base_lr
        self.warmup_lr = warmup_lr
        self.warmup_iters = warmup_epochs * iters_per_epoch
        self.main_iters = (num_epochs - warmup_epochs) * iters_per_epoch
        self.decay_iters = [(e - warmup_epochs) * iters_per_epoch for e in decay_epochs]
        self.decay_factor = decay_factor
        self.power = power

    def __call__(self, iteration):
        """Learning rate for the 0-based global training iteration."""
        update = iteration + 1
        total = self.warmup_iters + self.main_iters
        update = min(update, total - 1)
        if update < self.warmup_iters:
            t = min(max(0, update), self.warmup_iters - 1)
            factor = 1 - t / (self.warmup_iters - 1) if self.warmup_iters > 1 else 0.0
            return self.base_lr + (self.warmup_lr - self.base_lr) * factor
        n = self.main_iters - 1
        t = min(max(0, update - self.warmup_iters), n)
        if self.mode == 'step':
            return self.base_lr * self.decay_factor ** sum(1 for s in self.decay_iters if s <= t)
        if n <= 0:
            return self.base_lr
        if self.mode == 'poly':
            return self.base_lr * (1 - t / n) ** self.power
        return self.base_lr * (1 + math.cos(math.pi * t / n)) / 2
