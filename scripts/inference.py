#!/usr/bin/env python
"""Name the actions in video files or frame folders with a trained recognizer.

Each input is seen through the same views as scripts/test_recognizer.py (segment
centres x 1/3/10 crops, softmax averaged over all views) and the top-k classes are
printed with their probabilities (--json: one JSON document on stdout). An input that
cannot be read gets a message on stderr and the others are still processed; the exit
status is 1 when any input failed.

Example:
    python scripts/inference.py --model vgg16_ucf101 --num-classes 101 \\
        --resume-params params/ucf101-vgg16_ucf101-079.params --input-size 224 \\
        --new-height 256 --new-width 340 v_Archery_g01_c01.avi rawframes/Biking/v_Biking_g01_c01
"""
import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from recognizer import data, evaluation, options  # noqa: E402
from recognizer.errors import UserError, run_cli  # noqa: E402
from recognizer.runtime import contexts  # noqa: E402

EXIT_SOME_FAILED = 1


def build_parser():
    p = argparse.ArgumentParser(description='Classify videos or frame folders with a trained recognizer.')
    p.add_argument('inputs', nargs='+', help='video files (read with decord) or folders of img_00001.jpg... frames.')
    options.add_view_args(p, num_segments=25)
    options.add_network_args(p, model_required=False)
    options.add_test_args(p)
    p.add_argument('--topk', type=int, default=5, help='classes to print per input.')
    p.add_argument('--json', action='store_true', help='print one JSON document instead of text.')
    return p


def check_args(opt):
    evaluation.check_view_options(opt)
    if opt.topk < 1:
        raise UserError('--topk must be at least 1, got %d' % opt.topk)
    opt.topk = min(opt.topk, opt.num_classes)
    return opt


def as_clip(path):
    """(Clip, is_video) for an input path; data.BadSample when there is nothing to read."""
    if os.path.isdir(path):
        count = len(glob.glob(os.path.join(glob.escape(path), 'img_*.jpg')))
        if count == 0:
            raise data.BadSample(path, 'is a folder without img_00001.jpg-style frames')
        return data.Clip(path, count, -1, 0), False
    if not os.path.exists(path):
        raise data.BadSample(path, 'does not exist')
    return data.Clip(path, 0, -1, 0), True


def classify(path, predictor, opt):
    """Averaged class probabilities of one input; BadSample/UserError when it cannot be read or cropped."""
    clip, video = as_clip(path)
    opt.video_loader = video
    views = evaluation.ViewDataset([clip], opt).load(0, None)
    return predictor.clip_scores(views)


def ranked(scores, names, k):
    top = evaluation.topk_classes(scores[None], k)[0]
    return [{'class': names[c], 'index': int(c), 'probability': float(scores[c])} for c in top]


def print_text(path, top):
    print(path)
    for rank, entry in enumerate(top, 1):
        print('  %d. %-24s %.4f' % (rank, entry['class'], entry['probability']))


def main(argv=None):
    opt = check_args(build_parser().parse_args(argv))
    names = evaluation.class_names(opt.num_classes, opt.class_index)
    ctx = contexts(opt.num_gpus)
    predictor = evaluation.Predictor(evaluation.load_network(opt, ctx), ctx, opt)
    results = []
    for path in opt.inputs:
        try:
            scores = classify(path, predictor, opt)
        except (data.BadSample, UserError) as err:
            print('error: %s; skipped' % err, file=sys.stderr)
            results.append({'input': path, 'ok': False, 'error': str(err)})
            continue
        results.append({'input': path, 'ok': True, 'top': ranked(np.asarray(scores), names, opt.topk)})
        if not opt.json:
            print_text(path, results[-1]['top'])
    failed = sum(1 for r in results if not r['ok'])
    if opt.json:
        json.dump({'model': opt.model, 'params': opt.resume_params, 'num_segments': opt.num_segments,
                   'num_crop': opt.num_crop, 'results': results}, sys.stdout, indent=1)
        print()
    if failed:
        print('%d of %d inputs could not be classified' % (failed, len(results)), file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
