"""Tests for recognizer.synthetic and scripts/make_synthetic_ucf101.py."""
import glob
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognizer.synthetic import make_synthetic_ucf101

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'make_synthetic_ucf101.py')


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """The default dataset: 5 classes x (8 train + 4 val) clips of 24 frames, 80x64."""
    return make_synthetic_ucf101(str(tmp_path_factory.mktemp('synth')))


def read_rows(path):
    with open(path) as f:
        return [line.split() for line in f.read().splitlines()]


def all_files(root):
    return {os.path.relpath(p, root): open(p, 'rb').read()
            for p in sorted(glob.glob(os.path.join(root, '**', '*'), recursive=True)) if os.path.isfile(p)}


def test_same_seed_gives_identical_bytes_other_seed_differs(tmp_path):
    kw = dict(num_classes=2, train_per_class=2, val_per_class=1, num_frames=4)
    make_synthetic_ucf101(str(tmp_path / 'a'), seed=3, **kw)
    make_synthetic_ucf101(str(tmp_path / 'b'), seed=3, **kw)
    make_synthetic_ucf101(str(tmp_path / 'c'), seed=4, **kw)
    a, b, c = (all_files(str(tmp_path / d)) for d in 'abc')
    assert len(a) == 2 * 3 * 4 + 2 * 3 + 7 + 4  # jpgs, avis, official lists, GluonCV lists
    assert a == b
    jpgs = [k for k in a if k.endswith('.jpg')]
    assert all(a[k] != c[k] for k in jpgs)
    assert all(a[k] == c[k] for k in a if k.endswith('.txt'))


def test_returned_paths_and_layout(dataset):
    out = dataset['out_dir']
    assert dataset['rawframes_dir'] == os.path.join(out, 'rawframes')
    assert dataset['videos_dir'] == os.path.join(out, 'UCF-101')
    assert dataset['classes'] == ['Class00', 'Class01', 'Class02', 'Class03', 'Class04']
    assert sorted(os.listdir(dataset['anno_dir'])) == sorted(
        ['classInd.txt'] + ['%slist0%d.txt' % (s, k) for s in ('train', 'test') for k in (1, 2, 3)]
        + ['ucf101_%s_split_1_%s.txt' % (s, kind) for s in ('train', 'val') for kind in ('rawframes', 'videos')])
    for key in ('class_ind', 'trainlist01', 'testlist03', 'train_list_rawframes', 'val_list_videos'):
        assert os.path.isfile(dataset[key])
    clip = os.path.join(out, 'rawframes', 'Class03', 'v_Class03_g07_c01')
    assert sorted(os.listdir(clip)) == ['img_%05d.jpg' % i for i in range(1, 25)]
    assert cv2.imread(os.path.join(clip, 'img_00001.jpg')).shape == (64, 80, 3)
    assert os.path.isfile(os.path.join(out, 'UCF-101', 'Class03', 'v_Class03_g07_c01.avi'))


def test_official_lists_follow_ucf101_formats(dataset):
    class_ind = read_rows(dataset['class_ind'])
    assert class_ind == [[str(i + 1), 'Class%02d' % i] for i in range(5)]
    index = {name: int(i) for i, name in class_ind}
    for k in (1, 2, 3):
        train = read_rows(dataset['trainlist%02d' % k])
        test = read_rows(dataset['testlist%02d' % k])
        assert len(train) == 40 and len(test) == 20
        assert all(len(row) == 1 for row in test)
        assert all(int(label) == index[path.split('/')[0]] for path, label in train)
        assert train[0][0].startswith('Class00/v_Class00_g') and train[0][0].endswith('_c01.avi')
        names = {row[0] for row in train} | {row[0] for row in test}
        assert len(names) == 60
    tests = [{row[0] for row in read_rows(dataset['testlist%02d' % k])} for k in (1, 2, 3)]
    assert tests[0] != tests[1] != tests[2]


def test_gluoncv_lists_match_disk_and_class_ind(dataset):
    index = {name: int(i) - 1 for i, name in read_rows(dataset['class_ind'])}
    train = read_rows(dataset['train_list_rawframes'])
    val = read_rows(dataset['val_list_rawframes'])
    assert (len(train), len(val)) == (40, 20)
    assert {r[0] for r in train}.isdisjoint(r[0] for r in val)
    for path, frames, label in train + val:
        on_disk = os.listdir(os.path.join(dataset['rawframes_dir'], path))
        assert int(frames) == len(on_disk) == 24
        assert int(label) == index[path.split('/')[0]]
    assert sorted({int(r[2]) for r in val}) == [0, 1, 2, 3, 4]
    # Split 1's GluonCV lists are the official split 1, minus the extension.
    official = [r[0] for r in read_rows(dataset['testlist01'])]
    assert [r[0] + '.avi' for r in val] == official
    videos = read_rows(dataset['val_list_videos'])
    assert [(r[0][:-4], r[1], r[2]) for r in videos] == [tuple(r) for r in val]


def test_videos_decode_with_decord_and_cv2(dataset):
    import decord
    for path, frames, _ in read_rows(dataset['val_list_videos'])[::4]:
        full = os.path.join(dataset['videos_dir'], path)
        vr = decord.VideoReader(full)
        assert len(vr) == int(frames) == 24
        assert vr[10].asnumpy().shape == (64, 80, 3)
        cap = cv2.VideoCapture(full)
        n = 0
        while cap.read()[0]:
            n += 1
        assert n == 24
    # The video holds the same pictures as the JPEG folder (both lossy, so loosely).
    vr = decord.VideoReader(os.path.join(dataset['videos_dir'], 'Class02', 'v_Class02_g01_c01.avi'))
    jpg = cv2.imread(os.path.join(dataset['rawframes_dir'], 'Class02', 'v_Class02_g01_c01', 'img_00006.jpg'))
    assert np.abs(vr[5].asnumpy().astype(int) - jpg[:, :, ::-1]).mean() < 12


def load_frames(dataset, list_key, frame_ids):
    xs, ys = [], []
    for path, _, label in read_rows(dataset[list_key]):
        for i in frame_ids:
            img = cv2.imread(os.path.join(dataset['rawframes_dir'], path, 'img_%05d.jpg' % i))
            xs.append(img.astype(np.float32).ravel())
            ys.append(int(label))
    return np.array(xs), np.array(ys)


def test_single_frames_are_separable_by_nearest_class_mean(dataset):
    x_train, y_train = load_frames(dataset, 'train_list_rawframes', range(1, 25, 4))
    x_val, y_val = load_frames(dataset, 'val_list_rawframes', (1, 12, 24))
    means = np.stack([x_train[y_train == k].mean(0) for k in range(5)])
    dist = ((x_val[:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == y_val).mean()
    assert accuracy > 0.9, accuracy


def object_centre(img):
    """Centre of the saturated (object) pixels; the background is grey."""
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    mask = (hsv[:, :, 1] > 120) | (img.min(2) > 215)
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_objects_move_between_first_and_last_frame(dataset):
    moved = []
    for path, _, _ in read_rows(dataset['val_list_rawframes']):
        folder = os.path.join(dataset['rawframes_dir'], path)
        first = object_centre(cv2.imread(os.path.join(folder, 'img_00001.jpg')))
        last = object_centre(cv2.imread(os.path.join(folder, 'img_00024.jpg')))
        moved.append(np.linalg.norm(first - last))
    assert np.median(moved) > 8, moved


def test_skipping_a_layout(tmp_path):
    kw = dict(num_classes=2, train_per_class=1, val_per_class=1, num_frames=3)
    no_frames = make_synthetic_ucf101(str(tmp_path / 'v'), frames=False, **kw)
    assert no_frames['rawframes_dir'] is None and 'train_list_rawframes' not in no_frames
    assert sorted(os.listdir(tmp_path / 'v')) == ['UCF-101', 'ucfTrainTestlist']
    assert os.path.isfile(no_frames['train_list_videos'])
    no_videos = make_synthetic_ucf101(str(tmp_path / 'f'), videos=False, **kw)
    assert no_videos['videos_dir'] is None and 'val_list_videos' not in no_videos
    assert sorted(os.listdir(tmp_path / 'f')) == ['rawframes', 'ucfTrainTestlist']


def run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, cwd=ROOT)


def test_cli_writes_dataset_and_prints_training_command(tmp_path):
    out = str(tmp_path / 'd')
    res = run_cli('--out-dir', out, '--num-classes', '3', '--train-per-class', '2', '--val-per-class', '1',
                  '--frames', '5', '--no-videos')
    assert res.returncode == 0, res.stderr
    assert 'wrote 9 clips of 5 frames (80x64), 3 classes' in res.stdout
    assert ('python train_recognizer.py --model vgg16_ucf101 --num-segments 3 --num-classes 3 '
            '--data-dir %s/rawframes --train-list %s/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt'
            % (out, out)) in res.stdout
    assert '--no-pretrained-base --lr 0.001' in res.stdout
    assert not os.path.exists(os.path.join(out, 'UCF-101'))
    assert len(read_rows(os.path.join(out, 'ucfTrainTestlist', 'ucf101_train_split_1_rawframes.txt'))) == 6


def test_cli_refuses_non_empty_dir_unless_forced(tmp_path):
    (tmp_path / 'keep.txt').write_text('x')
    small = ['--num-classes', '1', '--train-per-class', '1', '--val-per-class', '1', '--frames', '2']
    res = run_cli('--out-dir', str(tmp_path), *small)
    assert res.returncode == 2
    assert 'not empty' in res.stderr and '--force' in res.stderr and 'Traceback' not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert run_cli('--out-dir', str(tmp_path), '--force', *small).returncode == 0
    assert os.path.isdir(tmp_path / 'rawframes' / 'Class00' / 'v_Class00_g01_c01')


def test_cli_rejects_bad_sizes(tmp_path):
    res = run_cli('--out-dir', str(tmp_path / 'x'), '--num-classes', '0')
    assert res.returncode == 2 and 'num_classes=0' in res.stderr and 'Traceback' not in res.stderr
