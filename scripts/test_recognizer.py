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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import evaluation, options, quantize  # noqa: E402
from recognizer.errors import run_cli  # noqa: E402
from recognizer.runtime import setup_logging  # noqa: E402


# What GluonCV's test script parses but (as there) does not use: its training flags.
TAKES_EFFECT = {'dataset', 'data_dir', 'val_data_dir', 'val_list', 'num_workers', 'prefetch_ratio', 'video_loader',
                'use_decord', 'skip_bad_samples', 'num_segments', 'new_height', 'new_width', 'new_length',
                'new_step', 'input_size', 'num_crop', 'input_5d', 'model', 'num_classes', 'use_pretrained',
                'hashtag', 'use_tsn', 'batch_norm', 'mode', 'dtype', 'num_gpus', 'resume_params', 'ten_crop',
                'three_crop', 'class_index', 'score_average', 'use_softmax', 'views_per_pass', 'batch_size',
                'save_dir', 'log_interval', 'name_pattern', 'slowfast'}


def build_parser():
    """Every flag of GluonCV's test_recognizer.py, with its defaults, and the test protocol's own."""
    parser = argparse.ArgumentParser(description='Test a trained model for action recognition (TSN protocol).')
    options.add_list_args(parser)
    options.add_view_args(parser, num_segments=1, new_height=256, new_width=340)
    options.add_network_args(parser)
    options.add_test_args(parser)
    parser.add_argument('--batch-size', type=int, default=32,
                        help='clips per calibration batch (--calibration) and per --benchmark pass; the evaluation '
                             'itself scores clips one by one (see --views-per-pass).')
    options.add_augmentation_args(parser)
    options.add_training_model_args(parser)
    options.add_regularisation_args(parser)
    options.add_optim_args(parser, batch_size=False)
    options.add_run_args(parser)
    options.mark_without_effect(parser, TAKES_EFFECT, 'training flag, accepted as GluonCV\'s test script does')
    quantize.add_int8_args(parser)
    return parser


def main(argv=None):
    opt = build_parser().parse_args(argv)
    quantize.check_int8_args(opt)   # first: --deploy names the .params the view checks look for
    opt = evaluation.check_view_options(opt)
    opt.val_data_dir = opt.val_data_dir or opt.data_dir
    setup_logging(evaluation.logger)
    if quantize.replaces_evaluation(opt):   # --calibration, --benchmark
        return quantize.run(opt)
    evaluation.evaluate(opt, load_network=quantize.load_network)   # FP32, --deploy or --quantized
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
