#!/usr/bin/env python
"""Evaluate a trained recognizer with the dense TSN test protocol.

Every clip of --val-list is seen through --num-segments segment centres x 1, 3
(--three-crop) or 10 (--ten-crop) crops; the softmax of every view is averaged into
the clip's scores (see recognizer/evaluation.py). Prints top-1, top-5 and mean class
accuracy and writes summary.json, per_class.csv, predictions.csv and
confusion_matrix.png into --save-dir. Flag names follow GluonCV's
scripts/action-recognition/test_recognizer.py. Also reachable as
``train_recognizer.py --eval --resume-params P``.

Example:
    python scripts/test_recognizer.py --model vgg16_ucf101 --num-classes 101 \\
        --resume-params params/ucf101-vgg16_ucf101-079.params --num-segments 25 --ten-crop \\
        --new-height 256 --new-width 340 --input-size 224 --save-dir test_results
"""
import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from recognizer import data, evaluation  # noqa: E402
from recognizer import quantize  # noqa: E402  (INT8, --deploy, --benchmark: issue 14)
from recognizer.errors import UserError, run_cli  # noqa: E402

logger = logging.getLogger('test_recognizer')


def add_data_args(p):
    p.add_argument('--dataset', type=str, default='ucf101', help='accepted for compatibility (all use list files).')
    p.add_argument('--data-dir', type=str, default='~/.mxnet/datasets/ucf101/rawframes',
                   help='root of the clip folders (or videos) named in --val-list.')
    p.add_argument('--val-data-dir', type=str, default=None, help='root for --val-list; default: --data-dir.')
    p.add_argument('--val-list', type=str,
                   default='~/.mxnet/datasets/ucf101/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt',
                   help='clips to evaluate: "<clip> <num_frames> <0-based label>" per line.')
    p.add_argument('-j', '--num-data-workers', dest='num_workers', default=2, type=int,
                   help='clip-loading worker processes (0: load in the main process).')
    p.add_argument('--prefetch-ratio', type=float, default=2.0, help='clips prefetched per worker.')
    p.add_argument('--video-loader', action='store_true', help='the list names videos (read with decord).')
    p.add_argument('--use-decord', action='store_true', help='accepted: videos are always read with decord.')
    p.add_argument('--skip-bad-samples', action='store_true',
                   help='leave out clips that cannot be decoded (listed in summary.json) instead of stopping.')


def add_run_args(p):
    p.add_argument('--batch-size', type=int, default=1,
                   help='accepted for compatibility: clips are evaluated one by one, see --views-per-pass.')
    p.add_argument('--save-dir', type=str, default='test_results', help='folder for the reports.')
    p.add_argument('--log-interval', type=int, default=50, help='clips between progress lines.')


def build_parser():
    parser = argparse.ArgumentParser(description='Test a trained model for action recognition (TSN protocol).')
    add_data_args(parser)
    evaluation.add_view_args(parser)
    evaluation.add_checkpoint_args(parser, model_required=True)
    add_run_args(parser)
    quantize.add_int8_args(parser)
    return parser


def check_args(opt):
    """Settle the crop count and refuse what cannot work, before loading anything."""
    quantize.check_int8_args(opt)
    evaluation.check_view_options(opt)
    opt.val_data_dir = opt.val_data_dir or opt.data_dir
    return opt


def make_loader(dataset, opt):
    from mxnet import gluon
    prefetch = max(1, int(opt.prefetch_ratio * opt.num_workers)) if opt.num_workers > 0 else None
    return gluon.data.DataLoader(dataset, batch_size=1, shuffle=False, batchify_fn=evaluation.first_sample,
                                 num_workers=opt.num_workers, prefetch=prefetch)


def score_clips(predictor, dataset, opt):
    """(indices of scored clips, their (N, C) scores, [(clip, reason)] of unreadable ones)."""
    loader = make_loader(dataset, opt)
    done, scores, bad = [], [], []
    correct, tic = 0, time.time()
    for views, label, index, error in loader:
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


def evaluate(opt):
    """Run the protocol on --val-list and write the reports; returns the summary dict."""
    clips = data.read_clip_list(opt.val_list, opt.val_data_dir, opt.num_classes, opt.video_loader)
    names = evaluation.class_names(opt.num_classes, opt.class_index)
    try:
        os.makedirs(opt.save_dir, exist_ok=True)
    except OSError as err:
        raise UserError('--save-dir %s cannot be created (%s); choose another folder' % (opt.save_dir, err)) from None
    ctx = evaluation.contexts(opt.num_gpus)
    net = quantize.load_network(opt, ctx)   # FP32 as evaluation.load_network, or --deploy/--quantized
    logger.info('%d clips x %d segments x %d crops = %d views per clip; %s', len(clips), opt.num_segments,
                opt.num_crop, opt.num_segments * opt.num_crop, opt.resume_params or 'model zoo weights')
    tic = time.time()
    done, scores, bad = score_clips(evaluation.Predictor(net, ctx, opt), evaluation.ViewDataset(clips, opt), opt)
    seconds = time.time() - tic
    labels = np.array([clips[i].label for i in done])
    info = {'model': opt.model, 'params': opt.resume_params, 'val_list': opt.val_list,
            'num_segments': opt.num_segments, 'num_crop': opt.num_crop, 'input_size': opt.input_size,
            'views_per_clip': opt.num_segments * opt.num_crop, 'score_average': opt.score_average,
            'seconds': seconds, 'skipped': [{'clip': clip_id(c, opt.val_data_dir), 'reason': r} for c, r in bad]}
    summary = evaluation.write_reports(opt.save_dir, [clip_id(clips[i], opt.val_data_dir) for i in done],
                                       labels, scores, names, info)
    print('Test accuracy: acc-top1=%f acc-top5=%f mean-class-acc=%f (%d/%d clips correct, %d segments x %d crops)'
          % (100 * summary['top1'], 100 * summary['top5'], 100 * summary['mean_class_accuracy'],
             summary['correct'], summary['clips'], opt.num_segments, opt.num_crop))
    print('Total evaluation time is %4.2f minutes; reports in %s' % (seconds / 60, opt.save_dir))
    return summary


def evaluate_from_training_flags(train_opt):
    """``train_recognizer.py --eval``: evaluate --resume-params with the training command's flags.

    The training flags map one to one (--num-segments, --num-crop, --input-size, --new-*,
    --val-list, --val-data-dir, --save-dir, ...); what training has no flag for keeps
    this script's default.
    """
    opt = build_parser().parse_args(['--model', train_opt.model])
    for key in vars(opt):
        if hasattr(train_opt, key):
            setattr(opt, key, getattr(train_opt, key))
    opt.data_dir = train_opt.val_data_dir or train_opt.data_dir
    opt.val_data_dir = opt.data_dir
    setup_logging()
    evaluate(check_args(opt))
    return 0


def setup_logging():
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(message)s'))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv=None):
    opt = check_args(build_parser().parse_args(argv))
    setup_logging()
    if quantize.replaces_evaluation(opt):   # --calibration, --benchmark
        return quantize.run(opt)
    evaluate(opt)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
