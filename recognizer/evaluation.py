"""The TSN test protocol of scripts/test_recognizer.py, scripts/inference.py and train_recognizer.py --eval.

A clip is seen through ``num_segments x num_crop`` views: the frames at the centres of
``num_segments`` equal segments (``data.test_offsets``), each cut into 1, 3 or 10 crops
as GluonCV's test transforms do. The network is run on the views in chunks (bounded
memory: 25 segments x 10 crops is 250 images) with ``num_segments=1, num_crop=1``, so
it scores every view on its own; the clip's class scores are the softmax of each view
averaged over all views (``--score-average softmax``, the protocol of the TSN paper).
``--score-average logits`` averages the logits instead and takes one softmax at the end,
which ranks classes as GluonCV's test script does (its network averages features over
all views before the linear classifier).

Also here: accuracy metrics, class names, the report files, and the evaluation run itself
(``evaluate``), which scripts/test_recognizer.py and ``train_recognizer.py --eval`` call.
"""
import csv
import json
import logging
import os
import time

import cv2
import numpy as np

from . import data, options, transforms
from .errors import UserError

TOPK = 5
logger = logging.getLogger('evaluation')


# ---------------------------------------------------------------- views

def _too_small(h, w, size):
    return UserError('frames are %dx%d (width x height), smaller than --input-size %d; lower --input-size '
                     'or raise --new-width/--new-height' % (w, h, size))


def three_crop(frames, size):
    """GluonCV's VideoThreeCrop: 3 squares along the long side (left/right/middle or top/bottom/middle).

    GluonCV's version needs one side to equal ``size``; when neither does, the short side is
    first resized to ``size`` keeping the aspect ratio (the TSN/TSM "full resolution"
    3-crop), so the three crops together cover the whole frame.
    """
    h, w = frames[0].shape[:2]
    if min(h, w) != size:
        scale = size / float(min(h, w))
        h, w = (size, max(size, int(round(w * scale)))) if h <= w else (max(size, int(round(h * scale))), size)
        frames = [cv2.resize(f, (w, h)) for f in frames]
    if h == size:
        step = (w - size) // 2
        corners = [(0, 0), (0, 2 * step), (0, step)]
    else:
        step = (h - size) // 2
        corners = [(0, 0), (2 * step, 0), (step, 0)]
    return np.stack([f[y:y + size, x:x + size] for y, x in corners for f in frames])


def ten_crop(frames, size):
    """GluonCV's VideoTenCrop: centre, top-left, bottom-left, top-right, bottom-right, then their mirrors."""
    h, w = frames[0].shape[:2]
    if h < size or w < size:
        raise _too_small(h, w, size)
    corners = [((h - size) // 2, (w - size) // 2), (0, 0), (h - size, 0), (0, w - size), (h - size, w - size)]
    crops = [f[y:y + size, x:x + size] for y, x in corners for f in frames]
    return np.stack(crops + [c[:, ::-1] for c in crops])


def crop_views(frames, size, num_crop):
    """uint8 (num_crop * len(frames), size, size, 3), crop-major: all frames of crop 0, then crop 1..."""
    if num_crop == 10:
        return ten_crop(frames, size)
    if num_crop == 3:
        return three_crop(frames, size)
    h, w = frames[0].shape[:2]
    if h < size or w < size:
        raise _too_small(h, w, size)
    return transforms.center_crop(frames, size)


class ViewDataset(data.ClipDataset):
    """Clips of a list as (views uint8 (num_crop * num_segments, segment frames, S, S, 3), label, index, error).

    An unreadable clip gives ``views=None`` and the reason, so the caller decides what to do.
    """

    def __init__(self, clips, opt, name_pattern=data.NAME_PATTERN):
        def view_transform(frames, rng):
            views = crop_views(frames, opt.input_size, opt.num_crop)
            return views.reshape((-1, data.segment_frames(opt)) + views.shape[1:])

        super().__init__(clips, view_transform, train=False, num_segments=opt.num_segments,
                         new_length=opt.new_length, new_step=opt.new_step, new_width=opt.new_width,
                         new_height=opt.new_height, video=opt.video_loader, offsets='test',
                         slowfast=data.slowfast_strides(opt), name_pattern=name_pattern)

    def __getitem__(self, index):
        try:
            return self.load(index, None), self.clips[index].label, index, None
        except data.BadSample as err:
            return None, self.clips[index].label, index, str(err)


def first_sample(samples):
    """DataLoader batchify for batches of one clip (module level so workers can unpickle it)."""
    return samples[0]


# ---------------------------------------------------------------- scores

def softmax(logits, axis=-1):
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def average_view_scores(view_logits, mode='softmax'):
    """Class probabilities of a clip from the logits of its views (V, C)."""
    view_logits = np.asarray(view_logits, dtype=np.float64)
    if mode == 'softmax':
        return softmax(view_logits).mean(axis=0)
    if mode == 'logits':
        return softmax(view_logits.mean(axis=0))
    raise ValueError('unknown score averaging %r' % mode)


class Predictor(object):
    """Runs a network on a clip's views in chunks of at most ``views_per_pass`` per device."""

    def __init__(self, net, ctx, opt):
        self.net, self.ctx, self.opt = net, ctx, opt

    def view_logits(self, views):
        """float32 numpy (V, C): the logits of every view, V = views.shape[0]."""
        from mxnet import gluon, nd
        opt = self.opt
        step = opt.views_per_pass * len(self.ctx)
        outputs = []
        for start in range(0, len(views), step):
            chunk = nd.array(views[start:start + step], dtype='uint8')
            parts = gluon.utils.split_and_load(chunk, ctx_list=self.ctx[:len(chunk)], even_split=False)
            for part in parts:
                out = self.net(transforms.network_input(part, data.segment_frames(opt), opt.input_5d, opt.dtype))
                outputs.append(out.astype('float32').asnumpy())
        return np.concatenate(outputs)

    def clip_scores(self, views):
        return average_view_scores(self.view_logits(views), self.opt.score_average)


# ---------------------------------------------------------------- metrics

def topk_classes(scores, k=TOPK):
    """(N, k) class indices by decreasing score; ties go to the lower class index."""
    order = np.argsort(-np.asarray(scores), axis=1, kind='stable')
    return order[:, :k]


def confusion_matrix(labels, predicted, num_classes):
    """Rows: true class; columns: predicted class; entries: clip counts."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return matrix


def per_class_accuracy(matrix):
    """Top-1 of each class (NaN for a class without clips)."""
    clips = matrix.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(clips > 0, np.diag(matrix) / np.maximum(clips, 1), np.nan)


def mean_class_accuracy(matrix):
    """Mean of the per-class top-1 over the classes that have clips."""
    acc = per_class_accuracy(matrix)
    present = ~np.isnan(acc)
    return float(acc[present].mean()) if present.any() else float('nan')


def accuracy_metrics(labels, scores):
    """top1, top5, mean class accuracy, confusion matrix and top-k indices of (N,) labels and (N, C) scores."""
    labels = np.asarray(labels, dtype=int)
    num_classes = scores.shape[1]
    top = topk_classes(scores, min(TOPK, num_classes))
    matrix = confusion_matrix(labels, top[:, 0], num_classes)
    return {'top1': float(np.mean(top[:, 0] == labels)),
            'top5': float(np.mean((top == labels[:, None]).any(axis=1))),
            'mean_class_accuracy': mean_class_accuracy(matrix),
            'correct': int(np.sum(top[:, 0] == labels)),
            'confusion': matrix, 'topk': top}


# ---------------------------------------------------------------- class names

def read_class_index(path, num_classes):
    """Names from UCF101's classInd.txt: ``<1-based index> <name>`` per line, indices 1..num_classes."""
    if not os.path.isfile(path):
        raise UserError('--class-index %s does not exist; pass the classInd.txt of the dataset' % path)
    names = {}
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            # The name is the rest of the line: make_lists.py keeps class names with spaces as they are.
            fields = line.rstrip('\r\n').split(None, 1)
            if not fields:
                continue
            if len(fields) != 2 or not fields[0].isdigit():
                raise UserError('%s:%d: expected "<1-based index> <class name>", got %r'
                                % (path, line_no, line.strip()))
            names[int(fields[0]) - 1] = fields[1]
    if sorted(names) != list(range(num_classes)):
        raise UserError('%s names %d classes (indices %s..%s) but --num-classes is %d; it must list 1..%d once each'
                        % (path, len(names), min(names, default=0) + 1, max(names, default=-1) + 1,
                           num_classes, num_classes))
    return [names[i] for i in range(num_classes)]


def class_names(num_classes, class_index=None):
    """From --class-index, else the model zoo's UCF101 names for 101 classes, else "0", "1", ..."""
    if class_index:
        return read_class_index(os.path.expanduser(class_index), num_classes)
    if num_classes == 101:
        from gluoncv.data import UCF101Attr
        return list(UCF101Attr().classes)
    return [str(i) for i in range(num_classes)]


# ---------------------------------------------------------------- reports

def write_per_class(path, matrix, names):
    acc = per_class_accuracy(matrix)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['class', 'clips', 'top1'])
        for name, clips, value in zip(names, matrix.sum(axis=1), acc):
            writer.writerow([name, int(clips), '' if np.isnan(value) else '%.6f' % value])


def write_predictions(path, clip_ids, labels, scores, topk, names):
    k = topk.shape[1]
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['clip', 'true', 'predicted', 'correct'] +
                        [c for i in range(1, k + 1) for c in ('top%d_class' % i, 'top%d_score' % i)])
        for clip, label, row, top in zip(clip_ids, labels, scores, topk):
            ranked = [v for c in top for v in (names[c], '%.6f' % row[c])]
            writer.writerow([clip, names[label], names[top[0]], int(top[0] == label)] + ranked)


def plot_confusion(path, matrix, names, title):
    """Row-normalised confusion matrix; the figure grows with the class count so 101 names stay legible."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(names)
    side = max(6.0, 0.17 * n + 2.5)
    font = 10 if n <= 20 else (7 if n <= 60 else 6)
    rows = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(matrix / rows, cmap='Blues', vmin=0.0, vmax=1.0, interpolation='nearest')
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=font)
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel('predicted class')
    ax.set_ylabel('true class')
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label='fraction of the true class')
    fig.tight_layout()
    fig.savefig(path, dpi=120 if n > 30 else 100)
    plt.close(fig)


def write_reports(save_dir, clip_ids, labels, scores, names, info):
    """summary.json, per_class.csv, predictions.csv, confusion_matrix.png; returns the summary dict."""
    os.makedirs(save_dir, exist_ok=True)
    metrics = accuracy_metrics(labels, scores)
    summary = dict(info, top1=metrics['top1'], top5=metrics['top5'],
                   mean_class_accuracy=metrics['mean_class_accuracy'],
                   correct=metrics['correct'], clips=len(labels))
    files = {key: os.path.join(save_dir, name) for key, name in
             (('summary', 'summary.json'), ('per_class', 'per_class.csv'),
              ('predictions', 'predictions.csv'), ('confusion', 'confusion_matrix.png'))}
    summary['files'] = files
    write_per_class(files['per_class'], metrics['confusion'], names)
    write_predictions(files['predictions'], clip_ids, labels, scores, metrics['topk'], names)
    plot_confusion(files['confusion'], metrics['confusion'], names,
                   '%s: top-1 %.2f%%, %d clips' % (info.get('model', ''), 100 * metrics['top1'], len(labels)))
    with open(files['summary'], 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


# ---------------------------------------------------------------- the network

def check_view_options(opt):
    """The checks every evaluating CLI needs: settle the crop count, refuse what cannot work, before loading."""
    if opt.ten_crop and opt.three_crop:
        raise UserError('--ten-crop and --three-crop exclude each other; pick one')
    opt.num_crop = 10 if opt.ten_crop else 3 if opt.three_crop else opt.num_crop
    if opt.num_crop not in options.CROPS:
        raise UserError('--num-crop %d: the test protocol has 1, 3 or 10 crops' % opt.num_crop)
    options.check_at_least_one((('--num-segments', opt.num_segments), ('--input-size', opt.input_size),
                                ('--new-length', opt.new_length), ('--new-step', opt.new_step),
                                ('--views-per-pass', opt.views_per_pass)))
    data.segment_frames(opt)   # bad --slowfast strides are a UserError before anything is loaded
    if not opt.resume_params and not opt.use_pretrained:
        raise UserError('nothing to evaluate: pass --resume-params <file>.params (from the training --save-dir) '
                        'or --use-pretrained for the model zoo\'s weights')
    if opt.num_gpus == 0 and opt.dtype != 'float32':
        raise UserError('--dtype %s needs a GPU; on a CPU use --dtype float32' % opt.dtype)
    options.check_input_fits_frames(opt)
    return opt


def probe(net, opt, ctx):
    """One forward pass on a blank view: an input size the checkpoint cannot take fails here, clearly."""
    from mxnet import base, nd
    views = nd.zeros((1, data.segment_frames(opt), opt.input_size, opt.input_size, 3), dtype='uint8', ctx=ctx[0])
    try:
        net(transforms.network_input(views, data.segment_frames(opt), opt.input_5d, opt.dtype)).wait_to_read()
    except base.MXNetError as err:
        size = opt.input_size
        raise UserError('the network cannot run on %dx%d views with these parameters (%s); use the --input-size '
                        'the checkpoint was trained with' % (size, size, str(err).splitlines()[0][:160])) from None


def load_network(opt, ctx):
    """build_network + the checkpoint in --resume-params (or the model zoo's weights with --use-pretrained)."""
    from .checkpoint import load_params
    from .models import build_network
    # One view per forward pass; a checkpoint brings every weight, so no base weights are fetched.
    net = build_network(opt.model, opt.num_classes, ctx, use_pretrained=opt.use_pretrained and not opt.resume_params,
                        hashtag=opt.hashtag, pretrained_base=False, batch_norm=opt.batch_norm, use_tsn=opt.use_tsn,
                        dtype=opt.dtype)
    if opt.resume_params:
        load_params(net, opt.resume_params, ctx, opt.model, opt.num_classes, opt.batch_norm)
    probe(net, opt, ctx)
    if opt.mode == 'hybrid':
        # No static_shape: the last chunk of a clip is usually smaller than the others.
        net.hybridize(static_alloc=True)
    return net


# ---------------------------------------------------------------- the evaluation run

def make_clip_loader(dataset, opt):
    """Clips one by one (a clip is already up to num_segments x num_crop views)."""
    from mxnet import gluon
    prefetch = max(1, int(opt.prefetch_ratio * opt.num_workers)) if opt.num_workers > 0 else None
    return gluon.data.DataLoader(dataset, batch_size=1, shuffle=False, batchify_fn=first_sample,
                                 num_workers=opt.num_workers, prefetch=prefetch)


def score_clips(predictor, dataset, opt):
    """(indices of scored clips, their (N, C) scores, [(clip, reason)] of unreadable ones)."""
    done, scores, bad = [], [], []
    correct, tic = 0, time.time()
    for views, label, index, error in make_clip_loader(dataset, opt):
        clip = dataset.clips[index]
        if error is not None:
            if not opt.skip_bad_samples:
                raise UserError('%s (clip on line %d of %s); fix or remove it, or pass --skip-bad-samples to '
                                'leave it out' % (error, clip.line_no, opt.val_list))
            logger.warning('skipped: %s', error)
            bad.append((clip, error))
            continue
        scores.append(predictor.clip_scores(views))
        done.append(index)
        correct += int(np.argmax(scores[-1]) == label)
        if opt.log_interval and len(done) % opt.log_interval == 0:
            logger.info('%04d/%04d is done: acc-top1=%f (%.2f clips/s)', len(done), len(dataset),
                        100.0 * correct / len(done), len(done) / max(time.time() - tic, 1e-9))
    if not done:
        raise UserError('no clip of %s could be read; check the data' % opt.val_list)
    return done, np.stack(scores), bad


def clip_id(clip, root):
    return os.path.relpath(clip.path, os.path.expanduser(root))


def evaluate(opt, load_network=load_network):
    """Run the protocol on --val-list and write the reports; returns the summary dict.

    ``load_network(opt, ctx)`` gives the network (scripts/test_recognizer.py passes the one that
    also loads INT8 and deployed models).
    """
    from .runtime import contexts
    frame_names = data.name_pattern_for(opt.dataset, opt.name_pattern)
    clips = data.read_clip_list(opt.val_list, opt.val_data_dir, opt.num_classes, opt.video_loader,
                                name_pattern=frame_names)
    names = class_names(opt.num_classes, opt.class_index)
    try:
        os.makedirs(opt.save_dir, exist_ok=True)
    except OSError as err:
        raise UserError('--save-dir %s cannot be created (%s); choose another folder' % (opt.save_dir, err)) from None
    ctx = contexts(opt.num_gpus)
    net = load_network(opt, ctx)
    logger.info('%d clips x %d segments x %d crops = %d views per clip; %s', len(clips), opt.num_segments,
                opt.num_crop, opt.num_segments * opt.num_crop, opt.resume_params or 'model zoo weights')
    tic = time.time()
    done, scores, bad = score_clips(Predictor(net, ctx, opt), ViewDataset(clips, opt, frame_names), opt)
    seconds = time.time() - tic
    labels = np.array([clips[i].label for i in done])
    info = {'model': opt.model, 'params': opt.resume_params, 'val_list': opt.val_list,
            'num_segments': opt.num_segments, 'num_crop': opt.num_crop, 'input_size': opt.input_size,
            'views_per_clip': opt.num_segments * opt.num_crop, 'score_average': opt.score_average,
            'seconds': seconds, 'skipped': [{'clip': clip_id(c, opt.val_data_dir), 'reason': r} for c, r in bad]}
    summary = write_reports(opt.save_dir, [clip_id(clips[i], opt.val_data_dir) for i in done],
                            labels, scores, names, info)
    print('Test accuracy: acc-top1=%f acc-top5=%f mean-class-acc=%f (%d/%d clips correct, %d segments x %d crops)'
          % (100 * summary['top1'], 100 * summary['top5'], 100 * summary['mean_class_accuracy'],
             summary['correct'], summary['clips'], opt.num_segments, opt.num_crop))
    print('Total evaluation time is %4.2f minutes; reports in %s' % (seconds / 60, opt.save_dir))
    return summary


def options_from_training(train_opt):
    """``train_recognizer.py --eval``: the training command's flags, plus the test protocol's defaults.

    The training flags mean the same here (--num-segments, --num-crop, --input-size, --new-*,
    --val-list, --val-data-dir, --save-dir, ...); the protocol's own flags keep their defaults.
    """
    import argparse
    parser = argparse.ArgumentParser(add_help=False)
    options.add_test_args(parser)
    opt = parser.parse_args([])
    vars(opt).update(vars(train_opt))
    opt.val_data_dir = train_opt.val_data_dir or train_opt.data_dir
    return check_view_options(opt)
