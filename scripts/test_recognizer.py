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

from recognizer import evaluation, options  # noqa: E402
from recognizer.errors import run_cli  # noqa: E402
from recognizer.runtime import setup_logging  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description='Test a trained model for action recognition (TSN protocol).')
    options.add_list_args(parser, workers=2, train_list=False)
    options.add_view_args(parser, num_segments=25)
    options.add_network_args(parser)
    options.add_test_args(parser)
    parser.add_argument('--batch-size', type=int, default=1,
                        help='accepted for compatibility: clips are evaluated one by one, see --views-per-pass.')
    parser.add_argument('--save-dir', type=str, default='test_results', help='folder for the reports.')
    parser.add_argument('--log-interval', type=int, default=50, help='clips between progress lines.')
    return parser


def main(argv=None):
    opt = evaluation.check_view_options(build_parser().parse_args(argv))
    opt.val_data_dir = opt.val_data_dir or opt.data_dir
    setup_logging(evaluation.logger)
    evaluation.evaluate(opt)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
