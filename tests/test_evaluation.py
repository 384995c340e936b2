"""The TSN test protocol: views, score averaging, metrics, reports, checkpoints, and the test CLI end to end."""
import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognizer import evaluation
from recognizer.errors import UserError
from recognizer.synthetic import make_synthetic_ucf101
from conftest import fit_quickly

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def coordinate_frames(h, w, count=2):
    """Frames whose pixel (y, x) holds (y, x, frame index): a crop tells where it came from."""
    ys, xs = np.mgrid[0:h, 0:w]
    return [np.dstack([ys, xs, np.full((h, w), k)]).astype(np.uint8) for k in range(count)]


def corner(view):
    """(y, x) of the source pixel at a view's top-left corner."""
    return int(view[0, 0, 0]), int(view[0, 0, 1])


# ---------------------------------------------------------------- views

def test_one_crop_is_the_centre_of_every_frame():
    views = evaluation.crop_views(coordinate_frames(40, 53, 3), 32, 1)
    assert views.shape == (3, 32, 32, 3) and views.dtype == np.uint8
    assert [corner(v) for v in views] == [(4, 10)] * 3        # round(8 / 2), round(21 / 2)
    assert list(views[:, 0, 0, 2]) == [0, 1, 2]


def test_ten_crop_order_and_geometry_as_gluoncv():
    frames = coordinate_frames(40, 53, 2)
    views = evaluation.crop_views(frames, 32, 10)
    assert views.shape == (20, 32, 32, 3)
    # centre, top-left, bottom-left, top-right, bottom-right; each over both frames
    expected = [(4, 10), (0, 0), (8, 0), (0, 21), (8, 21)]
    assert [corner(v) for v in views[:10:2]] == expected
    assert [int(v[0, 0, 2]) for v in views[:10]] == [0, 1] * 5
    for plain, mirrored in zip(views[:10], views[10:]):
        np.testing.assert_array_equal(mirrored, plain[:, ::-1])
    assert int(views[10][0, 0, 1]) == 10 + 31                  # a mirrored crop starts at its right edge


def test_three_crop_along_the_long_side_when_one_side_fits():
    wide = evaluation.crop_views(coordinate_frames(32, 53, 1), 32, 3)
    assert [corner(v) for v in wide] == [(0, 0), (0, 20), (0, 10)]       # left, right, middle
    tall = evaluation.crop_views(coordinate_frames(53, 32, 1), 32, 3)
    assert [corner(v) for v in tall] == [(0, 0), (20, 0), (10, 0)]       # top, bottom, middle


def test_three_crop_resizes_the_short_side_to_the_input_size_first():
    frames = [np.tile(np.linspace(0, 250, 106).astype(np.uint8)[None, :, None], (80, 1, 3))]
    views = evaluation.crop_views(frames, 32, 3)                # 80x106 -> 32x42, crops at x = 0, 10, 5
    assert views.shape == (3, 32, 32, 3)
    resized = cv2.resize(frames[0], (42, 32))
    for view, x in zip(views, (0, 10, 5)):
        np.testing.assert_array_equal(view, resized[:, x:x + 32])
    assert views[0, 0, 0, 0] < 10 and views[1, 0, -1, 0] > 240   # together they span the whole width


@pytest.mark.parametrize('num_crop', [1, 10])
def test_frames_smaller_than_the_input_size_are_a_user_error(num_crop):
    with pytest.raises(UserError, match='smaller than --input-size 64'):
        evaluation.crop_views(coordinate_frames(40, 53), 64, num_crop)


@pytest.mark.parametrize('num_crop', [1, 3, 10])
def test_view_dataset_gives_segments_times_crops_views(tiny_set, num_crop):
    from types import SimpleNamespace
    from recognizer import data
    opt = SimpleNamespace(input_size=32, num_crop=num_crop, num_segments=25, new_length=1, new_step=1,
                          new_width=53, new_height=40, video_loader=False, slowfast=False, fast_temporal_stride=2,
                          slow_temporal_stride=16)
    clips = data.read_clip_list(tiny_set['val_list_rawframes'], tiny_set['rawframes_dir'], 3)
    views, label, index, error = evaluation.ViewDataset(clips, opt)[1]
    assert error is None and index == 1 and label == clips[1].label
    assert views.shape == (25 * num_crop, 1, 32, 32, 3)


# ---------------------------------------------------------------- averaging

def test_softmax_scores_are_averaged_over_views():
    logits = np.array([[10.0, 0.0], [0.0, 1.0]])
    e = np.exp(1.0)
    expected = (np.array([1.0, np.exp(-10.0)]) / (1 + np.exp(-10.0)) + np.array([1, e]) / (1 + e)) / 2
    np.testing.assert_allclose(evaluation.average_view_scores(logits), expected)
    np.testing.assert_allclose(evaluation.average_view_scores(logits, 'logits'),
                               np.exp([5.0, 0.5]) / np.exp([5.0, 0.5]).sum())
    # the two protocols can rank classes differently
    assert np.argmax(evaluation.average_view_scores([[6.0, 0.0], [0.0, 2.0], [0.0, 2.0]])) == 1
    assert np.argmax(evaluation.average_view_scores([[6.0, 0.0], [0.0, 2.0], [0.0, 2.0]], 'logits')) == 0


class FakeNet(object):
    """Logit per class = the mean of one input channel; records batch sizes."""

    def __init__(self):
        self.batches = []

    def __call__(self, x):
        self.batches.append(x.shape[0])
        return x.mean(axis=(2, 3))


def test_predictor_runs_views_in_bounded_chunks_and_averages_them():
    import mxnet as mx
    from types import SimpleNamespace
    opt = SimpleNamespace(views_per_pass=7, new_length=1, input_5d=False, dtype='float32', score_average='softmax',
                          slowfast=False, fast_temporal_stride=2, slow_temporal_stride=16)
    rng = np.random.default_rng(0)
    views = rng.integers(0, 255, size=(25, 1, 8, 8, 3), dtype=np.uint8)
    net = FakeNet()
    predictor = evaluation.Predictor(net, [mx.cpu()], opt)
    logits = predictor.view_logits(views)
    assert net.batches == [7, 7, 7, 4] and logits.shape == (25, 3)
    mean, std = np.array(evaluation.transforms.MEAN_RGB), np.array(evaluation.transforms.STD_RGB)
    expected = ((views[:, 0].astype(np.float64) / 255 - mean) / std).mean(axis=(1, 2))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predictor.clip_scores(views), evaluation.softmax(expected).mean(axis=0), rtol=1e-4)


# ---------------------------------------------------------------- metrics

def test_mean_class_accuracy_of_a_hand_made_confusion():
    matrix = np.array([[3, 1, 0, 0],
                       [0, 2, 2, 0],
                       [1, 0, 0, 0],
                       [0, 0, 0, 0]])          # class 3 has no clips: left out of the mean
    np.testing.assert_allclose(evaluation.per_class_accuracy(matrix)[:3], [0.75, 0.5, 0.0])
    assert np.isnan(evaluation.per_class_accuracy(matrix)[3])
    assert evaluation.mean_class_accuracy(matrix) == pytest.approx((0.75 + 0.5 + 0.0) / 3)
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2]
    predicted = [0, 0, 0, 1, 1, 1, 2, 2, 0]
    np.testing.assert_array_equal(evaluation.confusion_matrix(labels, predicted, 4), matrix)


def test_top1_top5_from_scores_with_ties_to_the_lower_class():
    scores = np.zeros((3, 7))
    scores[0, 2] = 1.0                         # right
    scores[1, [0, 1, 2, 3, 4]] = [.5, .4, .3, .2, .1]  # label 4 is 5th: a top-5 hit only
    scores[2, :] = 1.0 / 7                     # all tied: predicted 0, top-5 = 0..4, label 6 missed
    metrics = evaluation.accuracy_metrics([2, 4, 6], scores)
    assert metrics['top1'] == pytest.approx(1 / 3) and metrics['top5'] == pytest.approx(2 / 3)
    assert list(metrics['topk'][2]) == [0, 1, 2, 3, 4]
    assert metrics['correct'] == 1


# ---------------------------------------------------------------- class names

def test_class_names_from_class_index_zoo_or_numbers(tmp_path):
    index = tmp_path / 'classInd.txt'
    index.write_text('1 Walk\n2 Run\n\n3 Jump\n')
    assert evaluation.class_names(3, str(index)) == ['Walk', 'Run', 'Jump']
    with pytest.raises(UserError, match='--num-classes is 4'):
        evaluation.class_names(4, str(index))
    index.write_text('1 Walk\nRun\n')
    with pytest.raises(UserError, match='classInd.txt:2'):
        evaluation.class_names(2, str(index))
    zoo = evaluation.class_names(101)
    assert len(zoo) == 101 and zoo[0] == 'ApplyEyeMakeup' and zoo[-1] == 'YoYo'
    assert evaluation.class_names(3) == ['0', '1', '2']


def test_class_names_keep_their_spaces(tmp_path):
    """make_lists.py writes class folder names as they are, so a name is the rest of its line."""
    index = tmp_path / 'classInd.txt'
    index.write_text('1 Playing  Guitar\n2 Riding a bike\r\n', encoding='utf-8')
    assert evaluation.class_names(2, str(index)) == ['Playing  Guitar', 'Riding a bike']


# ---------------------------------------------------------------- reports

def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_reports_agree_with_each_other_for_101_classes(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(101), 2)
    scores = rng.random((202, 101))
    scores[np.arange(202), labels] = -1.0
    scores[np.arange(0, 202, 3), labels[::3]] = 2.0       # every third clip is right, the others wrong
    names = evaluation.class_names(101)
    clips = ['%s/clip%03d' % (names[c], i) for i, c in enumerate(labels)]
    summary = evaluation.write_reports(str(tmp_path), clips, labels, scores, names, {'model': 'm'})
    rows = read_csv(tmp_path / 'predictions.csv')
    assert len(rows) == 202 and rows[0]['clip'] == 'ApplyEyeMakeup/clip000'
    assert summary['top1'] == pytest.approx(np.mean([r['true'] == r['predicted'] for r in rows]))
    assert summary['top1'] == pytest.approx(68 / 202)
    assert all(r['top1_class'] == r['predicted'] for r in rows)
    assert float(rows[0]['top1_score']) >= float(rows[0]['top5_score'])
    per_class = read_csv(tmp_path / 'per_class.csv')
    assert [r['class'] for r in per_class] == names and all(r['clips'] == '2' for r in per_class)
    assert np.mean([float(r['top1']) for r in per_class]) == pytest.approx(summary['mean_class_accuracy'])
    with open(tmp_path / 'summary.json') as f:
        assert json.load(f)['top1'] == summary['top1']
    png = cv2.imread(str(tmp_path / 'confusion_matrix.png'))
    assert png.shape[0] >= 2000 and png.shape[1] >= 2000     # room for 101 names on each axis


# ---------------------------------------------------------------- a trained checkpoint, end to end

def train_checkpoint(base):
    """A VGG16-BN checkpoint trained at 32 px on a 4-class synthetic set of 56x40 frames (once per session)."""
    root = os.path.join(str(base), 'evaluation_checkpoint')
    params = os.path.join(root, 'vgg16_bn_4classes.params')
    if not os.path.exists(params):
        syn = make_synthetic_ucf101(os.path.join(root, 'syn'), num_classes=4, train_per_class=6, val_per_class=1,
                                    num_frames=16, width=56, height=40, seed=11)
        fit_quickly(syn, params)
    return root, params


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.getbasetemp())


def run_script(args, script='scripts/test_recognizer.py'):
    return subprocess.run([sys.executable, script] + [str(a) for a in args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def eval_args(root, params, save_dir, *extra):
    syn = os.path.join(root, 'syn')
    return ['--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm', '--resume-params', params,
            '--data-dir', os.path.join(syn, 'rawframes'), '--input-size', '32', '--save-dir', save_dir,
            '--new-height', '0', '--new-width', '0',   # the frames as they are, not GluonCV's default 340x256
            '--val-list', os.path.join(syn, 'ucfTrainTestlist', 'ucf101_val_split_1_rawframes.txt'),
            '--class-index', os.path.join(syn, 'ucfTrainTestlist', 'classInd.txt'), '-j', '1'] + list(extra)


def printed_top1(stdout):
    line = [x for x in stdout.splitlines() if x.startswith('Test accuracy:')][0]
    return float(line.split('acc-top1=')[1].split()[0]) / 100


@pytest.mark.slow
def test_ten_crop_25_segments_scores_well_above_chance(checkpoint, tmp_path):
    root, params = checkpoint
    done = run_script(eval_args(root, params, tmp_path / 'out', '--ten-crop', '--num-segments', '25'))
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / 'out' / 'predictions.csv')
    implied = np.mean([r['true'] == r['predicted'] for r in rows])
    assert len(rows) == 4 and printed_top1(done.stdout) == pytest.approx(implied, abs=1e-6)
    assert implied >= 0.75                                     # chance is 0.25
    assert {r['true'] for r in rows} == {'Class00', 'Class01', 'Class02', 'Class03'}
    with open(tmp_path / 'out' / 'summary.json') as f:
        summary = json.load(f)
    assert summary['views_per_clip'] == 250 and summary['clips'] == 4
    assert len(read_csv(tmp_path / 'out' / 'per_class.csv')) == 4
    assert cv2.imread(str(tmp_path / 'out' / 'confusion_matrix.png')) is not None


@pytest.mark.slow
def test_train_recognizer_eval_uses_the_training_flags(checkpoint, tmp_path):
    root, params = checkpoint
    syn = os.path.join(root, 'syn')
    args = ['--eval', '--resume-params', params, '--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm',
            '--num-segments', '5', '--num-crop', '3', '--input-size', '32', '-j', '0',
            '--data-dir', '/nonexistent', '--val-data-dir', os.path.join(syn, 'rawframes'),
            '--val-list', os.path.join(syn, 'ucfTrainTestlist', 'ucf101_val_split_1_rawframes.txt'),
            '--save-dir', tmp_path / 'eval']
    done = run_script(args, script='train_recognizer.py')
    assert done.returncode == 0, done.stderr
    with open(tmp_path / 'eval' / 'summary.json') as f:
        summary = json.load(f)
    assert (summary['num_segments'], summary['num_crop'], summary['views_per_clip']) == (5, 3, 15)
    assert printed_top1(done.stdout) == pytest.approx(summary['top1']) and summary['top1'] >= 0.5
    assert len(read_csv(tmp_path / 'eval' / 'predictions.csv')) == 4


@pytest.mark.slow
def test_a_checkpoint_for_other_classes_is_a_one_line_user_error(checkpoint, tmp_path):
    root, params = checkpoint
    args = eval_args(root, params, tmp_path / 'out', '--num-segments', '1', '--num-classes', '5')
    del args[args.index('--class-index'):args.index('--class-index') + 2]   # it names 4 classes
    done = run_script(args)
    assert done.returncode == 2, done.stderr
    assert 'its output layer has 4 classes: pass --num-classes 4' in done.stderr
    assert done.stderr.count('\n') == 1 and 'Traceback' not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize('change, message', [
    (dict(batch_norm=False), 'the checkpoint was trained with --batch-norm'),
    (dict(input_size=64), 'use the --input-size the checkpoint was trained with'),
    (dict(resume_params='missing.params'), 'does not exist'),
])
def test_a_checkpoint_that_does_not_fit_is_a_user_error(checkpoint, change, message):
    import mxnet as mx
    from types import SimpleNamespace
    opt = dict(model='vgg16_ucf101', num_classes=4, batch_norm=True, resume_params=checkpoint[1], input_size=32,
               use_pretrained=False, hashtag='', use_tsn=False, dtype='float32', new_length=1, input_5d=False,
               mode=None, slowfast=False, fast_temporal_stride=2, slow_temporal_stride=16)
    opt.update(change)
    with pytest.raises(UserError, match=message):
        evaluation.load_network(SimpleNamespace(**opt), [mx.cpu()])
