"""One training step, as train_recognizer.py runs it and scripts/benchmark.py times it.

The loop around it (epochs, logging, validation, checkpoints) is train_recognizer.py's.
"""
from mxnet import autograd, gluon, nd

from .models import disable_bias_and_bn_decay, trainable_params


def load_batch(batch, ctx):
    """A loader batch (uint8 clips, labels, bad-sample count) split over the devices ``ctx``."""
    clips, labels, bad = batch
    kwargs = dict(ctx_list=ctx[:len(clips)], batch_axis=0, even_split=False)
    if not isinstance(clips, nd.NDArray):   # worker processes hand over NDArrays: no second copy
        clips = nd.array(clips, dtype='uint8')
    return (gluon.utils.split_and_load(clips, **kwargs),
            gluon.utils.split_and_load(nd.array(labels, dtype='float32'), **kwargs), bad)


def build_trainer(opt, net, kv):
    """gluon's SGD (NAG for --slowfast) Trainer with the flags' momentum, weight decay, clipping, BN freezing."""
    if opt.no_wd:
        disable_bias_and_bn_decay(net)
    params = trainable_params(net, opt.partial_bn, opt.freeze_bn)
    optimizer_params = {'learning_rate': opt.lr, 'wd': opt.wd, 'momentum': opt.momentum}
    if opt.clip_grad > 0:
        optimizer_params['clip_gradient'] = opt.clip_grad
    if opt.dtype != 'float32':
        optimizer_params['multi_precision'] = True
    kwargs = {'kvstore': kv} if kv is not None else {}
    # GluonCV trains SlowFast with Nesterov momentum.
    optimizer = 'nag' if opt.slowfast else 'sgd'
    trainer = gluon.Trainer(params, optimizer, optimizer_params, update_on_kvstore=False, **kwargs)
    if opt.accumulate > 1:
        for p in net.collect_params().values():
            if p.grad_req != 'null':
                p.grad_req = 'add'
    return trainer


def train_step(net, trainer, objective, data_parts, label_parts, to_input, step_size, scale_loss=False, step=True,
               lam=None):
    """Forward and backward on every device; with ``step``, an update normalised by ``step_size`` clips.

    ``to_input`` turns a device's clips into network input; ``objective`` (an Objective) gives the
    per-clip loss; ``scale_loss`` applies float16 AMP's loss scaling; ``lam`` mixes every clip with
    another (mixup). Returns per-device (loss sum, correct count) NDArrays: nothing here waits for the
    device. Under mixup a prediction counts as correct when it names the clip that dominates the mix.
    """
    with autograd.record():
        inputs = [to_input(x if lam is None else mix(x, lam)) for x in data_parts]
        outputs = [net(x).astype('float32', copy=False) for x in inputs]
        # The loss in float32 even for --dtype float16, so metrics are not rounded to fp16.
        losses = [objective(out, y, x, lam) for out, y, x in zip(outputs, label_parts, inputs)]
        heads = losses
        if scale_loss:   # scaling must be recorded, so it happens inside record()
            from mxnet.contrib import amp
            with amp.scale_loss(losses, trainer) as scaled:
                heads = scaled
    autograd.backward(heads)
    if step:
        trainer.step(step_size)
        for p in net.collect_params().values():
            if p.grad_req == 'add':   # --accumulate: gradients were summed since the last step
                p.zero_grad()
    hits = label_parts if lam is None or lam >= 0.5 else [nd.flip(y, axis=0) for y in label_parts]
    return [(loss.sum(), (nd.argmax(out, axis=1) == y).sum()) for loss, out, y in zip(losses, outputs, hits)]


# ---------------------------------------------------------------- what a step minimises

LABEL_SMOOTHING_ETA = 0.1   # GluonCV's image-classification script uses this eta for --label-smoothing


def smooth_targets(labels, num_classes, eta):
    """One-hot targets with ``eta`` spread evenly: 1 - eta + eta/C on the true class, eta/C elsewhere."""
    return nd.one_hot(labels, num_classes, on_value=1 - eta + eta / num_classes, off_value=eta / num_classes)


class Objective(object):
    """Per-clip training loss: cross-entropy on hard labels, or on soft targets (label smoothing,
    mixup), optionally mixed with a teacher's softened predictions (distillation).

    Distillation follows gluoncv.loss.DistillationSoftmaxCrossEntropyLoss: ``hard_weight`` x the
    loss on the labels + (1 - hard_weight) x T^2 x the cross-entropy between the student's logits
    / T and softmax(teacher logits / T).
    """

    def __init__(self, num_classes, label_smoothing=False, teacher=None, temperature=20.0, hard_weight=0.5):
        from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
        self.num_classes = num_classes
        self.eta = LABEL_SMOOTHING_ETA if label_smoothing else 0.0
        self.teacher, self.temperature = teacher, temperature
        self.plain = {sparse: gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=sparse) for sparse in (True, False)}
        self.distill = {sparse: DistillationSoftmaxCrossEntropyLoss(temperature=temperature, hard_weight=hard_weight,
                                                                    sparse_label=sparse)
                        for sparse in (True, False)}

    def targets(self, labels, lam=None):
        """Hard labels, or soft targets when smoothing or mixing (``lam``: this batch's mixup weight)."""
        if self.eta == 0 and lam is None:
            return labels
        soft = smooth_targets(labels, self.num_classes, self.eta)
        return soft if lam is None else lam * soft + (1 - lam) * nd.flip(soft, axis=0)

    def __call__(self, out, labels, network_input, lam=None):
        """Per-clip loss of ``out`` for the hard ``labels`` of the (possibly mixed) ``network_input``."""
        targets = self.targets(labels, lam)
        sparse = targets.ndim == 1
        if self.teacher is None:
            return self.plain[sparse](out, targets)
        with autograd.pause():
            soft = nd.softmax(self.teacher(network_input).astype('float32') / self.temperature)
        return self.distill[sparse](out, targets, soft)


def mix(clips, lam):
    """mixup of a device's clips with the same clips in reverse order (uint8 in, float32 out)."""
    x = clips.astype('float32')
    return lam * x + (1 - lam) * nd.flip(x, axis=0)
