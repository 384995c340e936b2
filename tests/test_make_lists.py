"""scripts/make_lists.py on a folder of real tiny videos with awkward names and broken files."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognizer import data
from conftest import assert_user_error
from video_fixtures import (decoded_frames, read_rows, set_avi_frame_count, truncate, write_empty, write_garbage,
                            write_video)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'make_lists.py')

# Class folder -> {video: frames written}. Sorted by code point: 'Playing  Guitar' < 'Zebra' < 'café au lait'.
CLASSES = {
    'Playing  Guitar': {'clip 1.mp4': 4, 'Clip\t2.avi': 5, 'c3.mkv': 6, 'c4.webm': 7, 'c5.MOV': 8,
                        'dup.mp4': 5, 'dup.avi': 6},
    'Zebra': {'z%d.avi' % i: 3 + i for i in range(1, 6)},
    'café au lait': {'a.avi': 4, 'b.mp4': 5, 'c.avi': 6},
}
LABELS = {'Playing  Guitar': 0, 'Zebra': 1, 'café au lait': 2}
CLASS_IND = '1 Playing  Guitar\n2 Zebra\n3 café au lait\n'
BROKEN = {'Zebra/empty.mp4': 'empty file (0 bytes)', 'Zebra/broken.avi': 'no frame could be decoded'}
# Videos whose container is wrong: the header claims 20 of which a truncated download holds fewer,
# and a header claiming 12 of 8.
LYING = {'café au lait/cut.avi': 20, 'café au lait/lie.avi': 8}


@pytest.fixture(scope='module')
def folder_template(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('own') / 'my videos')
    for index, (cls, videos) in enumerate(CLASSES.items()):
        for k, (name, n) in enumerate(videos.items()):
            write_video(os.path.join(root, cls, name), n, seed=10 * index + k, class_index=index)
    write_empty(os.path.join(root, 'Zebra', 'empty.mp4'))
    write_garbage(os.path.join(root, 'Zebra', 'broken.avi'))
    truncate(write_video(os.path.join(root, 'café au lait', 'cut.avi'), 20, seed=7), 0.8)
    set_avi_frame_count(write_video(os.path.join(root, 'café au lait', 'lie.avi'), 8, seed=8), 12)
    with open(os.path.join(root, 'Zebra', 'notes.txt'), 'w') as f:
        f.write('not a video')
    write_video(os.path.join(root, 'stray.avi'), 3)
    os.makedirs(os.path.join(root, 'no videos yet'))
    return root


@pytest.fixture
def folder(folder_template, tmp_path):
    root = str(tmp_path / 'my videos')
    shutil.copytree(folder_template, root)
    return root


def expected_frames(root):
    """{video: frames} of the usable videos: what was written, or what decodes for the truncated one."""
    frames = {'%s/%s' % (cls, name): n for cls, videos in CLASSES.items() for name, n in videos.items()}
    frames['café au lait/lie.avi'] = 8
    frames['café au lait/cut.avi'] = decoded_frames(os.path.join(root, 'café au lait', 'cut.avi'))
    assert 0 < frames['café au lait/cut.avi'] < 20
    return frames


def run(root, lists, *extra):
    cmd = [sys.executable, SCRIPT, '--src_dir', root, '--out_list_path', lists, '--num_worker', '2'] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def read_bytes(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), 'rb') as f:
            out[name] = f.read()
    return out


def class_of(path):
    return path.split('/', 1)[0]


def test_lists_class_index_counts_and_left_out_videos(folder, tmp_path):
    lists = str(tmp_path / 'lists')
    res = run(folder, lists)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(lists)) == ['classInd.txt', 'left_out.txt', 'train_videos.txt', 'val_videos.txt']
    with open(os.path.join(lists, 'classInd.txt'), encoding='utf-8') as f:
        assert f.read() == CLASS_IND
    train = read_rows(os.path.join(lists, 'train_videos.txt'))
    val = read_rows(os.path.join(lists, 'val_videos.txt'))
    expected = expected_frames(folder)
    assert sorted(p for p, _, _ in train + val) == sorted(expected)
    for path, n, label in train + val:
        assert n == expected[path], path
        assert label == LABELS[class_of(path)]
    # Stratified 0.2: 7 clips -> 1 val, 5 -> 1, 5 -> 1 (round half up, at least one).
    assert sorted(class_of(p) for p, _, _ in val) == ['Playing  Guitar', 'Zebra', 'café au lait']
    assert [r[2] for r in train] == sorted(r[2] for r in train)
    assert '2 video(s) left out of the lists:' in res.stdout
    for video, why in BROKEN.items():
        assert '%s: %s' % (os.path.join(folder, video), why) in res.stdout
    with open(os.path.join(lists, 'left_out.txt'), encoding='utf-8') as f:
        assert sorted(line.split(': ', 1)[0] for line in f.read().splitlines()) == \
            sorted(os.path.join(folder, v) for v in BROKEN)
    assert 'ignored 3 entries' in res.stdout and 'stray.avi (not in a class folder)' in res.stdout
    assert 'no videos yet (a folder without videos or frame folders)' in res.stdout
    # The trainer reads every line back to an existing file.
    clips = data.read_clip_list(os.path.join(lists, 'train_videos.txt'), folder, 3, video=True)
    assert [c.path for c in clips] == [os.path.join(folder, p) for p, _, _ in train]


def test_same_seed_same_bytes_other_seed_or_ratio_other_split(folder, tmp_path):
    first, again, other, half = (str(tmp_path / n) for n in ('a', 'b', 'c', 'd'))
    assert run(folder, first, '--seed', '3').returncode == 0
    assert run(folder, again, '--seed', '3').returncode == 0
    assert read_bytes(first) == read_bytes(again)
    assert run(folder, other, '--seed', '4').returncode == 0
    assert read_bytes(first)['val_videos.txt'] != read_bytes(other)['val_videos.txt']
    assert read_bytes(first)['classInd.txt'] == read_bytes(other)['classInd.txt']
    res = run(folder, half, '--val-ratio', '0.5', '--seed', '3')
    assert res.returncode == 0, res.stderr
    val = [class_of(p) for p, _, _ in read_rows(os.path.join(half, 'val_videos.txt'))]
    # 7 clips x 0.5 = 3.5 -> 4; 5 x 0.5 = 2.5 -> 3 (never all of a class).
    assert [val.count(c) for c in LABELS] == [4, 3, 3]
    assert '0 Playing  Guitar: 3 train, 4 val' in res.stdout


def test_frames_extracted_resumably_with_rawframes_lists(folder, tmp_path):
    lists, frames_dir = str(tmp_path / 'lists'), str(tmp_path / 'frames')
    res = run(folder, lists, '--out_dir', frames_dir, '--new_width', '32', '--new_height', '24')
    assert res.returncode == 0, res.stderr
    assert '19 videos under' in res.stdout and 'decoded 17 video(s)' in res.stdout
    expected = expected_frames(folder)
    raw = read_rows(os.path.join(lists, 'train_rawframes.txt')) + read_rows(os.path.join(lists, 'val_rawframes.txt'))
    vid = read_rows(os.path.join(lists, 'train_videos.txt')) + read_rows(os.path.join(lists, 'val_videos.txt'))
    assert len(raw) == len(vid) == len(expected)
    for (folder_path, n, label), (video, m, vlabel) in zip(raw, vid):
        assert (n, label) == (m, vlabel) == (expected[video], LABELS[class_of(video)])
        assert len(os.listdir(os.path.join(frames_dir, folder_path))) == n
    stems = {p for p, _, _ in raw}
    assert {'Playing  Guitar/dup_mp4', 'Playing  Guitar/dup_avi', 'Playing  Guitar/Clip\t2'} <= stems
    img = cv2.imread(os.path.join(frames_dir, 'Zebra', 'z1', 'img_00001.jpg'))
    assert img.shape == (24, 32, 3)
    data.read_clip_list(os.path.join(lists, 'val_rawframes.txt'), frames_dir, 3)  # counts checked on disk
    before = {n: os.stat(os.path.join(lists, n)).st_mtime_ns for n in os.listdir(lists)}
    res = run(folder, lists, '--out-dir', frames_dir, '--new-width', '32', '--new-height', '24')
    assert res.returncode == 0, res.stderr
    assert '17 already done, 2 to decode' in res.stdout and '0 written, 4 unchanged' in res.stdout
    assert {n: os.stat(os.path.join(lists, n)).st_mtime_ns for n in os.listdir(lists)} == before


def test_split_file_gives_the_split_and_reports_what_it_names_but_is_not_there(folder, tmp_path):
    split = tmp_path / 'split.txt'
    split.write_text('# my split\nZebra/z1.avi train\nZebra/z2.avi val\nPlaying  Guitar/Clip\t2.avi val\n'
                     'café au lait/gone.mp4 train\nZebra/broken.avi train\n', encoding='utf-8')
    lists = str(tmp_path / 'lists')
    res = run(folder, lists, '--split_file', str(split))
    assert res.returncode == 0, res.stderr
    assert read_rows(os.path.join(lists, 'train_videos.txt')) == [('Zebra/z1.avi', 4, 1)]
    assert read_rows(os.path.join(lists, 'val_videos.txt')) == [
        ('Playing  Guitar/Clip\t2.avi', 5, 0), ('Zebra/z2.avi', 5, 1)]
    with open(os.path.join(lists, 'classInd.txt'), encoding='utf-8') as f:
        assert f.read() == CLASS_IND
    assert '%s: not found (named in split.txt:5)' % os.path.join(folder, 'café au lait', 'gone.mp4') in res.stdout
    assert '%s: no frame could be decoded' % os.path.join(folder, 'Zebra', 'broken.avi') in res.stdout
    assert '15 clip(s) under' in res.stdout and 'are not named in' in res.stdout


def test_bad_input_is_one_clear_error(folder, tmp_path):
    lists = str(tmp_path / 'lists')
    split = tmp_path / 'split.txt'
    split.write_text('Zebra/z1.avi train\nZebra/z2.avi test\n')
    assert_user_error(run(folder, lists, '--split_file', str(split)), 'split.txt:2:', 'train|val')
    split.write_text('Zebra/z1.avi train\nZebra/z1.avi val\n')
    assert_user_error(run(folder, lists, '--split_file', str(split)), 'split.txt:2:', 'already on line 1')
    assert_user_error(run(folder, lists, '--split_file', str(split), '--val_ratio', '0.3'), 'pass one of them')
    assert_user_error(run(folder, lists, '--val_ratio', '1'), '--val_ratio', 'below 1')
    assert_user_error(run(str(tmp_path / 'nowhere'), lists), 'nowhere', 'folder not found')
    frames = os.path.join(folder, 'Zebra', 'old frames')
    os.makedirs(frames)
    cv2.imwrite(os.path.join(frames, 'img_00001.jpg'), np.zeros((8, 8, 3), np.uint8))
    assert_user_error(run(folder, lists), 'both videos', 'Zebra/old frames', 'one kind')
    assert not os.path.exists(lists)


def test_folder_of_frame_folders_gives_rawframes_lists_relative_to_it(tmp_path):
    root = tmp_path / 'frames root'
    for cls, clips in (('b class', 3), ('A class', 2)):
        for k in range(clips):
            clip = root / cls / ('clip %d' % k)
            clip.mkdir(parents=True)
            for i in range(1, 4 + k):
                (clip / ('img_%05d.jpg' % i)).write_bytes(b'\xff\xd8')
    lists = str(tmp_path / 'lists')
    res = run(str(root), lists)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(lists)) == ['classInd.txt', 'train_rawframes.txt', 'val_rawframes.txt']
    rows = read_rows(os.path.join(lists, 'train_rawframes.txt')) + read_rows(os.path.join(lists, 'val_rawframes.txt'))
    assert sorted(rows) == [('A class/clip 0', 3, 0), ('A class/clip 1', 4, 0), ('b class/clip 0', 3, 1),
                            ('b class/clip 1', 4, 1), ('b class/clip 2', 5, 1)]
    assert_user_error(run(str(root), lists, '--out_dir', str(tmp_path / 'f')), 'frame folders', 'drop --out_dir')


def test_names_a_list_line_cannot_hold_are_left_out(folder, tmp_path):
    bad = os.path.join(os.fsencode(folder), b'Zebra', b'bad \xff name.avi')
    shutil.copy(os.path.join(folder, 'Zebra', 'z1.avi'), bad)
    shutil.copy(os.path.join(folder, 'Zebra', 'z1.avi'), os.path.join(folder, 'Zebra', 'line\nbreak.avi'))
    lists = str(tmp_path / 'lists')
    res = run(folder, lists)
    assert res.returncode == 0, res.stderr
    assert '4 video(s) left out of the lists:' in res.stdout
    assert 'bad \ufffd name.avi: the name is not valid UTF-8; rename it' in res.stdout
    assert 'break.avi: the name holds a line break; rename it' in res.stdout
    listed = read_rows(os.path.join(lists, 'train_videos.txt')) + read_rows(os.path.join(lists, 'val_videos.txt'))
    assert sorted(p for p, _, _ in listed) == sorted(expected_frames(folder))
