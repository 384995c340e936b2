"""The TSN test protocol shared by scripts/test_recognizer.py and scripts/inference.py.

A clip is seen through ``num_segments x num_crop`` views: the frames at the centres of
``num_segments`` equal segments (``data.test_offsets``), each cut into 1, 3 or 10 crops
as GluonCV's test transforms do. The network is run on the views in chunks (bounded
memory: 25 segments x 10 crops is 250 images) with ``num_segments=1, num_crop=1``, so
it scores every view on its own; the clip's class scores are the softmax of each view
averaged over all views (``--score-average softmax``, the protocol of the TSN paper).
``--score-average logits`` averages the logits instead and takes one softmax at the end,
which ranks classes as GluonCV's test script does (its network averages features over
all views before the linear classifier).

Also here: accuracy metrics, class names, the report files and checkpoint loading.
"""
import csv
import json
import os

import cv2
import numpy as np

from . import data, transforms
from .errors import UserError

CROPS = (1, 3, 10)
TOPK = 5


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
    """Clips of a list as (views uint8 (num_crop * num_segments, new_length, S, S, 3), label, index, error).

    An unreadable clip gives ``views=None`` and the reason, so the caller decides what to do.
    """

    def __init__(self, clips, opt):
        def view_transform(frames, rng):
            views = crop_views(frames, opt.input_size, opt.num_crop)
            return views.reshape((-1, opt.new_length) + views.shape[1:])

        super().__init__(clips, view_transform, train=False, num_segments=opt.num_segments,
                         new_length=opt.new_length, new_step=opt.new_step, new_width=opt.new_width,
                         new_height=opt.new_height, video=opt.video_loader, offsets='test')

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
                out = self.net(transforms.network_input(part, opt.new_length, opt.input_5d, opt.dtype))
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
            fields = line.split()
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
    """The checks both CLIs need: settle the crop count, refuse what cannot work, before loading anything."""
    if opt.ten_crop and opt.three_crop:
        raise UserError('--ten-crop and --three-crop exclude each other; pick one')
    opt.num_crop = 10 if opt.ten_crop else 3 if opt.three_crop else opt.num_crop
    if opt.num_crop not in CROPS:
        raise UserError('--num-crop %d: the test protocol has 1, 3 or 10 crops' % opt.num_crop)
    for flag, value in (('--num-segments', opt.num_segments), ('--input-size', opt.input_size),
                        ('--new-length', opt.new_length), ('--new-step', opt.new_step),
                        ('--views-per-pass', opt.views_per_pass)):
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))
    if not opt.resume_params and not opt.use_pretrained:
        raise UserError('nothing to evaluate: pass --resume-params <file>.params (from the training --save-dir) '
                        'or --use-pretrained for the model zoo\'s weights')
    if opt.num_gpus == 0 and opt.dtype != 'float32':
        raise UserError('--dtype %s needs a GPU; on a CPU use --dtype float32' % opt.dtype)
    sizes_known = opt.new_height > 0 and opt.new_width > 0
    if sizes_known and opt.num_crop != 3 and min(opt.new_height, opt.new_width) < opt.input_size:
        raise UserError('--input-size %d is larger than the resized frames %dx%d; lower --input-size or raise '
                        '--new-height/--new-width' % (opt.input_size, opt.new_width, opt.new_height))
    return opt


def _param_shapes(path):
    from mxnet import nd
    try:
        loaded = nd.load(path)
    except Exception as err:  # MXNetError for anything that is not an NDArray file
        raise UserError('%s is not a parameter file saved by train_recognizer.py (%s); pass a .params file, '
                        'not .states' % (path, str(err).splitlines()[0][:120])) from None
    if not isinstance(loaded, dict):
        raise UserError('%s holds unnamed arrays, not gluon parameters; pass a .params file saved by '
                        'train_recognizer.py' % path)
    return {name.split(':', 1)[-1]: arr.shape for name, arr in loaded.items()}


def _mismatch_hints(net_shapes, file_shapes, opt):
    hints = []
    file_bn = any(name.endswith('running_mean') for name in file_shapes)
    net_bn = any(name.endswith('running_mean') for name in net_shapes)
    if file_bn != net_bn and opt.model.startswith('vgg16'):
        hints.append('the checkpoint was trained %s --batch-norm' % ('with' if file_bn else 'without'))
    out = file_shapes.get('output.weight')
    if out is not None and out[0] != opt.num_classes:
        hints.append('its output layer has %d classes: pass --num-classes %d' % (out[0], out[0]))
    return hints


def check_params_fit(net, path, opt):
    """UserError naming what differs when the file's parameters cannot belong to ``net``."""
    if not os.path.isfile(path):
        raise UserError('--resume-params %s does not exist; pass a .params file from the training --save-dir' % path)
    file_shapes = _param_shapes(path)
    net_shapes = {name: p.shape for name, p in net._collect_params_with_prefix().items()}
    missing = sorted(set(net_shapes) - set(file_shapes))
    extra = sorted(set(file_shapes) - set(net_shapes))
    wrong = sorted(name for name in set(net_shapes) & set(file_shapes)
                   if len(net_shapes[name]) != len(file_shapes[name]) or
                   any(a and a != b for a, b in zip(net_shapes[name], file_shapes[name])))
    if not (missing or extra or wrong):
        return
    details = []
    for what, names in (('missing', missing), ('unexpected', extra)):
        if names:
            details.append('%d %s parameters (e.g. %s)' % (len(names), what, ', '.join(names[:3])))
    for name in wrong[:3]:
        details.append('%s is %s in the file but %s in the network' % (name, file_shapes[name], net_shapes[name]))
    hints = _mismatch_hints(net_shapes, file_shapes, opt)
    raise UserError('%s does not fit --model %s --num-classes %d%s: %s%s. Pass the flags the checkpoint was '
                    'trained with' % (path, opt.model, opt.num_classes, ' --batch-norm' if opt.batch_norm else '',
                                      '; '.join(details), ''.join('; ' + h for h in hints)))


def probe(net, opt, ctx):
    """One forward pass on a blank view: an input size the checkpoint cannot take fails here, clearly."""
    from mxnet import base, nd
    views = nd.zeros((1, opt.new_length, opt.input_size, opt.input_size, 3), dtype='uint8', ctx=ctx[0])
    try:
        net(transforms.network_input(views, opt.new_length, opt.input_5d, opt.dtype)).wait_to_read()
    except base.MXNetError as err:
        size = opt.input_size
        raise UserError('the network cannot run on %dx%d views with these parameters (%s); use the --input-size '
                        'the checkpoint was trained with' % (size, size, str(err).splitlines()[0][:160])) from None


def load_network(opt, ctx):
    """build_network + the checkpoint in --resume-params (or the model zoo's weights with --use-pretrained)."""
    from mxnet import base
    from .models import build_network
    # One view per forward pass; a checkpoint brings every weight, so no base weights are fetched.
    net = build_network(opt.model, opt.num_classes, ctx, use_pretrained=opt.use_pretrained and not opt.resume_params,
                        hashtag=opt.hashtag, pretrained_base=False, batch_norm=opt.batch_norm, use_tsn=opt.use_tsn,
                        dtype=opt.dtype)
    if opt.resume_params:
        path = os.path.expanduser(opt.resume_params)
        check_params_fit(net, path, opt)
        try:
            net.load_parameters(path, ctx=ctx)
        except (base.MXNetError, AssertionError, ValueError) as err:
            raise UserError('%s does not fit --model %s --num-classes %d (%s)'
                            % (path, opt.model, opt.num_classes, str(err).splitlines()[0][:200])) from None
    probe(net, opt, ctx)
    if opt.mode == 'hybrid':
        # No static_shape: the last chunk of a clip is usually smaller than the others.
        net.hybridize(static_alloc=True)
    return net


def contexts(num_gpus):
    import mxnet as mx
    if num_gpus > 0:
        if mx.context.num_gpus() < num_gpus:
            raise UserError('--num-gpus %d, but this MXNet sees %d GPUs; use --num-gpus 0 for the CPU'
                            % (num_gpus, mx.context.num_gpus()))
        return [mx.gpu(i) for i in range(num_gpus)]
    return [mx.cpu()]


# ---------------------------------------------------------------- flags shared by test_recognizer.py and inference.py

def add_view_args(p):
    """How each clip is cut into views: segments x crops, frame size, clip length."""
    p.add_argument('--num-segments', type=int, default=25,
                   help='segment centres sampled per clip (the TSN test protocol uses 25).')
    p.add_argument('--new-height', type=int, default=0, help='resize frames to this height first (0: keep).')
    p.add_argument('--new-width', type=int, default=0, help='resize frames to this width first (0: keep).')
    p.add_argument('--new-length', type=int, default=1, help='consecutive frames per segment.')
    p.add_argument('--new-step', type=int, default=1, help='step between those frames.')
    p.add_argument('--input-size', type=int, default=224, help='crop side fed to the network.')
    p.add_argument('--ten-crop', action='store_true', help='10 crops: centre + 4 corners, and their mirrors.')
    p.add_argument('--three-crop', action='store_true', help='3 crops along the long side of the frame.')
    p.add_argument('--num-crop', type=int, default=1, choices=CROPS,
                   help='crops per segment; --ten-crop/--three-crop set it to 10/3.')
    p.add_argument('--input-5d', action='store_true', help='5-D input (N, C, T, H, W) for 3-D CNNs.')
    p.add_argument('--class-index', type=str, default=None,
                   help='classInd.txt ("<1-based index> <name>") for class names; default: the model zoo\'s '
                        'UCF101 names when there are 101 classes, else the class numbers.')


def add_checkpoint_args(p, model_required):
    """Which network and weights, and how to run it."""
    p.add_argument('--model', type=str, required=model_required, default=None if model_required else 'vgg16_ucf101',
                   help='model-zoo name the checkpoint was trained as, e.g. vgg16_ucf101.')
    p.add_argument('--num-classes', type=int, default=101, help='number of classes of the checkpoint.')
    p.add_argument('--resume-params', type=str, default='', help='.params file saved by train_recognizer.py.')
    p.add_argument('--use-pretrained', action='store_true',
                   help='without --resume-params: the model zoo\'s weights (from the MXNet model cache).')
    p.add_argument('--hashtag', type=str, default='', help='hashtag of the pretrained weights.')
    p.add_argument('--batch-norm', action='store_true',
                   help='the checkpoint is a VGG16-BN (trained with --batch-norm).')
    p.add_argument('--use-tsn', action='store_true', help='accepted for compatibility (no effect on the weights).')
    p.add_argument('--mode', type=str, default=None, help='hybrid: hybridize the network.')
    p.add_argument('--dtype', type=str, default='float32', help='inference data type (float16 needs a GPU).')
    p.add_argument('--score-average', type=str, default='softmax', choices=['softmax', 'logits'],
                   help='average per-view softmax scores (TSN protocol) or logits (ranks as GluonCV\'s script).')
    p.add_argument('--num-gpus', type=int, default=0, help='GPUs to use; 0 runs on the CPU.')
    p.add_argument('--views-per-pass', type=int, default=50,
                   help='most views (images) per forward pass per device; bounds memory.')
