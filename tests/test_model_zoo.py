"""scripts/model_zoo/*.sh: one script per GluonCV UCF101 model-zoo row.

Each script's printed command is compared flag by flag with GluonCV's published command line
(hard-coded below: it is the spec), its GPU-count scaling is checked, and every script runs in
smoke mode (SMOKE=1: a few CPU iterations at a tiny input size) to the end.
"""
import os
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognizer.synthetic import make_synthetic_ucf101  # noqa: E402

SCRIPTS = os.path.join(REPO, 'scripts', 'model_zoo')
SWITCHES = {'--use-tsn', '--partial-bn', '--no-pretrained-base', '--use-kinetics-pretrain'}


def flags(line):
    """'--a 1 --b --c x' -> {'--a': '1', '--b': True, '--c': 'x'}; a repeated flag: the last value, as argparse."""
    tokens, out = line.split(), {}
    i = 0
    while i < len(tokens):
        name = tokens[i]
        assert name.startswith('-'), name
        if name in SWITCHES:
            out[name], i = True, i + 1
        else:
            out[name], i = tokens[i + 1], i + 2
    return out


# GluonCV's published 8-GPU command lines (batch size per GPU), from its model-zoo training commands.
COMMON_2D = flags('--mode hybrid --num-classes 101 --num-gpus 8 --num-data-workers 32 --lr-mode step --lr 0.001 '
                  '--momentum 0.9 --wd 0.0005 --lr-decay 0.1 --lr-decay-epoch 30,60,80 --num-epochs 80 '
                  '--save-frequency 5 --log-interval 10')
I3D = flags('--dataset ucf101 --mode hybrid --dtype float32 --prefetch-ratio 1.0 --model i3d_resnet50_v1_ucf101 '
            '--num-classes 101 --batch-size 8 --num-gpus 8 --num-data-workers 32 --input-size 224 --new-height 256 '
            '--new-width 340 --new-length 32 --new-step 2 --lr 0.001 --lr-decay 0.1 --lr-mode step '
            '--lr-decay-epoch 20,40,50 --momentum 0.9 --wd 0.0001 --num-epochs 50 --scale-ratios 1.0,0.8 '
            '--save-frequency 5 --clip-grad 40 --log-interval 20')
PUBLISHED = {
    'vgg16_ucf101_tsn': dict(COMMON_2D, **flags(
        '--model vgg16_ucf101 --batch-size 25 --num-segments 3 --use-tsn --new-height 256 --new-width 340 '
        '--input-size 224')),
    'vgg16_ucf101': dict(COMMON_2D, **flags(
        '--model vgg16_ucf101 --batch-size 25 --new-height 256 --new-width 340 --input-size 224')),
    'inceptionv3_ucf101_tsn': dict(COMMON_2D, **flags(
        '--model inceptionv3_ucf101 --batch-size 15 --num-segments 3 --use-tsn --new-height 340 --new-width 450 '
        '--input-size 299 --clip-grad 40 --partial-bn')),
    'inceptionv3_ucf101': dict(COMMON_2D, **flags(
        '--model inceptionv3_ucf101 --batch-size 25 --new-height 340 --new-width 450 --input-size 299 '
        '--clip-grad 40 --partial-bn')),
    'i3d_resnet50_v1_ucf101': dict(I3D),
    # the same run, started from Kinetics400-trained I3D weights
    'i3d_resnet50_v1_ucf101_kinetics400': dict(I3D, **{'--use-kinetics-pretrain': True}),
}
TOP1 = {'vgg16_ucf101_tsn': '83.4', 'vgg16_ucf101': '81.5', 'inceptionv3_ucf101_tsn': '88.1',
        'inceptionv3_ucf101': '85.6', 'i3d_resnet50_v1_ucf101': '83.9', 'i3d_resnet50_v1_ucf101_kinetics400': '95.4'}
# What smoke mode may change: devices, sizes, epochs and data; never an optimisation flag.
SMOKE_MAY_CHANGE = {'--num-gpus', '--batch-size', '--num-data-workers', '--num-epochs', '--input-size',
                    '--new-height', '--new-width', '--new-length'}
RUN_FLAGS = {'--data-dir', '--train-list', '--val-list', '--save-dir'}


def run_script(name, tmp_path, *args, **env):
    full_env = {k: v for k, v in os.environ.items()
                if k not in ('SMOKE', 'DRY_RUN', 'NUM_GPUS', 'DATA_DIR', 'TRAIN_LIST', 'VAL_LIST', 'SAVE_DIR')}
    full_env.update(PYTHON=sys.executable, MXNET_HOME=str(tmp_path / 'mxnet_home'))
    full_env.update(env)
    return subprocess.run(['bash', os.path.join(SCRIPTS, name + '.sh')] + list(args), env=full_env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=600)


def printed_command(stdout):
    """(python, script, flags) of the '+ ...' line a script prints before it runs the command."""
    lines = [line for line in stdout.splitlines() if line.startswith('+ ')]
    assert len(lines) == 1, stdout
    words = shlex.split(lines[0][2:])
    assert words[1].endswith('train_recognizer.py'), words
    return words[0], words[1], flags(' '.join(shlex.quote(w) for w in words[2:]))


def test_one_script_per_row_named_as_gluoncv():
    assert sorted(f[:-3] for f in os.listdir(SCRIPTS) if f.endswith('.sh') and f != 'common.sh') == sorted(PUBLISHED)
    for name, top1 in TOP1.items():
        with open(os.path.join(SCRIPTS, name + '.sh')) as f:
            assert 'top-1 %s' % top1 in f.read()


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_published_command_flag_by_flag(name, tmp_path):
    done = run_script(name, tmp_path, DRY_RUN='1')
    assert done.returncode == 0, done.stderr
    python, script, got = printed_command(done.stdout)
    assert python == sys.executable and script == os.path.join(REPO, 'train_recognizer.py')
    home = os.path.expanduser('~')
    assert {k: got.pop(k) for k in RUN_FLAGS} == {
        '--data-dir': home + '/.mxnet/datasets/ucf101/rawframes',
        '--train-list': home + '/.mxnet/datasets/ucf101/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt',
        '--val-list': home + '/.mxnet/datasets/ucf101/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt',
        '--save-dir': 'params/' + name}
    assert got == PUBLISHED[name]


@pytest.mark.parametrize('gpus,batch,accumulate,lr', [('4', '25', '2', '0.001'), ('2', '25', '4', '0.001'),
                                                      ('0', '25', '8', '0.001'), ('5', '20', '2', '0.001'),
                                                      ('3', '22', '3', '0.00099'), ('16', '13', None, '0.00104')])
def test_fewer_gpus_keep_total_batch_and_lr(gpus, batch, accumulate, lr, tmp_path):
    done = run_script('vgg16_ucf101_tsn', tmp_path, DRY_RUN='1', NUM_GPUS=gpus)
    assert done.returncode == 0, done.stderr
    got = printed_command(done.stdout)[2]
    got_scaling = (got['--num-gpus'], got['--batch-size'], got.get('--accumulate'), got['--lr'])
    assert got_scaling == (gpus, batch, accumulate, lr)
    total = max(int(gpus), 1) * int(batch) * int(accumulate or 1)
    assert ('total batch %d' % total) in done.stdout
    assert ('scaled linearly to %s' % lr in done.stdout) == (total != 200)


def test_i3d_on_two_gpus_accumulates_to_the_published_64(tmp_path):
    done = run_script('i3d_resnet50_v1_ucf101_kinetics400', tmp_path, DRY_RUN='1', NUM_GPUS='2')
    got = printed_command(done.stdout)[2]
    assert (got['--batch-size'], got['--accumulate'], got['--lr'], got['--use-kinetics-pretrain']) == (
        '8', '4', '0.001', True)


def test_paths_from_the_environment_and_extra_arguments_last(tmp_path):
    done = run_script('vgg16_ucf101', tmp_path, '--num-epochs', '3', '--tensorboard', DRY_RUN='1',
                      DATA_DIR='/data/ucf 101/rawframes', VAL_LIST='/lists/val.txt', SAVE_DIR='/runs/a')
    assert done.returncode == 0, done.stderr
    words = shlex.split([line for line in done.stdout.splitlines() if line.startswith('+ ')][0][2:])
    assert words[-3:] == ['--num-epochs', '3', '--tensorboard']   # argparse: the last value wins
    pairs = dict(zip(words, words[1:]))
    assert pairs['--data-dir'] == '/data/ucf 101/rawframes'
    assert pairs['--train-list'] == '/data/ucf 101/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt'
    assert (pairs['--val-list'], pairs['--save-dir']) == ('/lists/val.txt', '/runs/a')


def test_bad_gpu_count_and_python_without_mxnet_stop_with_a_message(tmp_path):
    done = run_script('vgg16_ucf101', tmp_path, DRY_RUN='1', NUM_GPUS='two')
    assert done.returncode == 2 and 'NUM_GPUS=two' in done.stderr
    done = run_script('vgg16_ucf101', tmp_path, DRY_RUN='1', PYTHON='/bin/false')
    assert done.returncode == 2 and 'PYTHON=/bin/false cannot import mxnet' in done.stderr


@pytest.fixture(scope='module')
def given_set(tmp_path_factory):
    """A set the scripts did not make: make_synthetic_ucf101's defaults (24 frames of 80x64)."""
    return make_synthetic_ucf101(str(tmp_path_factory.mktemp('given') / 'syn'), num_classes=4, videos=False, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_smoke_mode_runs_the_same_flags_to_the_end(name, tmp_path, given_set):
    # One training batch of 2 clips and one validation clip keep the six runs quick.
    env = dict(SMOKE='1', SAVE_DIR=str(tmp_path / 'out'), SMOKE_TRAIN_CLIPS='2', SMOKE_VAL_CLIPS='1')
    if name.startswith(('vgg16', 'i3d_resnet50_v1_ucf101_k')):   # the others generate their own data
        env.update(DATA_DIR=given_set['rawframes_dir'], TRAIN_LIST=given_set['train_list_rawframes'],
                   VAL_LIST=given_set['val_list_rawframes'])
    done = run_script(name, tmp_path, '--log-interval', '1', **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = printed_command(done.stdout)[2]
    published = dict(PUBLISHED[name], **{'--log-interval': '1'})
    changed = {k for k in set(got) | set(published) if got.get(k) != published.get(k)}
    assert changed <= SMOKE_MAY_CHANGE | RUN_FLAGS | {'--no-pretrained-base'}, changed
    assert (got['--num-gpus'], got['--num-epochs'], got['--no-pretrained-base']) == ('0', '1', True)
    outputs = os.listdir(str(tmp_path / 'out'))
    assert 'metrics.csv' in outputs and any(f.endswith('-000.params') for f in outputs)
    with open(str(tmp_path / 'out' / 'metrics.csv')) as f:
        assert len(f.read().splitlines()) == 2   # header + one epoch
    if 'DATA_DIR' in env:
        assert got['--data-dir'] == given_set['rawframes_dir']
        with open(os.path.join(str(tmp_path / 'out'), 'train.log')) as f:
            assert '2 training and 1 validation clips' in f.read()   # the lists, cut to a few clips
    else:
        assert not os.path.exists(got['--data-dir'])   # the generated set is removed afterwards
