"""The training CLI end to end, its GluonCV-compatible flags, the multi-context path, offline weights."""
import csv
import glob
import math
import shlex

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

import train_recognizer as tr
from recognizer.training import Objective, build_trainer, load_batch, train_step
from conftest import run_trainer, train_command

PUBLISHED_2D = ('--mode hybrid --num-classes 101 --num-gpus 8 --num-data-workers 32 --lr-mode step --lr 0.001 '
                '--momentum 0.9 --wd 0.0005 --lr-decay 0.1 --lr-decay-epoch 30,60,80 --num-epochs 80 '
                '--save-frequency 5 --log-interval 10')
PUBLISHED_RUNS = [
    '--model vgg16_ucf101 --batch-size 25 --num-segments 3 --use-tsn --new-height 256 --new-width 340 '
    '--input-size 224',
    '--model vgg16_ucf101 --batch-size 25 --new-height 256 --new-width 340 --input-size 224',
    '--model inceptionv3_ucf101 --batch-size 15 --num-segments 3 --use-tsn --new-height 340 --new-width 450 '
    '--input-size 299 --clip-grad 40 --partial-bn',
    '--model inceptionv3_ucf101 --batch-size 25 --new-height 340 --new-width 450 --input-size 299 --clip-grad 40 '
    '--partial-bn',
]
PUBLISHED_I3D = ('--dataset ucf101 --mode hybrid --dtype float32 --prefetch-ratio 1.0 --model i3d_resnet50_v1_ucf101 '
                 '--num-classes 101 --batch-size 8 --num-gpus 8 --num-data-workers 32 --input-size 224 '
                 '--new-height 256 --new-width 340 --new-length 32 --new-step 2 --lr 0.001 --lr-decay 0.1 '
                 '--lr-mode step --lr-decay-epoch 20,40,50 --momentum 0.9 --wd 0.0001 --num-epochs 50 '
                 '--scale-ratios 1.0,0.8 --save-frequency 5 --clip-grad 40 --log-interval 20')


@pytest.mark.parametrize('line', [PUBLISHED_2D + ' ' + run for run in PUBLISHED_RUNS] + [PUBLISHED_I3D])
def test_published_model_zoo_command_lines_parse_with_their_meaning(line):
    opt = tr.parse_args(shlex.split(line))
    assert opt.num_gpus == 8 and opt.num_workers == 32 and opt.mode == 'hybrid'
    assert opt.lr == 0.001 and opt.momentum == 0.9 and opt.lr_mode == 'step' and opt.lr_decay == 0.1
    assert opt.input_size in (224, 299) and opt.new_width in (340, 450)
    if 'i3d' in line:
        assert (opt.new_length, opt.new_step, opt.batch_size, opt.wd) == (32, 2, 8, 0.0001)
        assert opt.lr_decay_epoch == [20, 40, 50] and opt.scale_ratios == [1.0, 0.8] and opt.prefetch_ratio == 1.0
    else:
        assert opt.lr_decay_epoch == [30, 60, 80] and opt.num_epochs == 80 and opt.save_frequency == 5
        assert opt.use_tsn == ('--use-tsn' in line) and opt.num_segments == (3 if '--use-tsn' in line else 1)
        assert opt.partial_bn == ('inceptionv3' in line) and opt.clip_grad == (40 if 'inceptionv3' in line else 0)


def test_gluoncv_defaults_are_kept():
    opt = tr.parse_args(['--model', 'vgg16_ucf101'])
    assert (opt.batch_size, opt.num_workers, opt.num_epochs, opt.lr, opt.wd) == (25, 4, 3, 0.1, 0.0001)
    # GluonCV's string defaults '40,60' and '1.0, 0.875, 0.75, 0.66', parsed by the flags' types.
    assert (opt.lr_decay_epoch, opt.scale_ratios, opt.save_dir, opt.logging_file) == (
        [40, 60], [1.0, 0.875, 0.75, 0.66], 'params', 'train.log')
    assert opt.more_fix_crop is True and opt.max_distort == 1 and opt.num_segments == 1


def read_metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cli_trains_two_epochs_and_leaves_every_output(tiny_set, tmp_path):
    save = tmp_path / 'run'
    result = run_trainer(train_command(tiny_set, save, '--log-interval', '2'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    log = (save / 'train.log').read_text()
    assert '[Epoch 001] validation: acc-top1=' in log and 'samples/sec' in log
    assert glob.glob(str(save / '*-best.params')) and glob.glob(str(save / '*-best.states'))
    assert (save / 'ucf101-vgg16_ucf101-001.params').exists() and (save / 'ucf101-vgg16_ucf101-001.states').exists()
    rows = read_metrics(save / 'metrics.csv')
    assert [int(r['epoch']) for r in rows] == [0, 1]
    for row in rows:
        for key in ('lr', 'train_loss', 'train_acc', 'val_loss', 'val_top1', 'val_top5', 'samples_per_sec'):
            assert math.isfinite(float(row[key])), (key, row)
        assert 0 <= float(row['val_top1']) <= float(row['val_top5']) <= 1
    png = glob.glob(str(save / '*.png'))
    assert png and open(png[0], 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_cli_splits_batches_over_two_cpu_contexts(tiny_set, tmp_path):
    save = tmp_path / 'run2'
    result = run_trainer(train_command(tiny_set, save, '--cpu-contexts', '2', '--num-epochs', '1', '-j', '2',
                                       '--mode', 'hybrid'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'total batch 4 on [cpu(0), cpu(1)]' in (save / 'train.log').read_text()
    assert len(read_metrics(save / 'metrics.csv')) == 1


def test_missing_pretrained_weights_offline_give_one_clear_message(tiny_set, tmp_path):
    save = tmp_path / 'never'
    args = [a for a in train_command(tiny_set, save) if a != '--no-pretrained-base']
    result = run_trainer(args, env={'MXNET_HOME': str(tmp_path / 'empty_home')})
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(error) == 1
    assert 'vgg16-e660d456.params' in error[0] and str(tmp_path / 'empty_home' / 'models') in error[0]
    assert '--no-pretrained-base' in error[0]
    assert not save.exists()


def one_step_params(ctx, clips, labels):
    """Parameters after one SGD step of vgg16_ucf101 (dropout off) on the given batch."""
    opt = tr.parse_args(['--model', 'vgg16_ucf101', '--num-segments', '3', '--num-classes', '3',
                         '--no-pretrained-base', '--input-size', '32', '--batch-size', str(len(labels) // len(ctx)),
                         '--lr', '0.05'])
    mx.random.seed(11)
    net = tr.build_model(opt, ctx)
    net.apply(lambda block: setattr(block, '_rate', 0.0) if isinstance(block, gluon.nn.Dropout) else None)
    trainer = build_trainer(opt, net, None)
    data, label, _ = load_batch((clips, labels, 0), ctx)
    train_step(net, trainer, Objective(3), data, label, lambda x: tr.to_network_input(x, opt), len(labels))
    return {name: p.data(ctx[0]).asnumpy() for name, p in net.collect_params().items()}, net


def test_one_step_on_two_contexts_equals_one_step_on_one():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, size=(4, 3, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 2, 1, 2], dtype=np.int32)
    one, _ = one_step_params([mx.cpu(0)], clips, labels)
    two, net = one_step_params([mx.cpu(0), mx.cpu(1)], clips, labels)
    for name, p in net.collect_params().items():   # both replicas hold the same weights
        assert np.array_equal(p.data(mx.cpu(0)).asnumpy(), p.data(mx.cpu(1)).asnumpy()), name
    names = sorted(one)
    assert [n.split('_', 1)[1] for n in names] == [n.split('_', 1)[1] for n in sorted(two)]
    moved = 0
    for a, b in zip(names, sorted(two)):
        np.testing.assert_allclose(one[a], two[b], rtol=1e-4, atol=1e-6, err_msg=a)
        moved += 1
    assert moved == len(names) > 20
