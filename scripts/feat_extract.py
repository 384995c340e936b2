#!/usr/bin/env python
"""Extract the pooled features before the classifier: one <name>_feat.npy per video or frame folder.

Each input (a --data-list line, or a path on the command line) is seen through the test
protocol's views (--num-segments segment centres x 1/3/10 crops, recognizer/evaluation.py);
the classifier's input is averaged over all views into one float32 vector of the network's
feature size (4096 for vgg16_*, 2048 for inceptionv3_* and I3D ResNet-50), saved as
--save-dir/<name>_feat.npy with <name> the video file name without its extension (or the frame
folder name). Inputs whose file already exists are skipped, so a stopped run continues where it
was; files are written under a temporary name and renamed, never half-written. Flag names
follow GluonCV's scripts/action-recognition/feat_extract.py.

Example:
    python scripts/feat_extract.py --model vgg16_ucf101 --num-classes 101 \\
        --resume-params params/ucf101-vgg16_ucf101-079.params --data-list videos.txt --need-root \\
        --data-dir ~/videos --new-height 256 --new-width 340 --input-size 224 --save-dir features
"""
import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from recognizer import data, evaluation, features, inputs, options  # noqa: E402
from recognizer.runtime import contexts  # noqa: E402
from recognizer.errors import UserError, run_cli  # noqa: E402

EXIT_SOME_FAILED = 1
logger = logging.getLogger('feat_extract')


def build_parser():
    p = argparse.ArgumentParser(description='Extract pooled features (before the classifier) per video.')
    p.add_argument('inputs', nargs='*', help='video files or frame folders, besides those of --data-list.')
    inputs.add_data_list_args(p)
    options.add_view_args(p, num_segments=25)
    options.add_network_args(p)
    options.add_test_args(p)
    p.add_argument('--save-dir', type=str, default='./', help='folder for the <name>_feat.npy files.')
    p.add_argument('--log-interval', type=int, default=10, help='inputs between progress lines.')
    return p


def save_atomically(path, array):
    tmp = '%s.tmp%d.npy' % (path[:-4], os.getpid())
    np.save(tmp, array)
    os.replace(tmp, path)


def extract_all(paths, names, predictor, recorder, opt):
    """Write the missing feature files; returns (written, skipped, failed) counts."""
    written = skipped = failed = 0
    tic = time.time()
    for number, path in enumerate(paths, 1):
        target = os.path.join(opt.save_dir, '%s_feat.npy' % names[path])
        if os.path.exists(target):
            skipped += 1
        else:
            try:
                save_atomically(target, features.clip_feature(predictor, recorder, inputs.load_views(path, opt)))
                written += 1
            except (data.BadSample, UserError) as err:
                print('error: %s; skipped' % err, file=sys.stderr)
                failed += 1
        if opt.log_interval and number % opt.log_interval == 0:
            logger.info('%04d/%04d is done (%d written, %d already there, %.2f inputs/s)', number, len(paths),
                        written, skipped, number / max(time.time() - tic, 1e-9))
    return written, skipped, failed


def main(argv=None):
    opt = evaluation.check_view_options(build_parser().parse_args(argv))
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    paths = inputs.collect_inputs(opt)
    names = inputs.unique_names(paths)
    try:
        os.makedirs(opt.save_dir, exist_ok=True)
    except OSError as err:
        raise UserError('--save-dir %s cannot be created (%s); choose another folder' % (opt.save_dir, err)) from None
    opt.mode = None     # the feature hook runs only on an imperative network
    ctx = contexts(opt.num_gpus)
    net = evaluation.load_network(opt, ctx)
    recorder = features.FeatureRecorder(net)
    written, skipped, failed = extract_all(paths, names, evaluation.Predictor(net, ctx, opt), recorder, opt)
    print('%d feature files written, %d already there, %d inputs failed; in %s'
          % (written, skipped, failed, opt.save_dir))
    return EXIT_SOME_FAILED if failed else 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
