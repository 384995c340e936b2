#!/usr/bin/env python
"""Name the actions in video files or frame folders with a trained recognizer, per input or over time.

Each input is seen through the same views as scripts/test_recognizer.py (segment
centres x 1/3/10 crops, softmax averaged over all views) and the top-k classes are
printed with their probabilities (--json: one JSON document on stdout). Inputs come from
the command line and/or GluonCV's --data-list (--need-root, --data-dir); --save-logits and
--save-preds write <name>_logits.npy (the clip's logits, averaged over its views: GluonCV's
values) and <name>_preds.npy (the top-1 class index) into --save-dir.

With --window W --stride S (frames) every input is scored on sliding windows, each frame
decoded once (recognizer/windows.py): CSV rows (input, start, end, rank, class, probability)
or, with --json, one document whose "windows" list holds {"input", "start", "end", "topk":
[[class, probability], ...]}. Frame indices are 0-based, windows cover [start, end).

An input that cannot be read gets a message on stderr and the others are still processed;
the exit status is 1 when any input failed.

Example:
    python scripts/inference.py --model vgg16_ucf101 --num-classes 101 \\
        --resume-params params/ucf101-vgg16_ucf101-079.params --input-size 224 \\
        --new-height 256 --new-width 340 v_Archery_g01_c01.avi rawframes/Biking/v_Biking_g01_c01
    python scripts/inference.py ... --window 64 --stride 32 --num-segments 8 --json long_video.mp4
"""
import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from recognizer import data, evaluation, inputs, options, windows  # noqa: E402
from recognizer.errors import UserError, run_cli  # noqa: E402
from recognizer.runtime import contexts  # noqa: E402

EXIT_SOME_FAILED = 1


def build_parser():
    p = argparse.ArgumentParser(description='Classify videos or frame folders with a trained recognizer.')
    p.add_argument('inputs', nargs='*', help='video files (read with decord) or folders of img_00001.jpg... frames.')
    inputs.add_data_list_args(p)
    options.add_view_args(p, num_segments=25)
    options.add_network_args(p, model_required=False)
    options.add_test_args(p)
    p.add_argument('--topk', type=int, default=5, help='classes to print per input (or window).')
    p.add_argument('--json', action='store_true', help='print one JSON document instead of text (CSV for windows).')
    p.add_argument('--save-dir', type=str, default='./predictions', help='folder for --save-logits/--save-preds.')
    p.add_argument('--save-logits', action='store_true',
                   help='write <name>_logits.npy: (num_classes,) per input, (windows, num_classes) with --window.')
    p.add_argument('--save-preds', action='store_true',
                   help='write <name>_preds.npy: the top-1 class index, one per window with --window.')
    p.add_argument('--window', type=int, default=0, help='score sliding windows of this many frames (0: whole input).')
    p.add_argument('--stride', type=int, default=0, help='frames between window starts (default: --window).')
    return p


def check_args(opt):
    evaluation.check_view_options(opt)
    if opt.topk < 1:
        raise UserError('--topk must be at least 1, got %d' % opt.topk)
    opt.topk = min(opt.topk, opt.num_classes)
    if opt.window < 0 or opt.stride < 0:
        raise UserError('--window and --stride count frames and cannot be negative')
    if opt.window and opt.slowfast:
        raise UserError('--window does not sample --slowfast views yet; score whole inputs (no --window)')
    if opt.stride and not opt.window:
        raise UserError('--stride needs --window W (the window length in frames)')
    opt.stride = opt.stride or opt.window
    opt.inputs = inputs.collect_inputs(opt)
    opt.names = inputs.unique_names(opt.inputs) if (opt.save_logits or opt.save_preds) else {}
    if opt.names:
        try:
            os.makedirs(opt.save_dir, exist_ok=True)
        except OSError as err:
            raise UserError('--save-dir %s cannot be created (%s); choose another folder'
                            % (opt.save_dir, err)) from None
    return opt


def save_outputs(path, logits, preds, opt):
    """--save-logits / --save-preds files of one input."""
    name = opt.names.get(path)
    if opt.save_logits:
        np.save(os.path.join(opt.save_dir, '%s_logits.npy' % name), np.asarray(logits, dtype=np.float32))
    if opt.save_preds:
        np.save(os.path.join(opt.save_dir, '%s_preds.npy' % name), np.asarray(preds, dtype=np.int64))


# ---------------------------------------------------------------- one prediction per input

def classify(path, predictor, opt):
    """(class probabilities, mean logits) of one input; BadSample/UserError when it cannot be read or cropped."""
    logits = predictor.view_logits(inputs.load_views(path, opt))
    return evaluation.average_view_scores(logits, opt.score_average), logits.mean(axis=0)


def ranked(scores, names, k):
    top = evaluation.topk_classes(scores[None], k)[0]
    return [{'class': names[c], 'index': int(c), 'probability': float(scores[c])} for c in top]


def print_text(path, top):
    print(path)
    for rank, entry in enumerate(top, 1):
        print('  %d. %-24s %.4f' % (rank, entry['class'], entry['probability']))


def run_per_input(predictor, names, opt):
    results = []
    for path in opt.inputs:
        try:
            scores, logits = classify(path, predictor, opt)
        except (data.BadSample, UserError) as err:
            print('error: %s; skipped' % err, file=sys.stderr)
            results.append({'input': path, 'ok': False, 'error': str(err)})
            continue
        save_outputs(path, logits, int(np.argmax(scores)), opt)
        results.append({'input': path, 'ok': True, 'top': ranked(np.asarray(scores), names, opt.topk)})
        if not opt.json:
            print_text(path, results[-1]['top'])
    if opt.json:
        json.dump({'model': opt.model, 'params': opt.resume_params, 'num_segments': opt.num_segments,
                   'num_crop': opt.num_crop, 'results': results}, sys.stdout, indent=1)
        print()
    return results


# ---------------------------------------------------------------- sliding windows

def input_windows(path, predictor, names, opt):
    """[{"input", "start", "end", "topk"}] of one input; BadSample/UserError when it cannot be read."""
    clip, video = inputs.as_clip(path)
    source = windows.FrameSource(path, video, opt.new_width, opt.new_height, clip.num_frames)
    found, all_logits, preds = [], [], []
    for start, end, logits in windows.score_windows(source, predictor, opt):
        scores = evaluation.average_view_scores(logits, opt.score_average)
        found.append({'input': path, 'start': start, 'end': end, 'topk': windows.topk_pairs(scores, names, opt.topk)})
        all_logits.append(logits.mean(axis=0))
        preds.append(int(np.argmax(scores)))
    save_outputs(path, np.stack(all_logits), preds, opt)
    return found, source.num_frames


def write_csv_rows(writer, rows):
    for row in rows:
        for rank, (name, prob) in enumerate(row['topk'], 1):
            writer.writerow([row['input'], row['start'], row['end'], rank, name, '%.6f' % prob])


def run_windows(predictor, names, opt):
    results, found = [], []
    writer = None if opt.json else csv.writer(sys.stdout, lineterminator='\n')
    if writer:
        writer.writerow(['input', 'start', 'end', 'rank', 'class', 'probability'])
    for path in opt.inputs:
        try:
            rows, num_frames = input_windows(path, predictor, names, opt)
        except (data.BadSample, UserError) as err:
            print('error: %s; skipped' % err, file=sys.stderr)
            results.append({'input': path, 'ok': False, 'error': str(err)})
            continue
        results.append({'input': path, 'ok': True, 'num_frames': num_frames, 'windows': len(rows)})
        found += rows
        if writer:
            write_csv_rows(writer, rows)
    if opt.json:
        json.dump({'model': opt.model, 'params': opt.resume_params, 'window': opt.window, 'stride': opt.stride,
                   'num_segments': opt.num_segments, 'num_crop': opt.num_crop, 'inputs': results,
                   'windows': found}, sys.stdout, indent=1)
        print()
    return results


def main(argv=None):
    opt = check_args(build_parser().parse_args(argv))
    names = evaluation.class_names(opt.num_classes, opt.class_index)
    ctx = contexts(opt.num_gpus)
    predictor = evaluation.Predictor(evaluation.load_network(opt, ctx), ctx, opt)
    results = (run_windows if opt.window else run_per_input)(predictor, names, opt)
    failed = sum(1 for r in results if not r['ok'])
    if failed:
        print('%d of %d inputs could not be classified' % (failed, len(results)), file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
