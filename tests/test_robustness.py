"""Never lose a run: bad input is refused before training, stops are clean, resumes are exact."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import train_recognizer as tr
from conftest import REPO, metrics_without_timing, run_trainer, snapshot, train_command
from recognizer.errors import UserError


@pytest.fixture
def save_dir_with_history(tmp_path):
    """A save dir holding files of an earlier run that a failed start must not touch."""
    save = tmp_path / 'save'
    save.mkdir()
    (save / 'train.log').write_text('an earlier log\n')
    (save / '0.9000-ucf101-vgg16_ucf101-004-best.params').write_bytes(b'weights')
    return save


def write_list(tmp_path, lines):
    path = tmp_path / 'list.txt'
    path.write_text(''.join(line + '\n' for line in lines))
    return str(path)


def good_line(data, index=0):
    with open(data['train_list_rawframes']) as f:
        return f.read().splitlines()[index]


BAD_LISTS = {
    'empty list': ([], r'is empty'),
    'fewer than 3 fields': (['Class00/clip 12'], r':1: expected "<clip path> <num_frames> <label>"'),
    'frame count not an integer': (['{dir} twelve 0'], r':1: frame count \'twelve\' is not an integer'),
    'label not an integer': (['{dir} 12 zero'], r':1: label \'zero\' is not an integer'),
    'negative label': (['{good}', '{dir} 12 -1'], r':2: label -1 is outside 0..2'),
    'label not below num-classes': (['{dir} 12 3'], r':1: label 3 is outside 0..2.*--num-classes 3'),
    'missing clip folder': (['Class00/v_nothing_here 12 0'], r':1: clip folder .*v_nothing_here does not exist'),
    'fewer frames on disk': (['{dir} 13 0'], r':1: the list claims 13 frames but .* holds 12'),
}


@pytest.mark.parametrize('case', sorted(BAD_LISTS))
def test_bad_list_files_are_refused_with_file_and_line(case, tiny_set, tmp_path, save_dir_with_history, capsys):
    lines, message = BAD_LISTS[case]
    good = good_line(tiny_set)
    lines = [line.format(good=good, dir=good.split()[0]) for line in lines]
    bad_list = write_list(tmp_path, lines)
    before = snapshot(save_dir_with_history)
    args = train_command(tiny_set, save_dir_with_history, '--train-list', bad_list)
    with pytest.raises(SystemExit) as exit_info:
        tr.run_cli(tr.main, args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ')
    assert err[0].startswith('error: ' + bad_list) or case == 'empty list'
    import re
    assert re.search(message, err[0]), err[0]
    assert snapshot(save_dir_with_history) == before


def refused_with_one_line(args, capsys):
    """Run the CLI in this process: exit status 2 and the single stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        tr.run_cli(tr.main, args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), err
    return err[0]


def test_a_list_that_is_not_text_names_its_first_bad_line(tiny_set, tmp_path, save_dir_with_history, capsys):
    bad_list = tmp_path / 'train.avi'
    bad_list.write_bytes(good_line(tiny_set).encode() + b'\n' + bytes(range(128, 256)) + b'\n')
    before = snapshot(save_dir_with_history)
    line = refused_with_one_line(train_command(tiny_set, save_dir_with_history, '--train-list', str(bad_list)), capsys)
    assert line.startswith('error: %s:2: not a text line' % bad_list) and 'pass the list' in line
    assert snapshot(save_dir_with_history) == before


def test_resume_params_that_are_not_a_parameter_file_say_so(tiny_set, tmp_path, capsys):
    notes = tmp_path / 'notes.params'
    notes.write_text('not weights\n')
    save = tmp_path / 'run'
    line = refused_with_one_line(train_command(tiny_set, save, '--resume-params', str(notes)), capsys)
    assert line == ('error: %s is not an MXNet parameter file (nd.load cannot read it); pass a .params file saved '
                    'by train_recognizer.py or net.save_parameters, not a .states or other file' % notes)
    assert not save.exists()


@pytest.mark.parametrize('flags,message', [
    (['--train-list', '/nonexistent/train.txt'], r'list file /nonexistent/train.txt does not exist'),
    (['--lr-decay-epoch', '30;60'], r'--lr-decay-epoch \'30;60\': expected comma-separated whole epochs'),
    (['--scale-ratios', '1.0,big'], r'--scale-ratios \'1.0,big\': expected comma-separated numbers'),
    (['--video-loader', '--use-decord', '--data-dir', '/nonexistent'], r':1: video /nonexistent/.* does not exist'),
    (['--input-size', '64'], r'--input-size 64 is larger than the resized frames 53x40'),
])
def test_bad_flags_are_refused_before_training(flags, message, tiny_set, save_dir_with_history, capsys):
    before = snapshot(save_dir_with_history)
    args = train_command(tiny_set, save_dir_with_history, *flags)
    if '--video-loader' in flags:
        args += ['--train-list', tiny_set['train_list_videos'], '--val-list', tiny_set['val_list_videos']]
    with pytest.raises(UserError, match=message):
        tr.main(args)
    assert snapshot(save_dir_with_history) == before


def test_unwritable_save_dir_is_refused(tiny_set, tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a folder')
    with pytest.raises(UserError, match=r'--save-dir .*a-file/run cannot be created: .*a-file is not a folder'):
        tr.main(train_command(tiny_set, blocker / 'run'))


def test_existing_run_is_not_overwritten_without_auto_resume(tiny_set, tmp_path):
    save = tmp_path / 'done'
    save.mkdir()
    (save / 'metrics.csv').write_text('epoch\n0\n')
    with pytest.raises(UserError, match='already holds a run .* --auto-resume'):
        tr.main(train_command(tiny_set, save))
    assert (save / 'metrics.csv').read_text() == 'epoch\n0\n'


@pytest.mark.slow
def test_resume_params_of_another_class_count_is_one_clear_error(tiny_set, tmp_path):
    first = tmp_path / 'first'
    assert run_trainer(train_command(tiny_set, first, '--num-epochs', '1', '--train-only')).returncode == 0
    params = str(first / 'ucf101-vgg16_ucf101-000.params')
    save = tmp_path / 'second'
    args = train_command(tiny_set, save, '--resume-params', params, '--model', 'vgg16_ucf101')
    args[args.index('--num-classes') + 1] = '5'
    with open(tiny_set['train_list_rawframes']) as f:
        assert f.read()   # labels 0..2 fit 5 classes too
    result = run_trainer(args)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert '%s does not fit --model vgg16_ucf101 with --num-classes 5' % params in result.stderr
    assert not (save / 'train.log').exists()


def corrupt_copy(data, tmp_path):
    """A copy of the frame folders with one frame replaced by garbage bytes."""
    root = tmp_path / 'frames'
    shutil.copytree(data['rawframes_dir'], root)
    clip = good_line(data, 2).split()[0]
    bad = root / clip / 'img_00006.jpg'
    bad.write_bytes(b'this is not a jpeg')
    return str(root), str(bad)


def test_check_data_reports_every_broken_frame_and_does_not_train(tiny_set, tmp_path, capsys):
    assert tr.main(train_command(tiny_set, tmp_path / 'unused', '--check-data')) is None
    assert 'checked 18 clips: every frame decodes' in capsys.readouterr().out
    root, bad = corrupt_copy(tiny_set, tmp_path)
    with pytest.raises(UserError, match=r'1 of 18 clips are broken:\n  %s cannot be read' % bad):
        tr.main(train_command(tiny_set, tmp_path / 'unused', '--check-data', '--data-dir', root))
    assert not (tmp_path / 'unused').exists()


@pytest.mark.slow
def test_broken_sample_during_training_is_named_or_skipped_and_counted(tiny_set, tmp_path):
    root, bad = corrupt_copy(tiny_set, tmp_path)
    # 12 frames, 12 segments: every frame is read, so the broken one is met in epoch 0.
    flags = ('--data-dir', root, '--num-segments', '12', '--num-epochs', '1', '--train-only')
    result = run_trainer(train_command(tiny_set, tmp_path / 'strict', *flags))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert '%s cannot be read or decoded as an image' % bad in result.stderr and '--skip-bad-samples' in result.stderr
    result = run_trainer(train_command(tiny_set, tmp_path / 'lenient', *flags, '--skip-bad-samples'))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = (tmp_path / 'lenient' / 'metrics.csv').read_text().splitlines()
    assert rows[0].endswith('bad_samples') and int(rows[1].split(',')[-1]) >= 1
    assert 'broken samples were replaced' in (tmp_path / 'lenient' / 'train.log').read_text()


@pytest.mark.slow
def test_kill9_then_auto_resume_equals_the_uninterrupted_run_of_the_same_seed(tiny_set, tmp_path):
    """Also shows that a seed fixes the whole run: the killed run uses -j 0, the straight one -j 2."""
    args = ['--batch-norm', '--lr', '0.001', '--seed', '7', '--num-epochs', '2']
    straight = tmp_path / 'straight'
    assert run_trainer(train_command(tiny_set, straight, *args, '-j', '2')).returncode == 0

    killed = tmp_path / 'killed'
    cmd = [sys.executable, os.path.join(REPO, 'train_recognizer.py')] + train_command(tiny_set, killed, *args)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = killed / 'resume' / 'epoch-001-iter-00000.json'
    deadline = time.time() + 240
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert marker.exists() and not (killed / 'ucf101-vgg16_ucf101-001.params').exists()
    result = run_trainer(train_command(tiny_set, killed, *args, '--auto-resume'))
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'resumed from %s' % str(marker)[:-5] in result.stderr
    assert metrics_without_timing(killed) == metrics_without_timing(straight)
    assert len(metrics_without_timing(killed)) == 3
    name = 'ucf101-vgg16_ucf101-001.params'
    assert (killed / name).read_bytes() == (straight / name).read_bytes()


@pytest.mark.slow
def test_sigterm_to_the_process_group_checkpoints_and_auto_resume_finishes(tiny_set, tmp_path):
    """SIGTERM as a batch system sends it: to the trainer and its loader workers at once."""
    save = tmp_path / 'term'
    args = train_command(tiny_set, save, '--num-epochs', '3', '--log-interval', '1', '-j', '2')
    cmd = [sys.executable, os.path.join(REPO, 'train_recognizer.py')] + args
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        log = save / 'train.log'
        if log.exists() and 'Epoch[001] Batch [0001]' in log.read_text():
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert 'Traceback' not in err and 'Resume with the same command plus --auto-resume' in err
    assert err.count('received SIGTERM') == 1     # the workers exit quietly
    points = sorted(os.listdir(save / 'resume'))
    assert points and points[-1].startswith('epoch-001-iter-') and not points[-1].endswith('iter-00000.json')
    result = run_trainer(args + ['--auto-resume'])
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'received SIGTERM' not in result.stderr   # pool shutdown at the end is not a stop request
    epochs = [line.split(',')[0] for line in (save / 'metrics.csv').read_text().splitlines()[1:]]
    assert epochs == ['0', '1', '2']


@pytest.mark.slow
def test_non_finite_loss_stops_with_epoch_and_iteration(tiny_set, tmp_path):
    result = run_trainer(train_command(tiny_set, tmp_path / 'nan', '--lr', '1e8', '--log-interval', '1',
                                       '--num-epochs', '1'))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'training loss became nan in epoch 0 by iteration' in result.stderr


def test_short_clips_warn_once_with_their_count(tiny_set, tmp_path, caplog):
    opt = tr.check_args(tr.parse_args(train_command(tiny_set, tmp_path / 's', '--num-segments', '5',
                                                    '--new-step', '3')))
    with caplog.at_level('WARNING', logger='train_recognizer'):
        tr.read_lists(opt)
    warnings = [r.getMessage() for r in caplog.records if 'fewer than' in r.getMessage()]
    assert warnings == ['18 clips have fewer than 15 frames (num-segments x new-length x new-step); '
                        'their frames are repeated, as GluonCV does']
