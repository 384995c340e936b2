"""--dataset means what it means in GluonCV: the frame naming of each dataset, --name-pattern for any
other naming, and the list files GluonCV's dataset scripts write for HMDB51 and Kinetics400."""
import inspect
import os

import cv2
import numpy as np
import pytest
from gluoncv.data import HMDB51, UCF101, Kinetics400, SomethingSomethingV2

import train_recognizer as tr
from conftest import run_trainer
from recognizer import data
from recognizer.errors import UserError
from recognizer.synthetic import make_synthetic_ucf101


@pytest.mark.parametrize('dataset,gluoncv_class', [('ucf101', UCF101), ('hmdb51', HMDB51),
                                                   ('kinetics400', Kinetics400),
                                                   ('somethingsomethingv2', SomethingSomethingV2)])
def test_default_frame_names_are_gluoncv_s(dataset, gluoncv_class):
    gluoncv_default = inspect.signature(gluoncv_class).parameters['name_pattern'].default
    assert data.name_pattern_for(dataset) == gluoncv_default
    assert data.name_pattern_for('custom') == 'img_%05d.jpg'
    assert data.name_pattern_for(dataset, 'frame_%d.png') == 'frame_%d.png'


@pytest.mark.parametrize('pattern', ['frame.jpg', '%s.jpg', 'img_%05x.jpg', 'clip/%05d.jpg', '%d_%d.jpg'])
def test_a_pattern_without_one_frame_number_field_is_refused(pattern):
    with pytest.raises(UserError, match='--name-pattern'):
        data.name_pattern_for('ucf101', pattern)


def write_frames(folder, pattern, count, extra=()):
    os.makedirs(folder, exist_ok=True)
    for i in range(1, count + 1):
        cv2.imwrite(os.path.join(folder, pattern % i), np.full((8, 8, 3), 10 * i, np.uint8))
    for name in extra:
        open(os.path.join(folder, name), 'w').close()


def test_frames_are_counted_and_read_with_the_pattern(tmp_path):
    # Something-Something frames as GluonCV's script extracts them, next to files of other namings.
    others = ['img_00001.jpg', 'flow_x_00001.jpg', '1.jpg', '0000001.jpg', 'notes.txt']
    write_frames(str(tmp_path / 'clip'), '%06d.jpg', 7, extra=others)
    assert data._count_frames(str(tmp_path / 'clip'), '%06d.jpg') == 7
    assert data._count_frames(str(tmp_path / 'clip'), 'img_%05d.jpg') == 1
    frames = data.read_frames(str(tmp_path / 'clip'), [3, 7], name_pattern='%06d.jpg')
    assert [int(f.mean()) for f in frames] == [30, 70]


def test_the_list_check_names_the_pattern_it_looked_for(tmp_path):
    write_frames(str(tmp_path / 'frames' / '1234'), '%06d.jpg', 5)
    (tmp_path / 'train.txt').write_text('1234 5 3\n')
    clips = data.read_clip_list(str(tmp_path / 'train.txt'), str(tmp_path / 'frames'), 174, name_pattern='%06d.jpg')
    assert (clips[0].num_frames, clips[0].label) == (5, 3)
    with pytest.raises(UserError) as err:
        data.read_clip_list(str(tmp_path / 'train.txt'), str(tmp_path / 'frames'), 174)
    assert 'holds 0 files named img_%05d.jpg' in str(err.value) and '--name-pattern' in str(err.value)


def rename_frames(rawframes_dir, pattern):
    """Rename every img_%05d.jpg under rawframes_dir to ``pattern``."""
    for folder, _, names in os.walk(rawframes_dir):
        for name in names:
            if name.startswith('img_'):
                os.rename(os.path.join(folder, name), os.path.join(folder, pattern % int(name[4:9])))


@pytest.fixture(scope='module')
def sthsthv2_set(tmp_path_factory):
    """A tiny set laid out as GluonCV's Something-Something data: numbered folders of %06d.jpg frames."""
    syn = make_synthetic_ucf101(str(tmp_path_factory.mktemp('sth') / 'syn'), num_classes=2, train_per_class=2,
                                val_per_class=1, num_frames=8, width=40, height=32, videos=False, seed=9)
    rename_frames(syn['rawframes_dir'], '%06d.jpg')
    return syn


def sthsthv2_command(syn, save_dir, *extra):
    return ['--dataset', 'somethingsomethingv2', '--model', 'vgg16_sthsthv2', '--num-classes', '2',
            '--data-dir', syn['rawframes_dir'], '--train-list', syn['train_list_rawframes'],
            '--val-list', syn['val_list_rawframes'], '--input-size', '32', '--batch-size', '2', '--num-epochs', '1',
            '-j', '0', '--no-pretrained-base', '--lr', '0.001', '--save-dir', str(save_dir)] + list(extra)


def test_somethingsomethingv2_lists_check_against_its_frame_names(sthsthv2_set, tmp_path):
    opt = tr.check_args(tr.parse_args(sthsthv2_command(sthsthv2_set, tmp_path / 'a')))
    assert opt.name_pattern is None and data.name_pattern_for(opt.dataset, opt.name_pattern) == '%06d.jpg'
    train, val = tr.read_lists(opt)
    assert (len(train), len(val)) == (4, 2)
    # The same folders read as UCF101 data: no img_*.jpg frames, and the error says how to fix it.
    opt = tr.check_args(tr.parse_args(sthsthv2_command(sthsthv2_set, tmp_path / 'b', '--dataset', 'ucf101')))
    with pytest.raises(UserError, match='holds 0 files named img_%05d.jpg'):
        tr.read_lists(opt)


@pytest.mark.slow
def test_somethingsomethingv2_trains_on_its_frames_and_a_custom_pattern_too(sthsthv2_set, tmp_path):
    done = run_trainer(sthsthv2_command(sthsthv2_set, tmp_path / 'sth'), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / 'sth' / 'metrics.csv').read_text().count('\n') == 2
    done = run_trainer(sthsthv2_command(sthsthv2_set, tmp_path / 'custom', '--dataset', 'custom', '--name-pattern',
                                        '%06d.jpg', '--check-data'), timeout=300)
    assert done.returncode == 0 and 'checked 6 clips: every frame decodes' in done.stdout, done.stderr[-3000:]


@pytest.fixture(scope='module')
def gluoncv_lists(tmp_path_factory):
    """HMDB51/Kinetics400-style data and the two list formats GluonCV's hmdb51.py/kinetics400.py write:
    frames "<class>/<video> <frames> <label>"; videos "<class>/<video> <label>" (no extension)."""
    syn = make_synthetic_ucf101(str(tmp_path_factory.mktemp('lists') / 'syn'), num_classes=2, train_per_class=2,
                                val_per_class=1, num_frames=8, width=40, height=32, seed=4)
    out = {}
    for which in ('train', 'val'):
        with open(syn['%s_list_rawframes' % which]) as f:
            frame_lines = [line.split() for line in f if line.strip()]
        videos = syn['videos_dir']
        # Kinetics400's videos are .mp4: give this split's videos that extension.
        for rel, _, _ in frame_lines:
            os.rename(os.path.join(videos, rel + '.avi'), os.path.join(videos, rel + '.mp4'))
        video_list = tmp_path_factory.getbasetemp() / ('kinetics400_%s_list_videos.txt' % which)
        video_list.write_text(''.join('%s %s\n' % (rel, label) for rel, _, label in frame_lines))
        frame_list = tmp_path_factory.getbasetemp() / ('kinetics400_%s_list_rawframes.txt' % which)
        frame_list.write_text(''.join('%s %s %s\n' % tuple(fields) for fields in frame_lines))
        out[which] = (str(frame_list), str(video_list))
    return syn, out


def test_gluoncv_video_lists_without_frame_count_or_extension_are_read(gluoncv_lists):
    syn, lists = gluoncv_lists
    clips = data.read_clip_list(lists['train'][1], syn['videos_dir'], 2, video=True)
    assert len(clips) == 4 and all(c.path.endswith('.mp4') and os.path.isfile(c.path) for c in clips)
    assert [c.label for c in clips] == [0, 0, 1, 1] and all(c.num_frames == -1 for c in clips)
    frames = data.read_clip_list(lists['train'][0], syn['rawframes_dir'], 2)
    assert [c.num_frames for c in frames] == [8] * 4


def test_a_video_named_without_extension_is_found_with_its_own(tmp_path):
    # HMDB51's videos are .avi and its video lists name them without an extension.
    (tmp_path / 'brush_hair').mkdir()
    (tmp_path / 'brush_hair' / 'April_09_brush_hair_u_nm_np1_ba_goo_0.avi').write_bytes(b'x')
    (tmp_path / 'hmdb51_train_split_1_videos.txt').write_text('brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0 0\n'
                                                              'brush_hair/missing 0\n')
    with pytest.raises(UserError) as err:
        data.read_clip_list(str(tmp_path / 'hmdb51_train_split_1_videos.txt'), str(tmp_path), 51, video=True)
    assert ':2: video %s does not exist' % (tmp_path / 'brush_hair' / 'missing.mp4') in str(err.value)
    clips = data.read_clip_list(str(tmp_path / 'hmdb51_train_split_1_videos.txt'), str(tmp_path), 51, video=True,
                                check_files=False)
    assert clips[0].path.endswith('April_09_brush_hair_u_nm_np1_ba_goo_0.avi')


def test_a_two_field_line_is_still_an_error_for_frame_folders(tmp_path):
    (tmp_path / 'list.txt').write_text('abseiling/abc_000001_000011 0\n')
    with pytest.raises(UserError, match=r'list.txt:1: expected "<clip path> <num_frames> <label>"'):
        data.read_clip_list(str(tmp_path / 'list.txt'), str(tmp_path), 400, check_files=False)


@pytest.mark.slow
def test_kinetics400_trains_from_gluoncv_s_video_list(gluoncv_lists, tmp_path):
    syn, lists = gluoncv_lists
    done = run_trainer(['--dataset', 'kinetics400', '--model', 'i3d_resnet50_v1_kinetics400', '--num-classes', '2',
                        '--data-dir', syn['videos_dir'], '--train-list', lists['train'][1], '--val-list',
                        lists['val'][1], '--video-loader', '--use-decord', '--new-length', '8', '--new-height', '32',
                        '--new-width', '40', '--input-size', '32', '--batch-size', '2', '--num-epochs', '1', '-j', '0',
                        '--no-pretrained-base', '--lr', '0.001', '--save-dir', str(tmp_path / 'k400')], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '4 training and 2 validation clips' in (tmp_path / 'k400' / 'train.log').read_text()
