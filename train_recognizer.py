#!/usr/bin/env python
"""Train a video action recognizer (TSN) on UCF101-layout data with MXNet/GluonCV.

Same flags, defaults and meanings as GluonCV's scripts/action-recognition/train_recognizer.py,
so the published model-zoo command lines run unchanged; in addition it works offline
(--no-pretrained-base, clear message for missing weights), checks its input before it
starts, resumes exactly (--auto-resume), and never leaves a half-written checkpoint.

Read top to bottom: arguments, data, model, train loop, validation, checkpoints, main.
The flags are declared in recognizer/options.py (shared with the evaluation scripts);
the step itself (forward, backward, update) is recognizer/training.py.
"""
import contextlib
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time

from recognizer.errors import UserError, run_cli

import mxnet as mx  # noqa: E402  (after recognizer: it prepares CUDA libraries on GPU hosts)
import numpy as np  # noqa: E402
from mxnet import gluon, nd  # noqa: E402
from mxnet.contrib import amp  # noqa: E402

from recognizer import checkpoint, data, evaluation, lock, options, transforms, zoo  # noqa: E402
from recognizer.dist import param_checksum  # noqa: E402
from recognizer.kvstore import (Allreduce, agree_on_resume_point, average_running_stats,  # noqa: E402
                                broadcast_initial_weights, create_kvstore, is_dist, rank_and_world_size)
from recognizer.models import accepts_kwarg, build_network, weights_source  # noqa: E402
from recognizer.runtime import amp_dtype, amp_problem, contexts, cpu_flags, setup_logging  # noqa: E402
from recognizer.schedule import LRSchedule  # noqa: E402
from recognizer.training import Objective, build_trainer, load_batch, train_step  # noqa: E402

logger = logging.getLogger('train_recognizer')


# =============================================================== arguments

def build_parser():
    return options.training_parser()   # groups shared with the evaluation scripts


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_args(opt):
    """Refuse combinations that cannot work, before any work."""
    not_built = [('--data-aug %s' % opt.data_aug, opt.data_aug != 'v1'),
                 ('--num-crop %d in training (use scripts/test_recognizer.py)' % opt.num_crop,
                  opt.num_crop != 1 and not opt.eval)]
    for what, bad in not_built:
        if bad:
            raise UserError('%s is not built in this trainer' % what)
    if opt.video_loader and not opt.use_decord:
        raise UserError('--video-loader reads videos with decord here (GluonCV\'s mmcv path is not built): '
                        'add --use-decord')
    if opt.finetune_from and (opt.resume_params or opt.use_pretrained):
        raise UserError('--finetune-from starts a new run from another model\'s weights; it cannot be combined with '
                        '%s' % ('--resume-params' if opt.resume_params else '--use-pretrained'))
    if opt.teacher_params and not opt.teacher:
        raise UserError('--teacher-params %s: name the teacher\'s architecture with --teacher (e.g. --teacher '
                        'vgg16_ucf101)' % opt.teacher_params)
    if opt.mixup and opt.mixup_alpha <= 0:
        raise UserError('--mixup-alpha must be above 0 (the Beta distribution\'s parameter), got %g' % opt.mixup_alpha)
    if not 0 <= opt.hard_weight <= 1:
        raise UserError('--hard-weight must be between 0 and 1, got %g' % opt.hard_weight)
    if opt.dtype not in ('float32', 'float16'):
        raise UserError('--dtype %s: choose float32 or float16 (float16 needs a GPU)' % opt.dtype)
    if opt.num_gpus == 0 and opt.dtype == 'float16':
        raise UserError('--dtype float16 needs a GPU (mxnet-cu112, see python scripts/check_env.py); on the CPU '
                        'train with --dtype float32 (--use-amp: bfloat16, on CPUs that have it)')
    if opt.amp_dtype and not opt.use_amp:
        raise UserError('--amp-dtype %s only chooses the type of --use-amp: add --use-amp' % opt.amp_dtype)
    problem = amp_problem(mixed_precision(opt), opt.num_gpus, cpu_flags())
    if problem:
        raise UserError(problem)
    options.check_input_fits_frames(opt)
    options.check_at_least_one((('--batch-size', opt.batch_size), ('--num-segments', opt.num_segments),
                                ('--accumulate', opt.accumulate), ('--cpu-contexts', opt.cpu_contexts)))
    zoo.check_input(opt.model, opt.new_length, opt.input_size, opt.input_5d, opt.new_step, opt.slowfast,
                    opt.fast_temporal_stride, opt.slow_temporal_stride)
    return opt


def mixed_precision(opt):
    """None, or the low-precision type --use-amp trains in (float16 on GPUs, bfloat16 on CPUs)."""
    return amp_dtype(opt.use_amp, opt.amp_dtype, opt.num_gpus)


def decay_epochs(opt):
    """--lr-decay-period N decays every N epochs; otherwise at the --lr-decay-epoch list."""
    if opt.lr_decay_period > 0:
        return list(range(opt.lr_decay_period, opt.num_epochs, opt.lr_decay_period))
    return opt.lr_decay_epoch


# =============================================================== data

def val_root(opt):
    return opt.val_data_dir or opt.data_dir


def read_lists(opt):
    """Both lists, checked line by line against the files on disk (a UserError names the line)."""
    video = opt.video_loader
    names = data.name_pattern_for(opt.dataset, opt.name_pattern)
    train = data.read_clip_list(opt.train_list, opt.data_dir, opt.num_classes, video, name_pattern=names)
    val = [] if opt.train_only else data.read_clip_list(opt.val_list, val_root(opt), opt.num_classes, video,
                                                        name_pattern=names)
    need = opt.num_segments * opt.new_length * opt.new_step
    short = sum(1 for c in train + val if c.num_frames < need)
    if short and not video:
        logger.warning('%d clips have fewer than %d frames (num-segments x new-length x new-step); '
                       'their frames are repeated, as GluonCV does', short, need)
    return train, val


def make_loaders(opt, train_set, val_set, batch_size, rank, world_size):
    """Each worker of a distributed run reads its own shard of both lists."""
    parts = dict(num_parts=world_size, part_index=rank)
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
    names = data.name_pattern_for(opt.dataset, opt.name_pattern)
    broken = []
    for clip in tqdm(clips, desc='checking', disable=not sys.stderr.isatty()):
        try:
            data.decode_whole_clip(clip, opt.video_loader, names)
        except data.BadSample as err:
            broken.append('%s (list line %d)' % (err, clip.line_no))
    if broken:
        raise UserError('%d of %d clips are broken:\n  %s\nre-extract or remove them, or train with '
                        '--skip-bad-samples' % (len(broken), len(clips), '\n  '.join(broken)))
    print('checked %d clips: every frame decodes' % len(clips))


def to_network_input(clips_u8, opt):
    """uint8 (B, S*L, H, W, 3) on a device -> normalised (B*S, 3, H, W) or (B*S, 3, L, H, W)."""
    return transforms.network_input(clips_u8, data.segment_frames(opt), opt.input_5d, opt.dtype)


def blank_input(opt, ctx):
    """The network input of one black clip: for shape inference and deferred initialisation."""
    clip = nd.zeros((1, opt.num_segments * data.segment_frames(opt), opt.input_size, opt.input_size, 3),
                    dtype='uint8', ctx=ctx)
    return to_network_input(clip, opt)


# =============================================================== model

def build_model(opt, ctx):
    # ImageNet base weights are not fetched when a checkpoint is about to replace them anyway.
    from_checkpoint = bool(opt.finetune_from or opt.resume_params)
    return build_network(opt.model, opt.num_classes, ctx, num_segments=opt.num_segments,
                         use_pretrained=opt.use_pretrained, hashtag=opt.hashtag,
                         pretrained_base=not (opt.no_pretrained_base or from_checkpoint), use_tsn=opt.use_tsn,
                         batch_norm=opt.batch_norm,
                         partial_bn=opt.partial_bn, freeze_bn=opt.freeze_bn,
                         use_kinetics_pretrain=opt.use_kinetics_pretrain, dtype=opt.dtype,
                         factory_kwargs=factory_options(opt))


def factory_options(opt):
    """--last-gamma, --use_se, --use-gn go to the model factory that takes them; elsewhere a warning."""
    asked = [(flag, kwarg) for flag, kwarg, on in (('--last-gamma', 'last_gamma', opt.last_gamma),
                                                   ('--use_se', 'use_se', opt.use_se),
                                                   ('--use-gn', 'use_gn', opt.use_gn)) if on]
    taken = {kwarg: True for flag, kwarg in asked if accepts_kwarg(opt.model, kwarg)}
    for flag, kwarg in asked:
        if kwarg not in taken:
            logger.warning('%s has no effect for --model %s (its model-zoo factory does not take %s); GluonCV\'s '
                           'script ignores it too', flag, opt.model, kwarg)
    return taken


def build_teacher(opt, ctx):
    """--teacher: the distillation teacher, from --teacher-params or the model zoo's weights; None without."""
    if not opt.teacher:
        return None
    batch_norm = bool(opt.teacher_params) and opt.teacher.startswith('vgg16') and \
        checkpoint.has_batch_norm(os.path.expanduser(opt.teacher_params))
    teacher = build_network(opt.teacher, opt.num_classes, ctx, num_segments=opt.num_segments,
                            use_pretrained=not opt.teacher_params, pretrained_base=False, use_tsn=opt.use_tsn,
                            batch_norm=batch_norm, dtype=opt.dtype)
    if opt.teacher_params:
        checkpoint.load_params(teacher, opt.teacher_params, ctx, opt.teacher, opt.num_classes, batch_norm,
                               flag='--teacher-params')
    if opt.mode == 'hybrid':
        teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher


def finetune_from(net, opt, ctx):
    """--finetune-from: every weight of a checkpoint (or model-zoo model) that fits; a fresh classifier."""
    source = weights_source(opt.finetune_from)
    net(blank_input(opt, ctx[0]))   # ends deferred initialisation: every shape is then known
    loaded, fresh = checkpoint.load_matching_params(net, source)
    logger.info('--finetune-from %s: loaded %d of %d parameters; initialised fresh for --num-classes %d: %s',
                source, len(loaded), len(loaded) + len(fresh), opt.num_classes, ', '.join(fresh) or 'none')


def warn_if_disk_is_small(opt, net, ctx):
    """A warning line when --save-dir's filesystem cannot hold the checkpoints this run will write."""
    each = checkpoint.estimate_checkpoint_bytes(net, blank_input(opt, ctx[0]).shape, opt.momentum > 0)
    periodic = sum(1 for e in range(opt.resume_epoch, opt.num_epochs)
                   if (opt.save_frequency and (e + 1) % opt.save_frequency == 0) or e + 1 == opt.num_epochs)
    # Two resume points while the next one is written, at least one best, the periodic and last ones.
    copies = 2 + (0 if opt.train_only else 1) + periodic
    free = shutil.disk_usage(existing_parent(opt.save_dir)).free
    if free < copies * each:
        logger.warning('--save-dir %s has %s free, but this run writes about %s of checkpoints (%d of %s each: '
                       'resume points, best, every --save-frequency %d epochs and the last); free space, raise '
                       '--save-frequency or choose another --save-dir', opt.save_dir,
                       checkpoint.human_bytes(free), checkpoint.human_bytes(copies * each), copies,
                       checkpoint.human_bytes(each), opt.save_frequency)


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

    def __init__(self, opt, net, trainer, kv, ctx, loaders, stop, teacher=None):
        self.opt, self.net, self.trainer, self.kv, self.ctx = opt, net, trainer, kv, ctx
        self.rank, self.world_size = rank_and_world_size(kv)
        self.allreduce = Allreduce(kv) if is_dist(kv) else None
        self.train_sampler, self.train_loader, self.val_loader = loaders
        self.iters_per_epoch = len(self.train_sampler)
        self.schedule = LRSchedule(opt.lr_mode, opt.lr, opt.num_epochs, self.iters_per_epoch,
                                   opt.warmup_epochs, opt.warmup_lr, decay_epochs(opt), opt.lr_decay)
        self.objective = Objective(opt.num_classes, opt.label_smoothing, teacher, opt.temperature, opt.hard_weight)
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()   # validation: plain cross-entropy on the labels
        # Gradients are summed over every clip of a step on all devices and workers, then normalised.
        self.step_size = opt.batch_size * len(ctx) * opt.accumulate * self.world_size
        self.is_writer = self.rank == 0
        self.rows, self.best_top1, self.best_prefix = [], 0.0, None
        self.epoch, self.start_iter = opt.resume_epoch, 0
        self.acc = self.fresh_accumulators()
        self.stop = stop
        self.writer = checkpoint.BackgroundWriter()
        self.tb = None
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
            stats = train_step(self.net, self.trainer, self.objective, data_parts, label_parts,
                               lambda x: to_network_input(x, opt), self.step_size,
                               scale_loss=mixed_precision(opt) == 'float16',
                               step=(i + 1) % opt.accumulate == 0, lam=self.mixup_weight(i))
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

    def mixup_weight(self, i):
        """This iteration's Beta(alpha, alpha) mixup weight, a function of (seed, epoch, iteration); None when off."""
        opt = self.opt
        if not opt.mixup or self.epoch >= opt.num_epochs - opt.mixup_off_epoch:
            return None
        return float(np.random.default_rng([opt.seed, self.epoch, i]).beta(opt.mixup_alpha, opt.mixup_alpha))

    def check_finite(self, i):
        if not math.isfinite(self.acc['loss']):
            last = checkpoint.list_resume_points(self.opt.save_dir)
            raise UserError('training loss became %s in epoch %d by iteration %d; the last good checkpoint '
                            'is %s. Lower --lr, add --clip-grad or --warmup-epochs, and resume with --auto-resume'
                            % (self.acc['loss'], self.epoch, i, last[-1] if last else 'none (no epoch finished)'))

    # ----------------------------------------------------------- validation
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
        if self.allreduce:
            totals = self.allreduce(totals)
        hit1, hit5, loss, n = totals.asnumpy().tolist()
        return hit1 / max(n, 1), hit5 / max(n, 1), loss / max(n, 1)

    # ----------------------------------------------------------- checkpoints
    def finish_epoch(self):
        opt, acc, epoch = self.opt, self.acc, self.epoch
        if self.allreduce:
            # Before validation and checkpoints: every worker then holds (and rank 0 saves) one model.
            average_running_stats(self.allreduce, self.net)
        row = {'epoch': epoch, 'lr': self.schedule((epoch + 1) * self.iters_per_epoch - 1),
               'train_loss': acc['loss'] / acc['count'], 'train_acc': acc['correct'] / acc['count'],
               'samples_per_sec': acc['count'] * self.world_size / max(acc['seconds'], 1e-9),
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
        self.epoch, self.start_iter, self.acc = epoch + 1, 0, self.fresh_accumulators()
        if self.is_writer:
            self.save_epoch_outputs(row)

    def save_epoch_outputs(self, row):
        """metrics.csv now; the checkpoints (resume point, best, every --save-frequency, last) and the plot
        from a snapshot in host memory, written by the background writer while the next epoch trains."""
        opt, epoch, d = self.opt, row['epoch'], self.opt.save_dir
        last = epoch + 1 == opt.num_epochs
        prefixes = []
        resume = last or (epoch + 1) % opt.resume_every == 0
        if resume:
            prefixes.append(checkpoint.resume_prefix(d, self.epoch, self.start_iter))
        if not opt.train_only and row['val_top1'] > self.best_top1:
            self.best_top1 = row['val_top1']
            self.best_prefix = os.path.join(d, '%.4f-%s-%03d-best' % (self.best_top1, self.name, epoch))
            prefixes.append(self.best_prefix)
        if last or (opt.save_frequency and (epoch + 1) % opt.save_frequency == 0 and not opt.train_only):
            prefixes.append(os.path.join(d, '%s-%03d' % (self.name, epoch)))
        with self.naming_the_intact_checkpoint():
            checkpoint.write_metrics(os.path.join(d, 'metrics.csv'), self.rows)
            self.writer.submit(self.checkpoint_job(prefixes, self.resume_meta() if resume else None))
        if self.tb is not None:
            for key in ('train_loss', 'train_acc', 'val_loss', 'val_top1', 'val_top5', 'lr'):
                self.tb.add_scalar(key, row[key], epoch)
            self.tb.flush()

    def checkpoint_job(self, prefixes, meta):
        """What the writer does for an epoch: the snapshot is taken now, the files are written later."""
        snapshot = checkpoint.Snapshot(self.net, self.trainer) if prefixes else None
        rows, d, name = list(self.rows), self.opt.save_dir, self.name

        def job():
            if snapshot is not None:
                checkpoint.write_checkpoints(snapshot, prefixes, d, meta)
            checkpoint.plot_history(os.path.join(d, '%s-history.png' % name), rows, name)
        return job

    def resume_meta(self):
        # Copies: the writer serialises them while training goes on.
        return {'epoch': self.epoch, 'iteration': self.start_iter, 'rows': [dict(r) for r in self.rows],
                'best_top1': self.best_top1, 'best_prefix': self.best_prefix, 'acc': dict(self.acc),
                'model': self.opt.model, 'num_classes': self.opt.num_classes, 'seed': self.opt.seed}

    def save_resume_point(self):
        """A resume point written now (a stop), after whatever the writer still has in flight."""
        with self.naming_the_intact_checkpoint():
            self.writer.wait()
            return checkpoint.save_resume_point(self.opt.save_dir, self.net, self.trainer, self.resume_meta())

    @contextlib.contextmanager
    def naming_the_intact_checkpoint(self):
        """A full disk stops the run with one line that also says which checkpoint is still whole."""
        try:
            yield
        except checkpoint.DiskFull as err:
            points = checkpoint.list_resume_points(self.opt.save_dir)
            raise UserError('%s. The newest intact checkpoint is %s' % (
                err, points[-1] + '.{params,states,json}' if points else 'none (no epoch was saved)')) from None

    # ----------------------------------------------------------- resuming
    def resume(self):
        """Continue an earlier run: GluonCV's --resume-params/--resume-states/--resume-epoch, or --auto-resume."""
        opt = self.opt
        if opt.resume_params:
            checkpoint.load_params(self.net, opt.resume_params, self.ctx, opt.model, opt.num_classes, opt.batch_norm)
        if opt.resume_states:
            self.trainer.load_states(opt.resume_states)
        if opt.resume_epoch > 0:
            self.rows = [r for r in checkpoint.read_metrics(os.path.join(opt.save_dir, 'metrics.csv'))
                         if r['epoch'] < opt.resume_epoch]
        if not opt.auto_resume:
            return
        prefix = self.restore_newest_intact()
        if self.allreduce:
            agree_on_resume_point(self.allreduce, opt.save_dir, [prefix] if prefix else [])

    def restore_newest_intact(self):
        """--auto-resume: the newest resume point that is whole and loads; older ones when it is not.

        Never starts over silently: a warning names each rejected point, and resume points none of
        which is usable stop the run (exit 2) before anything is written.
        """
        save_dir, rejected = self.opt.save_dir, []
        for prefix in reversed(checkpoint.resume_point_prefixes(save_dir)):
            reason = checkpoint.resume_point_damage(prefix) or self.restore(prefix)
            if reason is None:
                return prefix
            if 'write was interrupted' not in reason:   # a kill mid-write is routine, damage is not
                rejected.append('%s: %s' % (prefix, reason))
                logger.warning('--auto-resume: rejected resume point %s: %s', prefix, reason)
        if rejected:
            raise UserError('--auto-resume: no usable resume point in %s/resume (%s); move resume/ aside to start '
                            'over, or start from a checkpoint with --resume-params/--resume-states/--resume-epoch'
                            % (save_dir, '; '.join(rejected)))
        if os.path.exists(os.path.join(save_dir, 'metrics.csv')):
            logger.warning('--auto-resume: %s holds metrics.csv but no complete resume point (stopped before the '
                           'first one was written); starting from epoch 0', save_dir)
        return None

    def restore(self, prefix):
        """Load a resume point: None when it worked, else why not (epoch and metrics are then unchanged;
        the weights may be half loaded, and the next point tried overwrites all of them)."""
        try:
            meta = checkpoint.load_resume_meta(prefix)
            checkpoint.load_params(self.net, prefix + '.params', self.ctx, self.opt.model, self.opt.num_classes,
                                   self.opt.batch_norm)
            self.trainer.load_states(prefix + '.states')
            position = meta['epoch'], meta['iteration'], meta['rows'], meta['acc']
            best = meta['best_top1'], meta['best_prefix']
        except Exception as err:  # whatever fails to load (MXNet, pickle, JSON, I/O) makes the point unusable
            return checkpoint.error_reason(err)
        (self.epoch, self.start_iter, self.rows, self.acc), (self.best_top1, self.best_prefix) = position, best
        logger.info('resumed from %s: epoch %d, iteration %d', prefix, self.epoch, self.start_iter)
        return None

    # ----------------------------------------------------------- the whole run
    def train(self):
        opt = self.opt
        self.tb = open_tensorboard(opt) if self.is_writer else None
        while self.epoch < opt.num_epochs and self.stop.signal is None:
            self.train_epoch()
            # A stop at an epoch's last batch leaves validation to the resumed run, whose loaders are
            # alive (a SIGTERM to the whole process group also ends this run's loader workers).
            if self.stop.signal is None:
                self.finish_epoch()
        if self.stop.signal is not None and self.epoch < opt.num_epochs:
            return self.stopped()
        mx.nd.waitall()
        with self.naming_the_intact_checkpoint():
            self.writer.wait()
        if self.allreduce:
            checksum = param_checksum(self.net.collect_params())
            print('[rank %d] param checksum: %s' % (self.rank, checksum), flush=True)
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

def open_tensorboard(opt):
    if not opt.tensorboard:
        return None
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError('--tensorboard needs the tensorboardX package: pip install -r requirements.txt') from None
    return SummaryWriter(logdir=opt.save_dir, flush_secs=5)


def existing_parent(path):
    """``path`` or its nearest existing ancestor; a UserError when that is not a folder."""
    existing = path
    while not os.path.isdir(existing):
        parent = os.path.dirname(os.path.abspath(existing))
        if os.path.exists(existing) or parent == existing:
            raise UserError('--save-dir %s cannot be created: %s is not a folder' % (path, existing))
        existing = parent
    return existing


def check_save_dir(opt):
    """Prove --save-dir can be written and is not an earlier run, without creating anything yet."""
    existing = existing_parent(opt.save_dir)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError('--save-dir %s cannot be written (no write permission on %s); choose another folder'
                        % (opt.save_dir, existing))
    earlier = (os.path.exists(os.path.join(opt.save_dir, 'metrics.csv')) or
               checkpoint.resume_point_prefixes(opt.save_dir))
    lock.check_not_in_use(opt.save_dir)
    if earlier and not opt.auto_resume and opt.resume_epoch == 0:
        raise UserError('--save-dir %s already holds a run (metrics.csv or resume/); pass --auto-resume to '
                        'continue it, or choose another --save-dir' % opt.save_dir)


def open_outputs(opt):
    """Only now, with the input checked: create --save-dir, take its lock, start the log file."""
    os.makedirs(opt.save_dir, exist_ok=True)
    held = lock.SaveDirLock(opt.save_dir).acquire()
    setup_logging(logger, 0, os.path.join(opt.save_dir, opt.logging_file))
    freed = checkpoint.remove_stale_temporaries(opt.save_dir)
    if freed:
        logger.info('removed %s of temporary files left by an interrupted run', checkpoint.human_bytes(freed))
    return held


def evaluate_only(opt):
    """--eval: the test protocol on --val-list with the training flags (see recognizer/evaluation.py)."""
    setup_logging(evaluation.logger)
    evaluation.evaluate(evaluation.options_from_training(opt))
    return 0


def prepare_network(opt, ctx, kv):
    """The network and its Trainer, hybridized, with every worker starting from the same weights."""
    mx.random.seed(opt.seed)
    if opt.use_amp:   # rewrites mx.nd/mx.sym operators: before the network is built and hybridized
        amp.init(target_dtype=mixed_precision(opt))
    net = build_model(opt, ctx)
    if opt.finetune_from:
        finetune_from(net, opt, ctx)
    if kv is None or kv.rank == 0:
        warn_if_disk_is_small(opt, net, ctx)
    if opt.mode == 'hybrid':
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = build_trainer(opt, net, kv)
    if is_dist(kv):
        broadcast_initial_weights(net, trainer, kv, blank_input(opt, ctx[0]), ctx)
    if mixed_precision(opt) == 'float16':   # bfloat16 has float32's range: no loss scaling
        amp.init_trainer(trainer)
    return net, trainer


def main(argv=None):
    opt = check_args(parse_args(argv))
    if opt.eval:
        return evaluate_only(opt)
    kv = create_kvstore(opt.kvstore)
    rank, world_size = rank_and_world_size(kv)
    ctx = contexts(opt.num_gpus, opt.cpu_contexts)
    setup_logging(logger, rank, keep_for_file=rank == 0)
    if not opt.check_data and rank == 0:   # only rank 0 writes there
        check_save_dir(opt)
    train_clips, val_clips = read_lists(opt)
    if opt.check_data:
        return check_every_sample(opt, (train_clips, val_clips))
    train_set, val_set = data.training_datasets(opt, train_clips, val_clips)
    # Before the loaders start workers: forked ones then ignore Ctrl-C (StopRequest.worker_defaults).
    stop = StopRequest()
    batch_size = opt.batch_size * len(ctx)
    loaders = make_loaders(opt, train_set, val_set, batch_size, rank, world_size)
    net, trainer = prepare_network(opt, ctx, kv)
    run = Run(opt, net, trainer, kv, ctx, loaders, stop, teacher=build_teacher(opt, ctx))
    run.resume()
    logger.info(opt)
    logger.info('%d training and %d validation clips; total batch %d on %s',
                len(train_set), len(val_set), batch_size * world_size, ctx)
    held = open_outputs(opt) if rank == 0 else None
    try:
        return run.train()
    finally:
        if held:
            held.release()


if __name__ == '__main__':
    sys.exit(run_cli(main))
