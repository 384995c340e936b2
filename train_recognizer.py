#!/usr/bin/env python
"""Train a video action recognizer (TSN) on UCF101-layout data with MXNet/GluonCV.

Same flags, defaults and meanings as GluonCV's scripts/action-recognition/train_recognizer.py,
so the published model-zoo command lines run unchanged; in addition it works offline
(--no-pretrained-base, clear message for missing weights), checks its input before it
starts, resumes exactly (--auto-resume), and never leaves a half-written checkpoint.

Read top to bottom: arguments, data, model, optimisation, train loop, validation, main.
"""
import argparse
import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import time

from recognizer.errors import UserError, run_cli

import mxnet as mx  # noqa: E402  (after recognizer: it prepares CUDA libraries on GPU hosts)
from mxnet import autograd, gluon, nd  # noqa: E402
from mxnet.contrib import amp  # noqa: E402

from recognizer import checkpoint, data, transforms, zoo  # noqa: E402
from recognizer.dist import param_checksum, require_launcher_env  # noqa: E402
from recognizer.models import build_network, disable_bias_and_bn_decay, trainable_params  # noqa: E402
from recognizer.schedule import LRSchedule, parse_decay_epochs  # noqa: E402

logger = logging.getLogger('train_recognizer')


# =============================================================== arguments

def add_data_args(p):
    p.add_argument('--dataset', type=str, default='ucf101',
                   choices=['ucf101', 'kinetics400', 'somethingsomethingv2', 'hmdb51', 'custom'],
                   help='which dataset to use (all read the same list-file layout; the frame naming follows it).')
    p.add_argument('--name-pattern', type=str, default=None,
                   help='frame file names as a printf pattern of the 1-based frame number; default as GluonCV: '
                        '%%06d.jpg for somethingsomethingv2, img_%%05d.jpg otherwise.')
    p.add_argument('--data-dir', type=str, default='~/.mxnet/datasets/ucf101/rawframes',
                   help='root of the clip folders (or videos) named in the lists.')
    p.add_argument('--val-data-dir', type=str, default=None,
                   help='root for the validation list; default: --data-dir.')
    p.add_argument('--train-list', type=str,
                   default='~/.mxnet/datasets/ucf101/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt',
                   help='training list: "<clip> <num_frames> <0-based label>" per line.')
    p.add_argument('--val-list', type=str,
                   default='~/.mxnet/datasets/ucf101/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt',
                   help='validation list, same format.')
    p.add_argument('-j', '--num-data-workers', dest='num_workers', default=4, type=int,
                   help='number of data loading worker processes (0: load in the main process).')
    p.add_argument('--prefetch-ratio', type=float, default=2.0,
                   help='batches prefetched per worker.')
    p.add_argument('--num-segments', type=int, default=1, help='TSN segments per clip.')
    p.add_argument('--new-height', type=int, default=0, help='resize frames to this height (0: keep).')
    p.add_argument('--new-width', type=int, default=0, help='resize frames to this width (0: keep).')
    p.add_argument('--new-length', type=int, default=1, help='consecutive frames per segment.')
    p.add_argument('--new-step', type=int, default=1, help='step between those frames.')
    p.add_argument('--input-size', type=int, default=224, help='network input side.')
    p.add_argument('--crop-ratio', type=float, default=0.875,
                   help='accepted for compatibility; GluonCV\'s video script does not use it either.')
    p.add_argument('--scale-ratios', type=str, default='1.0, 0.875, 0.75, 0.66',
                   help='multi-scale crop sides as fractions of the short side.')
    p.add_argument('--max-distort', type=int, default=1, help='max aspect distortion between crop sides.')
    p.add_argument('--more-fix-crop', action='store_false',
                   help='GluonCV quirk kept as is: on by default (13 fixed offsets), the flag turns it off (5).')
    p.add_argument('--data-aug', type=str, default='v1', help='augmentation pipeline (v1 is built).')
    p.add_argument('--num-crop', type=int, default=1, help='crops per clip (evaluation only).')
    p.add_argument('--video-loader', action='store_true', help='read videos instead of frame folders.')
    p.add_argument('--use-decord', action='store_true', help='decode videos with decord.')
    p.add_argument('--input-5d', action='store_true', help='5-D input (N, C, T, H, W) for 3-D CNNs.')
    p.add_argument('--slowfast', action='store_true',
                   help='SlowFast sampling: of --new-length consecutive frames, every --fast-temporal-stride-th '
                        '(fast pathway) followed by every --slow-temporal-stride-th (slow pathway).')
    p.add_argument('--slow-temporal-stride', type=int, default=16, help='--slowfast: slow pathway frame stride.')
    p.add_argument('--fast-temporal-stride', type=int, default=2, help='--slowfast: fast pathway frame stride.')
    p.add_argument('--check-data', action='store_true',
                   help='decode every frame/video of both lists, report all broken ones, and exit.')
    p.add_argument('--skip-bad-samples', action='store_true',
                   help='replace samples that cannot be decoded (counted in the log and metrics.csv).')


def add_model_args(p):
    p.add_argument('--model', type=str, required=True, help='model-zoo name, e.g. vgg16_ucf101.')
    p.add_argument('--num-classes', type=int, default=101, help='number of classes.')
    p.add_argument('--use-pretrained', action='store_true', help='start from the model zoo\'s weights.')
    p.add_argument('--hashtag', type=str, default='', help='hashtag of the pretrained weights.')
    p.add_argument('--no-pretrained-base', action='store_true',
                   help='train the backbone from scratch instead of from ImageNet weights.')
    p.add_argument('--use-kinetics-pretrain', action='store_true',
                   help='i3d_*_ucf101: start from Kinetics400-trained I3D weights (all but the classifier; '
                        'not with --no-pretrained-base).')
    p.add_argument('--use-tsn', action='store_true', help='temporal segment network consensus.')
    p.add_argument('--batch-norm', action='store_true', help='VGG16-BN backbone for vgg16_* models.')
    p.add_argument('--partial-bn', action='store_true', help='freeze all BatchNorm layers but the first.')
    p.add_argument('--freeze-bn', action='store_true', help='freeze all BatchNorm layers.')
    p.add_argument('--mode', type=str, help='hybrid: hybridize with static memory (others: imperative).')
    p.add_argument('--dtype', type=str, default='float32', help='training data type.')
    p.add_argument('--use-amp', action='store_true', help='automatic mixed precision (GPU).')


def add_optim_args(p):
    p.add_argument('--batch-size', type=int, default=25, help='clips per device.')
    p.add_argument('--num-epochs', type=int, default=3, help='training epochs.')
    p.add_argument('--lr', type=float, default=0.1, help='learning rate.')
    p.add_argument('--momentum', type=float, default=0.9, help='SGD momentum.')
    p.add_argument('--wd', type=float, default=0.0001, help='weight decay.')
    p.add_argument('--no-wd', action='store_true', help='no weight decay on biases and BN beta/gamma.')
    p.add_argument('--lr-mode', type=str, default='step', help='step, poly or cosine.')
    p.add_argument('--lr-decay', type=float, default=0.1, help='step decay factor.')
    p.add_argument('--lr-decay-period', type=int, default=0, help='decay every N epochs (0: use --lr-decay-epoch).')
    p.add_argument('--lr-decay-epoch', type=str, default='40,60', help='epochs at which the LR decays.')
    p.add_argument('--warmup-lr', type=float, default=0.0, help='LR at the start of warmup.')
    p.add_argument('--warmup-epochs', type=int, default=0, help='linear warmup epochs.')
    p.add_argument('--clip-grad', type=float, default=0, help='clip gradients to this value (0: off).')
    p.add_argument('--accumulate', type=int, default=1, help='accumulate gradients over N batches.')


def add_run_args(p):
    p.add_argument('--num-gpus', type=int, default=0, help='GPUs to use; 0 trains on the CPU.')
    p.add_argument('--cpu-contexts', type=int, default=1,
                   help='with --num-gpus 0: split each batch over N CPU contexts (tests the multi-device path).')
    p.add_argument('--kvstore', type=str, default=None, help='local, device, dist_sync, dist_sync_device, dist_async.')
    p.add_argument('--save-frequency', type=int, default=10, help='save a checkpoint every N epochs.')
    p.add_argument('--save-dir', type=str, default='params', help='output folder.')
    p.add_argument('--resume-epoch', type=int, default=0, help='epoch to resume from.')
    p.add_argument('--resume-params', type=str, default='', help='.params file to start from.')
    p.add_argument('--resume-states', type=str, default='', help='.states file to start from.')
    p.add_argument('--auto-resume', action='store_true', help='continue from the newest checkpoint in --save-dir.')
    p.add_argument('--seed', type=int, default=0, help='seed of every random draw (reproducible on CPU).')
    p.add_argument('--log-interval', type=int, default=50, help='batches between log lines.')
    p.add_argument('--logging-file', type=str, default='train.log', help='log file name inside --save-dir.')
    p.add_argument('--tensorboard', action='store_true', help='write TensorBoard events to --save-dir.')
    p.add_argument('--eval', action='store_true', help='only evaluate --resume-params on --val-list.')
    p.add_argument('--train-only', action='store_true', help='skip validation; save only the last epoch.')


def build_parser():
    parser = argparse.ArgumentParser(description='Train a model for video action recognition.')
    add_data_args(parser)
    add_model_args(parser)
    add_optim_args(parser)
    add_run_args(parser)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_args(opt):
    """Turn flag strings into values and refuse combinations that cannot work, before any work."""
    try:
        opt.scale_ratios = [float(x) for x in opt.scale_ratios.split(',') if x.strip()]
    except ValueError:
        raise UserError('--scale-ratios %r: expected comma-separated numbers, e.g. "1.0,0.875,0.75,0.66"'
                        % opt.scale_ratios) from None
    if not opt.scale_ratios or not all(0 < r <= 1 for r in opt.scale_ratios):
        raise UserError('--scale-ratios must be fractions in (0, 1], got %s' % opt.scale_ratios)
    if opt.lr_decay_period > 0:
        opt.lr_decay_epoch = list(range(opt.lr_decay_period, opt.num_epochs, opt.lr_decay_period))
    else:
        opt.lr_decay_epoch = parse_decay_epochs(opt.lr_decay_epoch)
    not_built = [('--data-aug %s' % opt.data_aug, opt.data_aug != 'v1'),
                 ('--num-crop %d in training (use scripts/test_recognizer.py)' % opt.num_crop,
                  opt.num_crop != 1 and not opt.eval)]
    for what, bad in not_built:
        if bad:
            raise UserError('%s is not built in this trainer' % what)
    if opt.video_loader and not opt.use_decord:
        raise UserError('--video-loader reads videos with decord here (GluonCV\'s mmcv path is not built): '
                        'add --use-decord')
    if opt.dtype not in ('float32', 'float16'):
        raise UserError('--dtype %s: choose float32 or float16 (float16 needs a GPU)' % opt.dtype)
    if opt.num_gpus > 0 and not mx.context.num_gpus():
        raise UserError('--num-gpus %d, but this MXNet sees no GPU (CPU build of mxnet, or no working NVIDIA '
                        'driver); run python scripts/check_env.py --num-gpus %d to see why, or train with '
                        '--num-gpus 0' % (opt.num_gpus, opt.num_gpus))
    if opt.num_gpus == 0 and (opt.dtype == 'float16' or opt.use_amp):
        raise UserError('%s needs a GPU (mxnet-cu112, see python scripts/check_env.py); on the CPU train with '
                        '--dtype float32 and without --use-amp' % ('--use-amp' if opt.use_amp else '--dtype float16'))
    sizes_known = opt.new_height > 0 and opt.new_width > 0
    if sizes_known and min(opt.new_height, opt.new_width) < opt.input_size:
        raise UserError('--input-size %d is larger than the resized frames %dx%d; lower --input-size or '
                        'raise --new-height/--new-width' % (opt.input_size, opt.new_width, opt.new_height))
    for flag, value in (('--batch-size', opt.batch_size), ('--num-segments', opt.num_segments),
                        ('--accumulate', opt.accumulate), ('--cpu-contexts', opt.cpu_contexts)):
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))
    opt.val_data_dir = opt.val_data_dir or opt.data_dir
    opt.name_pattern = data.name_pattern_for(opt.dataset, opt.name_pattern)
    zoo.check_input(opt.model, opt.new_length, opt.input_size, opt.input_5d, opt.new_step, opt.slowfast,
                    opt.fast_temporal_stride, opt.slow_temporal_stride)
    return opt


# =============================================================== data

def contexts(opt):
    if opt.num_gpus > 0:
        return [mx.gpu(i) for i in range(opt.num_gpus)]
    return [mx.cpu(i) for i in range(opt.cpu_contexts)]


def read_lists(opt):
    """Both lists, checked line by line against the files on disk (a UserError names the line)."""
    video = opt.video_loader
    train = data.read_clip_list(opt.train_list, opt.data_dir, opt.num_classes, video, name_pattern=opt.name_pattern)
    val = [] if opt.train_only else data.read_clip_list(opt.val_list, opt.val_data_dir, opt.num_classes, video,
                                                        name_pattern=opt.name_pattern)
    need = opt.num_segments * opt.new_length * opt.new_step
    short = sum(1 for c in train + val if c.num_frames < need)
    if short and not video:
        logger.warning('%d clips have fewer than %d frames (num-segments x new-length x new-step); '
                       'their frames are repeated, as GluonCV does', short, need)
    return train, val


def make_datasets(opt, train_clips, val_clips):
    size = opt.input_size

    def train_view(frames, rng):
        return transforms.train_transform(frames, rng, size, opt.scale_ratios, opt.max_distort,
                                          opt.more_fix_crop)

    def val_view(frames, rng):
        return transforms.center_crop(frames, size)

    common = dict(num_segments=opt.num_segments, new_length=opt.new_length, new_step=opt.new_step,
                  new_width=opt.new_width, new_height=opt.new_height, video=opt.video_loader,
                  seed=opt.seed, skip_bad=opt.skip_bad_samples, name_pattern=opt.name_pattern,
                  slowfast=(opt.fast_temporal_stride, opt.slow_temporal_stride) if opt.slowfast else None)
    return (data.ClipDataset(train_clips, train_view, train=True, **common),
            data.ClipDataset(val_clips, val_view, train=False, **common))


def make_loaders(opt, train_set, val_set, batch_size, kv):
    parts = dict(num_parts=kv.num_workers, part_index=kv.rank) if is_dist(kv) else {}
    train_sampler = data.EpochBatchSampler(len(train_set), batch_size, shuffle=True, seed=opt.seed,
                                           last_batch='discard', **parts)
    if len(train_sampler) == 0:
        raise UserError('%s has %d clips, fewer than one batch of %d; lower --batch-size'
                        % (opt.train_list, len(train_set), batch_size))
    val_sampler = data.EpochBatchSampler(len(val_set), batch_size, shuffle=False, last_batch='keep', **parts)
    return (train_sampler, data.make_loader(train_set, train_sampler, opt.num_workers, opt.prefetch_ratio),
            data.make_loader(val_set, val_sampler, opt.num_workers, opt.prefetch_ratio))


def check_every_sample(opt, clip_lists):
    """--check-data: decode every frame (or video) of both lists and name all broken ones."""
    from tqdm import tqdm
    clips = [c for clip_list in clip_lists for c in clip_list]
    broken = []
    for clip in tqdm(clips, desc='checking', disable=not sys.stderr.isatty()):
        try:
            data.decode_whole_clip(clip, opt.video_loader, opt.name_pattern)
        except data.BadSample as err:
            broken.append('%s (list line %d)' % (err, clip.line_no))
    if broken:
        raise UserError('%d of %d clips are broken:\n  %s\nre-extract or remove them, or train with '
                        '--skip-bad-samples' % (len(broken), len(clips), '\n  '.join(broken)))
    print('checked %d clips: every frame decodes' % len(clips))


def to_network_input(clips_u8, opt):
    """uint8 (B, S*L, H, W, 3) on a device -> normalised (B*S, 3, H, W) or (B*S, 3, L, H, W)."""
    length = data.frames_per_segment(opt.new_length, opt.slowfast, opt.fast_temporal_stride, opt.slow_temporal_stride)
    return transforms.network_input(clips_u8, length, opt.input_5d, opt.dtype)


def load_batch(batch, ctx):
    clips, labels, bad = batch
    kwargs = dict(ctx_list=ctx[:len(clips)], batch_axis=0, even_split=False)
    if not isinstance(clips, nd.NDArray):   # worker processes hand over NDArrays: no second copy
        clips = nd.array(clips, dtype='uint8')
    return (gluon.utils.split_and_load(clips, **kwargs),
            gluon.utils.split_and_load(nd.array(labels, dtype='float32'), **kwargs), bad)


# =============================================================== model and optimisation

def is_dist(kv):
    return kv is not None and 'dist' in kv.type


def create_kvstore(opt):
    if opt.kvstore is None:
        return None
    if opt.kvstore not in ('local', 'device', 'dist_sync', 'dist_sync_device', 'dist_async', 'dist_device_sync'):
        raise UserError('--kvstore %s: choose local, device, dist_sync, dist_sync_device or dist_async' % opt.kvstore)
    if opt.kvstore == 'dist_async':
        # gluon refuses async with update_on_kvstore=False, and with True the per-iteration LR
        # schedule and the .states checkpoints would not reach the server.
        raise UserError('--kvstore dist_async is not built in this trainer yet (the servers would have to run '
                        'the optimizer, its LR schedule and its checkpoints); use --kvstore dist_sync')
    require_launcher_env(opt.kvstore)
    return mx.kv.create(opt.kvstore)


def build_model(opt, ctx):
    return build_network(opt.model, opt.num_classes, ctx, num_segments=opt.num_segments,
                         use_pretrained=opt.use_pretrained, hashtag=opt.hashtag,
                         pretrained_base=not opt.no_pretrained_base, use_tsn=opt.use_tsn, batch_norm=opt.batch_norm,
                         partial_bn=opt.partial_bn, freeze_bn=opt.freeze_bn,
                         use_kinetics_pretrain=opt.use_kinetics_pretrain, dtype=opt.dtype)


def load_resume_params(net, path, opt, ctx):
    try:
        net.load_parameters(path, ctx=ctx)
    except (OSError, mx.base.MXNetError, AssertionError, ValueError) as err:
        raise UserError('%s does not fit --model %s with --num-classes %d (%s); pass the .params of a '
                        'matching run' % (path, opt.model, opt.num_classes, str(err).splitlines()[0][:200])) from None


def build_trainer(opt, net, kv):
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


def train_step(net, trainer, loss_fn, data_parts, label_parts, opt, step=True):
    """Forward and backward on every context; an optimizer step when ``step``.

    Returns per-context (loss sum, correct count) NDArrays: nothing here waits for the device.
    """
    with autograd.record():
        outputs = [net(to_network_input(x, opt)) for x in data_parts]
        # The loss in float32 even for --dtype float16, so metrics are not rounded to fp16.
        losses = [loss_fn(out.astype('float32', copy=False), y) for out, y in zip(outputs, label_parts)]
        heads = losses
        if opt.use_amp:   # GPU only; scaling must be recorded, so it happens inside record()
            with amp.scale_loss(losses, trainer) as scaled:
                heads = scaled
    autograd.backward(heads)
    if step:
        trainer.step(opt.batch_size * len(opt.ctx) * opt.accumulate * opt.num_workers_dist)
        if opt.accumulate > 1:
            for p in net.collect_params().values():
                if p.grad_req == 'add':
                    p.zero_grad()
    return [(loss.sum(), (nd.argmax(out, axis=1) == y).sum())
            for loss, out, y in zip(losses, outputs, label_parts)]


# =============================================================== train loop

class Progress(object):
    """A tqdm bar on a terminal; otherwise GluonCV's plain log lines every --log-interval batches."""

    def __init__(self, epoch, start, total, enabled):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, desc='epoch %d' % epoch, leave=False, dynamic_ncols=True)

    def report(self, epoch, i, num_iter, speed, loss, acc, lr):
        line = ('Epoch[%03d] Batch [%04d]/[%04d]\tSpeed: %f samples/sec\t accuracy=%f\t loss=%f\t lr=%f'
                % (epoch, i, num_iter, speed, acc * 100, loss, lr))
        if self.bar is not None:
            self.bar.set_postfix(loss='%.4f' % loss, acc='%.3f' % acc, lr='%.2g' % lr)
        # With a bar on the console the line still goes to the log file, not across the bar.
        logger.info(line, extra={'console': self.bar is None})

    def advance(self):
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class StopRequest(object):
    """SIGINT/SIGTERM: finish the current iteration, checkpoint, exit non-zero.

    Installed before the loaders fork their workers. The workers ignore SIGINT (a Ctrl-C reaches
    the whole process group; the main process decides) and keep SIGTERM's default action, which
    is how multiprocessing's pool stops them.
    """

    def __init__(self):
        self.signal = None
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)
        os.register_at_fork(after_in_child=self.worker_defaults)

    @staticmethod
    def worker_defaults():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def handle(self, signum, frame):
        if self.signal is not None:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.signal = signum
        logger.warning('received %s: stopping after this iteration', signal.Signals(signum).name)


def exit_now(code):
    """Leave without multiprocessing's exit handlers.

    A SIGTERM sent to the whole process group has killed loader workers, possibly while one held
    the pool's queue lock; the pool's own shutdown would then wait on that lock for ever.
    """
    logging.shutdown()
    for child in mp.active_children():
        child.kill()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Run(object):
    """One training run: what is trained, on what, and how far it has come."""

    def __init__(self, opt, net, trainer, kv, train_sampler, train_loader, val_loader, stop):
        self.opt, self.net, self.trainer, self.kv = opt, net, trainer, kv
        self.ctx = opt.ctx
        self.train_sampler, self.train_loader, self.val_loader = train_sampler, train_loader, val_loader
        self.iters_per_epoch = len(train_sampler)
        self.schedule = LRSchedule(opt.lr_mode, opt.lr, opt.num_epochs, self.iters_per_epoch,
                                   opt.warmup_epochs, opt.warmup_lr, opt.lr_decay_epoch, opt.lr_decay)
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.is_writer = opt.rank == 0
        self.rows, self.best_top1, self.best_prefix = [], 0.0, None
        self.epoch, self.start_iter = opt.resume_epoch, 0
        self.acc = self.fresh_accumulators()
        self.stop = stop
        self.tb = open_tensorboard(opt) if self.is_writer else None
        self.name = '%s-%s' % (opt.dataset, opt.model)

    def fresh_accumulators(self):
        return {'loss': 0.0, 'correct': 0.0, 'count': 0, 'bad': 0, 'seconds': 0.0}

    # ----------------------------------------------------------- one epoch
    def train_epoch(self):
        """Train self.epoch from self.start_iter to its end, or until a stop is requested."""
        opt, acc, ctx = self.opt, self.acc, self.ctx
        num_iter = self.iters_per_epoch
        self.train_sampler.set_epoch(self.epoch, self.start_iter)
        bar = Progress(self.epoch, self.start_iter, num_iter, sys.stderr.isatty() and self.is_writer)
        # Dropout draws depend on (seed, epoch, start): a resume from an epoch boundary is exact.
        # (Seeding every iteration would make mid-epoch resumes exact too, but costs ~10 ms a step.)
        mx.random.seed((opt.seed * 1000003 + self.epoch * 1009 + self.start_iter) % (2 ** 31))
        loss_sum, correct = nd.array([acc['loss']], ctx=ctx[0]), nd.array([acc['correct']], ctx=ctx[0])
        tic = btic = time.time()
        i = last_report = self.start_iter - 1
        for i, batch in enumerate(self.train_loader, self.start_iter):
            lr = self.schedule(self.epoch * num_iter + i)
            self.trainer.set_learning_rate(lr)
            data_parts, label_parts, bad = load_batch(batch, ctx)
            stats = train_step(self.net, self.trainer, self.loss_fn, data_parts, label_parts, opt,
                               step=(i + 1) % opt.accumulate == 0)
            loss_sum = loss_sum + sum(s[0].as_in_context(ctx[0]) for s in stats)
            correct = correct + sum(s[1].as_in_context(ctx[0]) for s in stats)
            acc['count'] += len(batch[1])
            acc['bad'] += bad
            if (opt.log_interval and (i + 1) % opt.log_interval == 0) or i + 1 == num_iter:
                acc['loss'], acc['correct'] = float(loss_sum.asscalar()), float(correct.asscalar())
                self.check_finite(i)
                speed = len(batch[1]) * (i - last_report) / max(time.time() - btic, 1e-9)
                bar.report(self.epoch, i, num_iter, speed, acc['loss'] / acc['count'],
                           acc['correct'] / acc['count'], lr)
                btic, last_report = time.time(), i
            bar.advance()
            if self.stop.signal is not None:
                break
        bar.close()
        acc['loss'], acc['correct'] = float(loss_sum.asscalar()), float(correct.asscalar())
        acc['seconds'] += time.time() - tic
        self.check_finite(i)
        self.start_iter = i + 1

    def check_finite(self, i):
        if not math.isfinite(self.acc['loss']):
            last = checkpoint.list_resume_points(self.opt.save_dir)
            raise UserError('training loss became %s in epoch %d by iteration %d; the last good checkpoint '
                            'is %s. Lower --lr, add --clip-grad or --warmup-epochs, and resume with --auto-resume'
                            % (self.acc['loss'], self.epoch, i, last[-1] if last else 'none (no epoch finished)'))

    def validate(self):
        """(top-1, top-5, mean loss) over the validation list, summed over all workers."""
        opt, ctx = self.opt, self.ctx
        totals = nd.zeros(4, ctx=ctx[0])    # top-1 hits, top-5 hits, loss sum, clips
        for batch in self.val_loader:
            data_parts, label_parts, _ = load_batch(batch, ctx)
            for x, y in zip(data_parts, label_parts):
                out = self.net(to_network_input(x, opt))
                top5 = nd.topk(out, k=min(5, opt.num_classes)).astype('float32')
                counts = nd.stack((nd.argmax(out, axis=1) == y).sum(),
                                  (top5 == y.reshape((-1, 1))).sum(),
                                  self.loss_fn(out, y).sum(),
                                  nd.ones_like(y).sum()).reshape((4,))
                totals = totals + counts.as_in_context(ctx[0])
        if is_dist(self.kv):
            totals = allreduce(self.kv, totals)
        hit1, hit5, loss, n = totals.asnumpy().tolist()
        return hit1 / max(n, 1), hit5 / max(n, 1), loss / max(n, 1)

    # ----------------------------------------------------------- bookkeeping
    def finish_epoch(self):
        opt, acc, epoch = self.opt, self.acc, self.epoch
        if is_dist(self.kv):
            # Before validation and checkpoints: every worker then holds (and rank 0 saves) one model.
            average_running_stats(self.kv, self.net)
        row = {'epoch': epoch, 'lr': self.schedule((epoch + 1) * self.iters_per_epoch - 1),
               'train_loss': acc['loss'] / acc['count'], 'train_acc': acc['correct'] / acc['count'],
               'samples_per_sec': acc['count'] * opt.num_workers_dist / max(acc['seconds'], 1e-9),
               'epoch_time': acc['seconds'], 'bad_samples': acc['bad'],
               'val_loss': float('nan'), 'val_top1': float('nan'), 'val_top5': float('nan')}
        logger.info('[Epoch %03d] training: accuracy=%f\t loss=%f', epoch, row['train_acc'] * 100, row['train_loss'])
        logger.info('[Epoch %03d] speed: %d samples/sec\ttime cost: %f', epoch, row['samples_per_sec'], acc['seconds'])
        if acc['bad']:
            logger.warning('[Epoch %03d] %d broken samples were replaced (--skip-bad-samples)', epoch, acc['bad'])
        if not opt.train_only:
            row['val_top1'], row['val_top5'], row['val_loss'] = self.validate()
            logger.info('[Epoch %03d] validation: acc-top1=%f acc-top5=%f loss=%f',
                        epoch, row['val_top1'] * 100, row['val_top5'] * 100, row['val_loss'])
        self.rows.append(row)
        if self.is_writer:
            self.save_epoch_outputs(row)
        self.epoch, self.start_iter, self.acc = epoch + 1, 0, self.fresh_accumulators()
        if self.is_writer:
            self.save_resume_point()

    def save_epoch_outputs(self, row):
        """GluonCV's checkpoints (best, every --save-frequency, last), metrics.csv, the plot."""
        opt, epoch, d = self.opt, row['epoch'], self.opt.save_dir
        if not opt.train_only and row['val_top1'] > self.best_top1:
            self.best_top1 = row['val_top1']
            self.best_prefix = os.path.join(d, '%.4f-%s-%03d-best' % (self.best_top1, self.name, epoch))
            checkpoint.save_params_and_states(self.best_prefix, self.net, self.trainer)
        periodic = opt.save_frequency and (epoch + 1) % opt.save_frequency == 0 and not opt.train_only
        if periodic or epoch + 1 == opt.num_epochs:
            checkpoint.save_params_and_states(os.path.join(d, '%s-%03d' % (self.name, epoch)), self.net, self.trainer)
        checkpoint.write_metrics(os.path.join(d, 'metrics.csv'), self.rows)
        checkpoint.plot_history(os.path.join(d, '%s-history.png' % self.name), self.rows, self.name)
        if self.tb is not None:
            for key in ('train_loss', 'train_acc', 'val_loss', 'val_top1', 'val_top5', 'lr'):
                self.tb.add_scalar(key, row[key], epoch)
            self.tb.flush()

    def save_resume_point(self):
        meta = {'epoch': self.epoch, 'iteration': self.start_iter, 'rows': self.rows,
                'best_top1': self.best_top1, 'best_prefix': self.best_prefix, 'acc': self.acc,
                'model': self.opt.model, 'num_classes': self.opt.num_classes, 'seed': self.opt.seed}
        return checkpoint.save_resume_point(self.opt.save_dir, self.net, self.trainer, meta)

    def restore(self, prefix):
        meta = checkpoint.load_resume_meta(prefix)
        load_resume_params(self.net, prefix + '.params', self.opt, self.ctx)
        self.trainer.load_states(prefix + '.states')
        self.epoch, self.start_iter = meta['epoch'], meta['iteration']
        self.rows, self.acc = meta['rows'], meta['acc']
        self.best_top1, self.best_prefix = meta['best_top1'], meta['best_prefix']
        logger.info('resumed from %s: epoch %d, iteration %d', prefix, self.epoch, self.start_iter)

    # ----------------------------------------------------------- the whole run
    def train(self):
        opt = self.opt
        while self.epoch < opt.num_epochs and self.stop.signal is None:
            self.train_epoch()
            # A stop at an epoch's last batch leaves validation to the resumed run, whose loaders are
            # alive (a SIGTERM to the whole process group also ends this run's loader workers).
            if self.stop.signal is None:
                self.finish_epoch()
        if self.stop.signal is not None and self.epoch < opt.num_epochs:
            return self.stopped()
        mx.nd.waitall()
        if is_dist(self.kv):
            checksum = param_checksum(self.net.collect_params())
            print('[rank %d] param checksum: %s' % (opt.rank, checksum), flush=True)
        self.summary()
        return 0

    def stopped(self):
        if self.is_writer:
            prefix = self.save_resume_point()
            logger.warning('stopped at epoch %d, iteration %d; checkpoint %s. Resume with the same command '
                           'plus --auto-resume', self.epoch, self.start_iter, prefix)
        exit_now(128 + self.stop.signal)

    def summary(self):
        if not self.rows:
            logger.info('nothing to train: the run in %s is already complete', self.opt.save_dir)
            return
        last = self.rows[-1]
        logger.info('done: %d epochs; final val top-1 %.4f (chance %.4f), best %.4f; outputs in %s',
                    last['epoch'] + 1, last['val_top1'], 1.0 / self.opt.num_classes, self.best_top1,
                    self.opt.save_dir)


# =============================================================== main

def allreduce(kv, array):
    """Sum an NDArray over all distributed workers through the kvstore."""
    # Integer keys: the Trainer uses 0..P-1 and ps-lite refuses to mix key types.
    key = (1 << 20) + array.size
    if key not in allreduce.keys:
        kv.init(key, nd.zeros_like(array, ctx=mx.cpu()))
        allreduce.keys.add(key)
    out = nd.zeros_like(array, ctx=mx.cpu())
    kv.push(key, array.copyto(mx.cpu()))   # a copy: the dist kvstore keeps what is pushed as its buffer
    kv.pull(key, out=out)
    return out


allreduce.keys = set()


def broadcast_initial_weights(net, trainer, kv, opt):
    """Give every worker rank 0's weights before anything else touches the kvstore.

    gluon's Trainer does this lazily (first step() or load_states()) with one init+pull per
    weight on the weight's own array, which mxnet 1.9.1's dist kvstore then keeps as its
    transfer buffer: on loopback we saw the server abort ("init N first") and workers end
    with different weights.  Here: init from copies, barrier, pull, wait, barrier.
    The forward pass ends deferred initialisation, so that every weight takes part.
    """
    clips = nd.zeros((1, opt.num_segments * opt.new_length, opt.input_size, opt.input_size, 3),
                     dtype='uint8', ctx=opt.ctx[0])
    net(to_network_input(clips, opt))
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    params = [(trainer._param2idx[p.name], p) for p in trainer._params_to_init]
    for key, param in params:
        kv.init(key, param.data(opt.ctx[0]).copy())
    mx.nd.waitall()
    kv._barrier()
    for key, param in params:
        kv.pull(key, out=param.list_data())
    mx.nd.waitall()
    kv._barrier()
    trainer._params_to_init = []


def average_running_stats(kv, net):
    """Average BatchNorm running mean/var over the workers.

    The kvstore only reduces gradients, so each worker's running statistics follow its own
    shard; averaging them once per epoch makes validation, checkpoints and the checksum
    describe one model.  One allreduce of all statistics concatenated.
    """
    stats = [p for name, p in sorted(net.collect_params().items())
             if name.endswith(('running_mean', 'running_var'))]
    if not stats:
        return
    flat = nd.concat(*[p.data().reshape((-1,)).as_in_context(mx.cpu()) for p in stats], dim=0)
    flat = allreduce(kv, flat) / kv.num_workers
    offset = 0
    for p in stats:
        p.set_data(flat[offset:offset + p.data().size].reshape(p.shape))
        offset += p.data().size


def agree_on_resume_point(kv, save_dir, points):
    """--auto-resume with a dist kvstore: every worker must resume from the same point.

    All ranks read the newest resume point rank 0 wrote; a rank that sees another one (a
    --save-dir that is not shared between hosts) would train different epochs and hang
    the others, so all ranks stop with the same error instead.
    """
    meta = checkpoint.load_resume_meta(points[-1]) if points else {'epoch': -1, 'iteration': -1}
    mine = nd.zeros(2 * kv.num_workers)
    mine[2 * kv.rank:2 * kv.rank + 2] = nd.array([meta['epoch'], meta['iteration']])
    seen = allreduce(kv, mine).asnumpy().astype(int).reshape((-1, 2)).tolist()
    if any(pair != seen[0] for pair in seen):
        found = ', '.join('rank %d: %s' % (r, 'none' if e < 0 else 'epoch %d iteration %d' % (e, i))
                          for r, (e, i) in enumerate(seen))
        raise UserError('--auto-resume: the workers see different resume points in --save-dir %s (%s); '
                        'in distributed mode --save-dir must be one folder shared by all hosts'
                        % (save_dir, found))


def open_tensorboard(opt):
    if not opt.tensorboard:
        return None
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError('--tensorboard needs the tensorboardX package: pip install tensorboardX') from None
    return SummaryWriter(logdir=opt.save_dir, flush_secs=5)


def check_save_dir(opt):
    """Prove --save-dir can be written and is not an earlier run, without creating anything yet."""
    existing = opt.save_dir
    while not os.path.isdir(existing):
        parent = os.path.dirname(os.path.abspath(existing))
        if os.path.exists(existing) or parent == existing:
            raise UserError('--save-dir %s cannot be created: %s is not a folder' % (opt.save_dir, existing))
        existing = parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError('--save-dir %s cannot be written (no write permission on %s); choose another folder'
                        % (opt.save_dir, existing))
    earlier = os.path.exists(os.path.join(opt.save_dir, 'metrics.csv')) or checkpoint.list_resume_points(opt.save_dir)
    if earlier and not opt.auto_resume and opt.resume_epoch == 0 and opt.rank == 0:
        raise UserError('--save-dir %s already holds a run (metrics.csv or resume/); pass --auto-resume to '
                        'continue it, or choose another --save-dir' % opt.save_dir)


def setup_logging(opt, to_file):
    fmt = logging.Formatter('%(message)s' if opt.rank == 0 else '[rank %d] %%(message)s' % opt.rank)
    if not logger.handlers:
        console = logging.StreamHandler()
        console.setFormatter(fmt)
        console.addFilter(lambda record: getattr(record, 'console', True))
        logger.addHandler(console)
        logger.setLevel(logging.INFO)
    if to_file and opt.rank == 0:
        for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(old)   # main() called again in one process (tests, --eval)
            old.close()
        handler = logging.FileHandler(os.path.join(opt.save_dir, opt.logging_file))
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
        logger.addHandler(handler)


def main(argv=None):
    opt = check_args(parse_args(argv))
    if opt.eval:
        from scripts.test_recognizer import evaluate_from_training_flags
        return evaluate_from_training_flags(opt)
    kv = create_kvstore(opt)
    opt.rank, opt.num_workers_dist = (kv.rank, kv.num_workers) if is_dist(kv) else (0, 1)
    opt.ctx = contexts(opt)
    setup_logging(opt, to_file=False)
    if not opt.check_data and opt.rank == 0:   # only rank 0 writes there
        check_save_dir(opt)
    train_clips, val_clips = read_lists(opt)
    if opt.check_data:
        return check_every_sample(opt, (train_clips, val_clips))
    train_set, val_set = make_datasets(opt, train_clips, val_clips)
    # Before the loaders start workers: forked ones then ignore Ctrl-C (StopRequest.worker_defaults).
    stop = StopRequest()
    batch_size = opt.batch_size * len(opt.ctx)
    train_sampler, train_loader, val_loader = make_loaders(opt, train_set, val_set, batch_size, kv)
    mx.random.seed(opt.seed)
    if opt.use_amp:
        amp.init()   # rewrites mx.nd/mx.sym operators: before the network is built and hybridized
    net = build_model(opt, opt.ctx)
    if opt.resume_params:
        load_resume_params(net, opt.resume_params, opt, opt.ctx)
    if opt.mode == 'hybrid':
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = build_trainer(opt, net, kv)
    if is_dist(kv):
        broadcast_initial_weights(net, trainer, kv, opt)
    if opt.resume_states:
        trainer.load_states(opt.resume_states)
    if opt.use_amp:
        amp.init_trainer(trainer)
    if opt.rank == 0:
        os.makedirs(opt.save_dir, exist_ok=True)
    setup_logging(opt, to_file=True)   # only now: bad input must not leave a log behind
    logger.info(opt)
    logger.info('%d training and %d validation clips; total batch %d on %s',
                len(train_set), len(val_set), batch_size * opt.num_workers_dist, opt.ctx)
    run = Run(opt, net, trainer, kv, train_sampler, train_loader, val_loader, stop)
    if opt.resume_epoch > 0:
        run.rows = [r for r in checkpoint.read_metrics(os.path.join(opt.save_dir, 'metrics.csv'))
                    if r['epoch'] < opt.resume_epoch]
    points = checkpoint.list_resume_points(opt.save_dir) if opt.auto_resume else []
    if opt.auto_resume and is_dist(kv):
        agree_on_resume_point(kv, opt.save_dir, points)
    if points:
        run.restore(points[-1])
    return run.train()


if __name__ == '__main__':
    sys.exit(run_cli(main))
