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
    """gluon's SGD Trainer with the flags' momentum, weight decay, clipping and BN freezing."""
    if opt.no_wd:
        disable_bias_and_bn_decay(net)
    params = trainable_params(net, opt.partial_bn, opt.freeze_bn)
    optimizer_params = {'learning_rate': opt.lr, 'wd': opt.wd, 'momentum': opt.momentum}
    if opt.clip_grad > 0:
        optimizer_params['clip_gradient'] = opt.clip_grad
    if opt.dtype != 'float32':
        optimizer_params['multi_precision'] = True
    kwargs = {'kvstore': kv} if kv is not None else {}
    trainer = gluon.Trainer(params, 'sgd', optimizer_params, update_on_kvstore=False, **kwargs)
    if opt.accumulate > 1:
        for p in net.collect_params().values():
            if p.grad_req != 'null':
                p.grad_req = 'add'
    return trainer


def train_step(net, trainer, loss_fn, data_parts, label_parts, to_input, step_size, use_amp=False, step=True):
    """Forward and backward on every device; with ``step``, an update normalised by ``step_size`` clips.

    ``to_input`` turns a device's uint8 clips into network input. Returns per-device (loss sum,
    correct count) NDArrays: nothing here waits for the device.
    """
    with autograd.record():
        outputs = [net(to_input(x)) for x in data_parts]
        # The loss in float32 even for --dtype float16, so metrics are not rounded to fp16.
        losses = [loss_fn(out.astype('float32', copy=False), y) for out, y in zip(outputs, label_parts)]
        heads = losses
        if use_amp:   # scaling must be recorded, so it happens inside record()
            from mxnet.contrib import amp
            with amp.scale_loss(losses, trainer) as scaled:
                heads = scaled
    autograd.backward(heads)
    if step:
        trainer.step(step_size)
        for p in net.collect_params().values():
            if p.grad_req == 'add':   # --accumulate: gradients were summed since the last step
                p.zero_grad()
    return [(loss.sum(), (nd.argmax(out, axis=1) == y).sum())
            for loss, out, y in zip(losses, outputs, label_parts)]
