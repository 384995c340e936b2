"""INT8 with test_recognizer.py: --calibration writes a pair, --deploy and --quantized evaluate it like FP32."""
import json
import os
from types import SimpleNamespace

import pytest

from recognizer import quantize
from recognizer.errors import UserError
from test_evaluation import eval_args, printed_top1, read_csv, run_script, train_checkpoint


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.getbasetemp())


@pytest.fixture(scope='module')
def calibrated(checkpoint, tmp_path_factory):
    """The naive-mode INT8 pair of the test checkpoint, calibrated on 2 clips x 5 segments."""
    root, params = checkpoint
    out = tmp_path_factory.mktemp('int8')
    done = run_script(eval_args(root, params, out, '--num-segments', '5', '--calibration', '--calib-mode', 'naive',
                                '--num-calib-batches', '2', '--batch-size', '1'))
    assert done.returncode == 0, done.stderr
    return out, done


def on_training_clips(root, params, save_dir, *extra):
    """eval_args on the 24 training clips: more clips than the 4 held-out ones, for comparing FP32 and INT8."""
    args = eval_args(root, params, save_dir, '--num-segments', '5', *extra)
    args[args.index('--val-list') + 1] = os.path.join(root, 'syn', 'ucfTrainTestlist',
                                                      'ucf101_train_split_1_rawframes.txt')
    return args


def test_spread_indices_cover_the_list_evenly():
    assert quantize.spread_indices(40, 4) == [0, 10, 20, 30]
    assert quantize.spread_indices(3, 8) == [0, 1, 2]
    assert quantize.spread_indices(7, 1) == [0]


@pytest.mark.slow
def test_calibration_writes_the_named_pair_and_keeps_dense_layers_fp32(calibrated):
    out, done = calibrated
    prefix = os.path.join(str(out), 'vgg16_ucf101-quantized-naive')
    assert sorted(os.listdir(out)) == ['vgg16_ucf101-quantized-naive-0000.params',
                                       'vgg16_ucf101-quantized-naive-symbol.json']
    assert 'kept in FP32: vgg0_dense0_fwd, vgg0_dense1_fwd, dense' in done.stderr
    assert 'on 10 views of 2 clips' in done.stderr
    with open(prefix + '-symbol.json') as f:
        ops = {node['op'] for node in json.load(f)['nodes']}
    assert {'_contrib_quantize_v2', '_sg_mkldnn_conv'} <= ops          # INT8 convolutions
    assert 'Test accuracy' not in done.stdout                          # calibration only, as GluonCV


@pytest.mark.slow
def test_deployed_int8_pair_is_evaluated_with_the_fp32_reports_and_accuracy(checkpoint, calibrated, tmp_path):
    root, params = checkpoint
    prefix = os.path.join(str(calibrated[0]), 'vgg16_ucf101-quantized-naive')
    fp32 = run_script(on_training_clips(root, params, tmp_path / 'fp32'))
    int8 = run_script(on_training_clips(root, 'unused.params', tmp_path / 'int8', '--deploy', '--model-prefix',
                                        prefix))
    assert fp32.returncode == 0 and int8.returncode == 0, int8.stderr
    summaries = []
    for name in ('fp32', 'int8'):
        with open(tmp_path / name / 'summary.json') as f:
            summaries.append(json.load(f))
        assert len(read_csv(tmp_path / name / 'predictions.csv')) == 24
    assert set(summaries[0]) == set(summaries[1]) and summaries[1]['clips'] == 24
    assert summaries[1]['params'] == prefix + '-0000.params'
    assert printed_top1(int8.stdout) == pytest.approx(summaries[1]['top1'])
    assert summaries[0]['top1'] >= 0.75                                   # chance is 0.25
    assert summaries[1]['top1'] >= summaries[0]['top1'] - 0.05


@pytest.mark.slow
def test_quantized_flag_calibrates_in_memory_and_evaluates(checkpoint, tmp_path):
    root, params = checkpoint
    done = run_script(eval_args(root, params, tmp_path / 'q', '--num-segments', '3', '--quantized',
                                '--calib-mode', 'entropy', '--num-calib-batches', '2', '--batch-size', '1'))
    assert done.returncode == 0, done.stderr
    assert 'calibrating (entropy, auto) on 6 views of 2 clips' in done.stderr
    with open(tmp_path / 'q' / 'summary.json') as f:
        assert json.load(f)['clips'] == 4
    assert not [n for n in os.listdir(tmp_path / 'q') if n.endswith('.params')]


@pytest.mark.slow
def test_benchmark_prints_clips_per_second_of_fp32_and_int8(checkpoint, calibrated):
    root, params = checkpoint
    prefix = os.path.join(str(calibrated[0]), 'vgg16_ucf101-quantized-naive')
    for extra in ([], ['--deploy', '--model-prefix', prefix]):
        done = run_script(eval_args(root, params, '/nonexistent/never-written', '--num-segments', '3', '--benchmark',
                                    '--num-iterations', '3', '--batch-size', '2', *extra))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert lines[-1].startswith('clips/s: ') and float(lines[-1].split()[1]) > 0
        assert 'With batch size 2 (3 views per clip), 3 batches' in lines[-2]
    assert not os.path.exists('/nonexistent/never-written')


@pytest.mark.slow
def test_a_deployed_pair_for_other_classes_or_missing_files_is_a_user_error(checkpoint, calibrated, tmp_path):
    root, params = checkpoint
    prefix = os.path.join(str(calibrated[0]), 'vgg16_ucf101-quantized-naive')
    args = eval_args(root, params, tmp_path / 'e', '--deploy', '--model-prefix', prefix, '--num-classes', '5')
    del args[args.index('--class-index'):args.index('--class-index') + 2]
    done = run_script(args)
    assert done.returncode == 2 and done.stderr.count('\n') == 1
    assert 'gives (1, 4) for one view, not (1, 5): pass --num-classes 4' in done.stderr
    done = run_script(eval_args(root, params, tmp_path / 'f', '--deploy', '--model-prefix', tmp_path / 'nothing'))
    assert done.returncode == 2 and 'nothing-symbol.json does not exist' in done.stderr
    assert not os.path.exists(tmp_path / 'f')                  # refused before anything is written


@pytest.mark.parametrize('change, message', [
    (dict(deploy=True), '--deploy needs --model-prefix'),
    (dict(model_prefix='p'), 'read with --deploy only'),
    (dict(calibration=True, num_gpus=1), 'INT8 networks run on the CPU'),
    (dict(calibration=True, deploy=True, model_prefix='p'), 'exclude each other'),
    (dict(num_calib_batches=0), '--num-calib-batches must be at least 1'),
    (dict(quantized=True, slowfast=True), '--slowfast networks have no INT8 or deployed path'),
])
def test_int8_flags_that_cannot_work_are_refused(change, message):
    opt = dict(calibration=False, quantized=False, deploy=False, model_prefix=None, num_gpus=0, num_calib_batches=5,
               num_iterations=100, batch_size=1, resume_params='', use_pretrained=False, slowfast=False,
               benchmark=False)
    opt.update(change)
    with pytest.raises(UserError, match=message):
        quantize.check_int8_args(SimpleNamespace(**opt))


def test_deploy_takes_its_weights_from_the_prefix(tmp_path):
    for suffix in ('-symbol.json', '-0000.params'):
        (tmp_path / ('x' + suffix)).write_text('')
    opt = SimpleNamespace(calibration=False, quantized=False, deploy=True, model_prefix=str(tmp_path / 'x'),
                          num_gpus=0, num_calib_batches=5, num_iterations=100, batch_size=1, resume_params='',
                          use_pretrained=True, slowfast=False, benchmark=False)
    quantize.check_int8_args(opt)
    assert opt.resume_params == str(tmp_path / 'x-0000.params') and not opt.use_pretrained


def test_the_zoo_int8_model_offline_names_the_missing_weight_file(tmp_path, monkeypatch):
    import mxnet as mx
    monkeypatch.setenv('MXNET_HOME', str(tmp_path))
    with pytest.raises(UserError) as err:
        quantize.zoo_int8_network(SimpleNamespace(model='vgg16_ucf101'), [mx.cpu()])
    assert 'vgg16_ucf101-' in str(err.value) and os.path.join(str(tmp_path), 'models') in str(err.value)
    with pytest.raises(UserError, match='the model zoo has no i3d_resnet50_v1_ucf101_int8'):
        quantize.zoo_int8_network(SimpleNamespace(model='i3d_resnet50_v1_ucf101'), [mx.cpu()])
