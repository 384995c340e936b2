"""scripts/prepare_{hmdb51,kinetics400,sthsthv2}.py on tiny fixtures of each official layout."""
import csv
import json
import os
import subprocess
import sys

import cv2
import pytest

from conftest import assert_user_error
from recognizer import data
from video_fixtures import read_rows, write_empty, write_garbage, write_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args):
    cmd = [sys.executable, os.path.join(ROOT, 'scripts', script), '--num_worker', '2'] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def read_text(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def snapshot(*folders):
    """{path: mtime} of every file and {path: None} of every folder under ``folders`` (a folder's
    mtime changes when a broken video's partial folder comes and goes)."""
    out = {}
    for top in folders:
        for folder, dirs, files in os.walk(top):
            out.update({os.path.join(folder, name): None for name in dirs})
            out.update({os.path.join(folder, name): os.stat(os.path.join(folder, name)).st_mtime_ns
                        for name in files})
    return out


# ---------------------------------------------------------------- HMDB51

HMDB_CLASSES = ['brush_hair', 'cartwheel', 'catch']
HMDB_VIDEOS = 3


def hmdb_video(cls, i):
    return '%s_%s_f_nm_np1_ba_goo_%d.avi' % ('April_09' if i % 2 else '#20_Rhythm', cls, i)


def hmdb_tag(split, i):
    """Official tags: 1 train, 2 test, 0 unused, rotated over the splits."""
    return '120'[(i + split) % 3]


@pytest.fixture
def hmdb(tmp_path):
    """3 classes x 3 videos (one named in the splits but never downloaded, one corrupt)."""
    src, anno = tmp_path / 'hmdb51_org', tmp_path / 'testTrainMulti_7030_splits'
    anno.mkdir()
    for c, cls in enumerate(HMDB_CLASSES):
        for i in range(HMDB_VIDEOS):
            if (c, i) != (2, 2):
                write_video(str(src / cls / hmdb_video(cls, i)), 3 + i, seed=i, class_index=c)
        for split in (1, 2, 3):
            # As the official files: one "<video> <tag> " per line, with a trailing space.
            lines = ''.join('%s %s \n' % (hmdb_video(cls, i), hmdb_tag(split, i)) for i in range(HMDB_VIDEOS))
            (anno / ('%s_test_split%d.txt' % (cls, split))).write_text(lines)
    write_garbage(str(src / 'cartwheel' / hmdb_video('cartwheel', 0)))
    return tmp_path


def test_hmdb51_lists_for_three_splits_with_missing_and_broken_videos(hmdb):
    lists, frames = hmdb / 'lists', hmdb / 'rawframes'
    res = run('prepare_hmdb51.py', '--src_dir', hmdb / 'hmdb51_org', '--anno_dir', hmdb / 'testTrainMulti_7030_splits',
              '--out_dir', frames, '--out_list_path', lists, '--new_width', 32, '--new_height', 24)
    assert res.returncode == 0, res.stderr
    names = sorted('hmdb51_%s_split_%d_%s.txt' % (s, k, kind) for s in ('train', 'val') for k in (1, 2, 3)
                   for kind in ('rawframes', 'videos'))
    assert sorted(os.listdir(lists)) == sorted(names + ['classInd.txt', 'hmdb51_left_out.txt'])
    assert read_text(lists / 'classInd.txt') == '1 brush_hair\n2 cartwheel\n3 catch\n'
    unusable = {('cartwheel', 0), ('catch', 2)}
    for split in (1, 2, 3):
        for subset, tag in (('train', '1'), ('val', '2')):
            expected = [('%s/%s' % (cls, hmdb_video(cls, i)), 3 + i, c) for c, cls in enumerate(HMDB_CLASSES)
                        for i in range(HMDB_VIDEOS) if hmdb_tag(split, i) == tag and (cls, i) not in unusable]
            assert read_rows(lists / ('hmdb51_%s_split_%d_videos.txt' % (subset, split))) == expected
            raw = read_rows(lists / ('hmdb51_%s_split_%d_rawframes.txt' % (subset, split)))
            assert raw == [(p[:-len('.avi')], n, label) for p, n, label in expected]
            for path, n, _ in raw:
                assert len(os.listdir(frames / path)) == n
    assert cv2.imread(str(frames / 'catch' / hmdb_video('catch', 1)[:-4] / 'img_00001.jpg')).shape == (24, 32, 3)
    src = hmdb / 'hmdb51_org'
    assert '%s: no frame could be decoded' % (src / 'cartwheel' / hmdb_video('cartwheel', 0)) in res.stdout
    assert '%s: not found (named in catch_test_split1.txt:3 and 1 more)' % (src / 'catch' / hmdb_video('catch', 2)) \
        in res.stdout
    assert len(read_text(lists / 'hmdb51_left_out.txt').splitlines()) == 2
    # Resumable: a second run decodes only the broken video again and rewrites nothing.
    before = snapshot(lists, frames)
    res = run('prepare_hmdb51.py', '--src-dir', src, '--anno-dir', hmdb / 'testTrainMulti_7030_splits',
              '--out-dir', frames, '--out-list-path', lists, '--new-width', 32, '--new-height', 24)
    assert res.returncode == 0, res.stderr
    assert '7 already done, 1 to decode' in res.stdout and '0 written, 12 unchanged' in res.stdout
    assert snapshot(lists, frames) == before


def test_hmdb51_bad_split_files_are_one_clear_error(hmdb):
    anno = hmdb / 'testTrainMulti_7030_splits'
    common = ('--src_dir', hmdb / 'hmdb51_org', '--anno_dir', anno, '--out_dir', hmdb / 'f',
              '--out_list_path', hmdb / 'l')
    (anno / 'catch_test_split2.txt').write_text('%s 3\n' % hmdb_video('catch', 0))
    assert_user_error(run('prepare_hmdb51.py', *common), 'catch_test_split2.txt:1:', '1 train, 2 test, 0 unused')
    os.remove(anno / 'catch_test_split2.txt')
    assert_user_error(run('prepare_hmdb51.py', *common), 'catch_test_split2.txt not found')
    assert not os.path.exists(hmdb / 'f') and not os.path.exists(hmdb / 'l')


# ---------------------------------------------------------------- Kinetics400

K_LABELS = ['passing American football (in game)', 'abseiling', 'air drumming']
K_CLASSES = ['abseiling', 'air_drumming', 'passing_American_football_(in_game)']


def k_rows(subset):
    """(label, youtube_id, start, end) rows: 2 train and 1 val video per class."""
    count = 2 if subset == 'train' else 1
    return [(label, '%s%02d-%s' % (subset[0], i, 'xY_' * (c + 1)), 10 * i, 10 * i + 10)
            for c, label in enumerate(K_LABELS) for i in range(count)]


def k_stem(row):
    return '%s_%06d_%06d' % row[1:]


@pytest.fixture
def kinetics(tmp_path):
    """train/ by class (spaces or underscores as the downloader left them), val/ flat, some videos
    missing (deleted on YouTube) or broken, one not annotated."""
    src, anno = tmp_path / 'kinetics400', tmp_path / 'annotations'
    anno.mkdir()
    for subset, name in (('train', 'kinetics_400_train.csv'), ('val', 'kinetics_400_val.csv')):
        with open(anno / name, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['label', 'youtube_id', 'time_start', 'time_end', 'split'])
            for row in k_rows(subset):
                writer.writerow(list(row) + [subset])
    for c, row in enumerate(k_rows('train')):
        folder = row[0] if c % 2 else row[0].replace(' ', '_')
        if row != k_rows('train')[3]:      # never downloaded
            write_video(str(src / 'train' / folder / (k_stem(row) + '.mp4')), 3 + c % 3, seed=c)
    for c, row in enumerate(k_rows('val')):
        if c != 1:                         # never downloaded
            write_video(str(src / 'val' / (k_stem(row) + '.mp4')), 4, seed=10 + c)
    write_empty(str(src / 'val' / (k_stem(k_rows('val')[2]) + '.mp4')))
    write_video(str(src / 'train' / 'abseiling' / 'not_annotated_000000_000010.mp4'), 3)
    return tmp_path


def test_kinetics400_lists_count_and_list_missing_and_broken_videos(kinetics):
    src, lists = kinetics / 'kinetics400', kinetics / 'lists'
    res = run('prepare_kinetics400.py', '--src_dir', src, '--anno_dir', kinetics / 'annotations',
              '--out_list_path', lists)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(lists)) == ['classInd.txt', 'kinetics400_left_out.txt',
                                         'kinetics400_train_list_videos.txt', 'kinetics400_val_list_videos.txt']
    assert read_text(lists / 'classInd.txt') == ''.join('%d %s\n' % (i + 1, c) for i, c in enumerate(K_CLASSES))
    label = {lab: K_CLASSES.index(lab.replace(' ', '_')) for lab in K_LABELS}
    train = [('train/%s/%s.mp4' % (row[0] if c % 2 else row[0].replace(' ', '_'), k_stem(row)), 3 + c % 3,
              label[row[0]]) for c, row in enumerate(k_rows('train')) if c != 3]
    assert read_rows(lists / 'kinetics400_train_list_videos.txt') == train
    assert read_rows(lists / 'kinetics400_val_list_videos.txt') == [
        ('val/%s.mp4' % k_stem(k_rows('val')[0]), 4, label[K_LABELS[0]])]
    assert '7 found under' in res.stdout and '2 missing' in res.stdout
    assert '1 other videos there were ignored' in res.stdout
    missing_train = src / 'train' / 'abseiling' / (k_stem(k_rows('train')[3]) + '.mp4')
    missing_val = src / 'val' / 'abseiling' / (k_stem(k_rows('val')[1]) + '.mp4')
    assert sorted(read_text(lists / 'kinetics400_left_out.txt').splitlines()) == sorted([
        '%s: empty file (0 bytes)' % (src / 'val' / (k_stem(k_rows('val')[2]) + '.mp4')),
        '%s: not found (named in kinetics_400_train.csv:5)' % missing_train,
        '%s: not found (named in kinetics_400_val.csv:3)' % missing_val])
    assert '3 video(s) left out of the lists:' in res.stdout
    assert '5 train and 1 val videos listed; 2 missing and 1 unreadable left out' in res.stdout
    for name in ('train', 'val'):
        data.read_clip_list(str(lists / ('kinetics400_%s_list_videos.txt' % name)), str(src), 3, video=True)


def test_kinetics400_frames_mirror_the_video_tree(kinetics):
    src, lists, frames = kinetics / 'kinetics400', kinetics / 'lists', kinetics / 'frames'
    res = run('prepare_kinetics400.py', '--src-dir', src, '--anno-dir', kinetics / 'annotations',
              '--out-list-path', lists, '--out-dir', frames)
    assert res.returncode == 0, res.stderr
    for subset in ('train', 'val'):
        vid = read_rows(lists / ('kinetics400_%s_list_videos.txt' % subset))
        raw = read_rows(lists / ('kinetics400_%s_list_rawframes.txt' % subset))
        assert raw == [(p[:-len('.mp4')], n, label) for p, n, label in vid]
        for path, n, _ in raw:
            assert len(os.listdir(frames / path)) == n
    assert cv2.imread(str(frames / raw[0][0] / 'img_00001.jpg')).shape == (48, 64, 3)  # 0 x 0 keeps the size


def test_kinetics400_without_annotations_is_one_clear_error(kinetics):
    os.remove(kinetics / 'annotations' / 'kinetics_400_val.csv')
    assert_user_error(run('prepare_kinetics400.py', '--src_dir', kinetics / 'kinetics400', '--anno_dir',
                          kinetics / 'annotations', '--out_list_path', kinetics / 'l'), 'no val annotation file',
                      'kinetics_400_val.csv')


# ---------------------------------------------------------------- Something-Something v2

S_LABELS = {'Approaching something with your camera': '0', 'Holding something next to something': '1',
            'Putting something on a surface': '2'}
S_TEMPLATES = ['Approaching [something] with your camera', 'Holding [something] next to [something]',
               'Putting [something] on a surface']


@pytest.fixture
def sthsth(tmp_path):
    """3 classes; train ids 1-6, validation ids 7-9 (a reordered file); id 5 missing, id 8 broken."""
    videos, anno = tmp_path / '20bn-something-something-v2', tmp_path / 'annotations'
    anno.mkdir()
    (anno / 'something-something-v2-labels.json').write_text(json.dumps(S_LABELS))
    items = {'train': [(str(i), (i - 1) % 3) for i in range(1, 7)], 'validation': [('9', 0), ('7', 2), ('8', 1)]}
    for name, rows in items.items():
        (anno / ('something-something-v2-%s.json' % name)).write_text(json.dumps(
            [{'id': vid, 'label': 'a thing', 'template': S_TEMPLATES[label], 'placeholders': ['a thing']}
             for vid, label in rows]))
        for vid, label in rows:
            if vid != '5':
                write_video(str(videos / (vid + '.webm')), 2 + int(vid) % 3, seed=int(vid), class_index=label)
    write_garbage(str(videos / '8.webm'))
    return tmp_path, items


@pytest.mark.slow
def test_sthsthv2_frames_and_lists_as_gluoncv_reads_them(sthsth):
    root, items = sthsth
    videos, frames, anno = root / '20bn-something-something-v2', root / 'frames', root / 'annotations'
    res = run('prepare_sthsthv2.py', '--video_root', videos, '--frame_root', frames, '--anno_root', anno,
              '--new_height', 32)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(anno)) == sorted(
        ['category.txt', 'classInd.txt', 'sthsthv2_left_out.txt', 'train_videofolder.txt', 'train_videos.txt',
         'val_videofolder.txt', 'val_videos.txt'] + ['something-something-v2-%s.json' % n
                                                     for n in ('labels', 'train', 'validation')])
    names = list(S_LABELS)
    assert read_text(anno / 'category.txt') == ''.join(n + '\n' for n in names)
    assert read_text(anno / 'classInd.txt') == ''.join('%d %s\n' % (i + 1, n) for i, n in enumerate(names))
    for subset, name in (('train', 'train'), ('val', 'validation')):
        expected = [(vid, 2 + int(vid) % 3, label) for vid, label in items[name] if vid not in ('5', '8')]
        assert read_rows(anno / ('%s_videofolder.txt' % subset)) == expected
        assert read_rows(anno / ('%s_videos.txt' % subset)) == [(v + '.webm', n, lab) for v, n, lab in expected]
        for vid, n, _ in expected:
            assert sorted(os.listdir(frames / vid)) == ['%06d.jpg' % i for i in range(1, n + 1)]
    assert cv2.imread(str(frames / '1' / '000001.jpg')).shape == (32, 43, 3)   # 64x48 -> height 32, aspect kept
    assert '%s: not found (named in something-something-v2-train.json item 4)' % (videos / '5.webm') in res.stdout
    assert '%s: no frame could be decoded' % (videos / '8.webm') in res.stdout
    # GluonCV's own dataset class reads the frame folders through its list file.
    from gluoncv.data import SomethingSomethingV2
    dataset = SomethingSomethingV2(root=str(frames), setting=str(anno / 'val_videofolder.txt'), train=False,
                                   num_segments=2, new_width=43, new_height=32, target_width=43, target_height=32)
    clip, label = dataset[1]
    assert clip.shape == (2, 3, 32, 43) and label == 2


def test_sthsthv2_img_pattern_for_this_trainer(sthsth):
    root, _ = sthsth
    lists, frames = root / 'lists', root / 'frames'
    res = run('prepare_sthsthv2.py', '--video-root', root / '20bn-something-something-v2', '--frame-root', frames,
              '--anno-root', root / 'annotations', '--out-list-path', lists, '--name-pattern', 'img_%05d.jpg',
              '--num_threads', 1)
    assert res.returncode == 0, res.stderr
    assert 'with 1 worker(s)' in res.stdout
    assert sorted(os.listdir(frames / '9')) == ['img_00001.jpg', 'img_00002.jpg']
    clips = data.read_clip_list(str(lists / 'train_videofolder.txt'), str(frames), 3)
    assert [os.path.basename(c.path) for c in clips] == ['1', '2', '3', '4', '6']
    assert_user_error(run('prepare_sthsthv2.py', '--anno_root', root / 'nowhere'), 'labels.json', 'not found')
