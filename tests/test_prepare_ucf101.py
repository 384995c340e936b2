"""Tests for scripts/prepare_ucf101.py on a tiny archive-layout UCF101 with real .avi files."""
import importlib.util
import os
import shutil
import subprocess
import sys

import cv2
import pytest

from recognizer.synthetic import make_synthetic_ucf101

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'prepare_ucf101.py')
NUM_FRAMES = 6
LIST_NAMES = sorted('ucf101_%s_split_%d_%s.txt' % (s, k, kind)
                    for s in ('train', 'val') for k in (1, 2, 3) for kind in ('rawframes', 'videos'))


@pytest.fixture(scope='module')
def archive_template(tmp_path_factory):
    """3 classes x 3 clips as UCF-101/ + ucfTrainTestlist/ (official formats, 3 splits)."""
    root = str(tmp_path_factory.mktemp('archive'))
    make_synthetic_ucf101(root, num_classes=3, train_per_class=2, val_per_class=1, num_frames=NUM_FRAMES,
                          width=96, height=72, frames=False)
    anno = os.path.join(root, 'ucfTrainTestlist')
    for name in os.listdir(anno):
        if name.startswith('ucf101_'):
            os.remove(os.path.join(anno, name))
    # The official files have CRLF line ends.
    path = os.path.join(anno, 'trainlist01.txt')
    with open(path) as f:
        text = f.read()
    with open(path, 'w', newline='') as f:
        f.write(text.replace('\n', '\r\n'))
    return root


@pytest.fixture
def archive(archive_template, tmp_path):
    root = str(tmp_path / 'ucf101')
    shutil.copytree(archive_template, root)
    return root


def run(root, *extra, sizes=('--new_width', '170', '--new_height', '128')):
    cmd = [sys.executable, SCRIPT, '--src_dir', os.path.join(root, 'UCF-101'),
           '--anno_dir', os.path.join(root, 'ucfTrainTestlist'), '--out_dir', os.path.join(root, 'rawframes'),
           '--out_list_path', os.path.join(root, 'lists'), '--num_worker', '2'] + list(sizes) + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def read_rows(path):
    with open(path) as f:
        return [line.split() for line in f.read().splitlines()]


def snapshot(root):
    """{path: mtime_ns} of every file and folder under the outputs."""
    out = {}
    for sub in ('rawframes', 'lists'):
        for folder, dirs, files in os.walk(os.path.join(root, sub)):
            for name in dirs + files:
                path = os.path.join(folder, name)
                out[path] = os.stat(path).st_mtime_ns
    return out


def test_decodes_frames_and_writes_all_twelve_lists(archive):
    res = run(archive)
    assert res.returncode == 0, res.stderr
    assert '9 videos under' in res.stdout and '9 to decode with 2 worker(s)' in res.stdout
    assert 'decoded 9 video(s)' in res.stdout and '12 written' in res.stdout
    lists = os.path.join(archive, 'lists')
    assert sorted(os.listdir(lists)) == LIST_NAMES
    frames_dir = os.path.join(archive, 'rawframes')
    clip = os.path.join(frames_dir, 'Class02', 'v_Class02_g03_c01')
    assert sorted(os.listdir(clip)) == ['img_%05d.jpg' % i for i in range(1, NUM_FRAMES + 1)]
    assert cv2.imread(os.path.join(clip, 'img_00001.jpg')).shape == (128, 170, 3)
    for k in (1, 2, 3):
        for subset, official, count in (('train', 'trainlist', 6), ('val', 'testlist', 3)):
            raw = read_rows(os.path.join(lists, 'ucf101_%s_split_%d_rawframes.txt' % (subset, k)))
            vid = read_rows(os.path.join(lists, 'ucf101_%s_split_%d_videos.txt' % (subset, k)))
            names = [r[0] for r in read_rows(os.path.join(archive, 'ucfTrainTestlist', '%s%02d.txt'
                                                          % (official, k)))]
            assert len(raw) == len(vid) == count
            assert [r[0] for r in vid] == names
            assert [r[0] + '.avi' for r in raw] == names
            for (path, n, label), vrow in zip(raw, vid):
                assert int(n) == len(os.listdir(os.path.join(frames_dir, path))) == NUM_FRAMES
                assert int(label) == int(path[len('Class'):len('Class') + 2])  # ClassNN -> label NN
                assert vrow[1:] == [n, label]
                assert os.path.isfile(os.path.join(archive, 'UCF-101', vrow[0]))


def test_second_run_skips_everything_and_rewrites_nothing(archive):
    assert run(archive).returncode == 0
    before = snapshot(archive)
    res = run(archive)
    assert res.returncode == 0, res.stderr
    assert '9 already done, 0 to decode' in res.stdout and '0 written, 12 unchanged' in res.stdout
    assert snapshot(archive) == before


def test_half_written_folder_is_redone(archive):
    assert run(archive).returncode == 0
    frames_dir = os.path.join(archive, 'rawframes', 'Class01')
    final = os.path.join(frames_dir, 'v_Class01_g02_c01')
    partial = os.path.join(frames_dir, '.partial_v_Class01_g02_c01')
    # What an interrupted run leaves: a partial folder and no finished one.
    os.rename(final, partial)
    os.remove(os.path.join(partial, 'img_00006.jpg'))
    before = snapshot(archive)
    res = run(archive)
    assert res.returncode == 0, res.stderr
    assert '8 already done, 1 to decode' in res.stdout and '0 written, 12 unchanged' in res.stdout
    assert not os.path.exists(partial)
    assert len(os.listdir(final)) == NUM_FRAMES
    after = snapshot(archive)
    assert {p: t for p, t in after.items() if 'Class01' not in p} == \
        {p: t for p, t in before.items() if 'Class01' not in p}


def test_corrupt_and_missing_videos_are_reported_and_left_out(archive):
    with open(os.path.join(archive, 'UCF-101', 'Class01', 'v_Class01_g01_c01.avi'), 'wb') as f:
        f.write(b'this is not a video' * 50)
    os.remove(os.path.join(archive, 'UCF-101', 'Class02', 'v_Class02_g02_c01.avi'))
    # Dashed aliases, and 0 x 0 keeps the video size.
    res = run(archive, sizes=('--new-width', '0', '--new-height', '0'))
    assert res.returncode == 0, res.stderr
    assert '2 video(s) left out of the lists:' in res.stdout
    assert 'Class01/v_Class01_g01_c01.avi: no frame could be decoded' in res.stdout
    assert 'Class02/v_Class02_g02_c01.avi: not found (named in trainlist01.txt:' in res.stdout
    assert 'Traceback' not in res.stderr
    lists = os.path.join(archive, 'lists')
    val1 = [r[0] for r in read_rows(os.path.join(lists, 'ucf101_val_split_1_rawframes.txt'))]
    assert val1 == ['Class00/v_Class00_g01_c01', 'Class02/v_Class02_g01_c01']
    train1 = [r[0] for r in read_rows(os.path.join(lists, 'ucf101_train_split_1_videos.txt'))]
    assert len(train1) == 5 and 'Class02/v_Class02_g02_c01.avi' not in train1
    assert not os.path.exists(os.path.join(archive, 'rawframes', 'Class01', 'v_Class01_g01_c01'))
    frame = cv2.imread(os.path.join(archive, 'rawframes', 'Class00', 'v_Class00_g01_c01', 'img_00001.jpg'))
    assert frame.shape == (72, 96, 3)


def assert_user_error(res, *words):
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert 'Traceback' not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    for word in words:
        assert word in lines[0]


def test_missing_class_ind_is_one_clear_error(archive):
    os.remove(os.path.join(archive, 'ucfTrainTestlist', 'classInd.txt'))
    assert_user_error(run(archive), 'classInd.txt', 'not found', '--anno_dir')
    assert not os.path.exists(os.path.join(archive, 'rawframes'))


def test_missing_split_file_and_src_dir_are_errors(archive, tmp_path):
    os.remove(os.path.join(archive, 'ucfTrainTestlist', 'testlist02.txt'))
    assert_user_error(run(archive), 'testlist02.txt', 'not found')
    assert_user_error(run(str(tmp_path / 'nowhere')), 'nowhere', 'not found')
    anno = os.path.join(tmp_path, 'nowhere', 'ucfTrainTestlist')
    shutil.copytree(os.path.join(archive, 'ucfTrainTestlist'), anno)
    shutil.copy(os.path.join(anno, 'testlist01.txt'), os.path.join(anno, 'testlist02.txt'))
    assert_user_error(run(str(tmp_path / 'nowhere')), 'UCF-101', '--src_dir')


def test_wrong_label_in_train_list_names_file_and_line(archive):
    path = os.path.join(archive, 'ucfTrainTestlist', 'trainlist02.txt')
    rows = read_rows(path)
    rows[0][1] = '3'
    with open(path, 'w') as f:
        f.write(''.join(' '.join(r) + '\n' for r in rows))
    assert_user_error(run(archive), 'trainlist02.txt:1:', 'label 3', 'Class00 is 1')


def test_nothing_readable_is_an_error(archive):
    for folder, _, files in os.walk(os.path.join(archive, 'UCF-101')):
        for name in files:
            with open(os.path.join(folder, name), 'wb') as f:
                f.write(b'\0' * 100)
    res = run(archive)
    assert res.returncode == 2 and 'none of the 9 videos could be decoded' in res.stderr
    assert '9 video(s) left out' in res.stdout
    assert not os.path.exists(os.path.join(archive, 'lists'))


def test_target_size_keeps_aspect_when_one_side_is_zero():
    spec = importlib.util.spec_from_file_location('prepare_ucf101', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._target_size(320, 240, 340, 256) == (340, 256)
    assert module._target_size(320, 240, 0, 0) == (320, 240)
    assert module._target_size(320, 240, 0, 120) == (160, 120)
    assert module._target_size(320, 240, 160, 0) == (160, 120)
