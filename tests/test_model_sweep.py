"""Every video recognizer of gluoncv's model zoo trains here: offline, from scratch, on the CPU.

The model list comes from gluoncv itself (recognizer.zoo.video_models); its length is pinned so
that a new gluoncv version, with new models, is noticed. Each model runs train_recognizer.main
with the flags recognizer.zoo says it needs (its smallest input, at least 64 px) on a tiny
generated set: one training step and one validation batch, nothing downloaded. Models run in
two processes, with and without oneDNN: MXNet reads that switch once per process, and 3-D
networks with BatchNorm need it off (recognizer.models.avoid_onednn_conv3d_batchnorm_crash).

At 32 px the last feature maps of most networks are 1x1, and BatchNorm statistics over 2 clips
of 1x1 maps blow the first step up: validation loss was NaN for 20 of the 54 models (resnet34/50,
I3D, P3D, i3d_slow) and above 1e15 for two more. At 64 px (2x2 maps) all but those two are finite.

The full sweep is ``python -m pytest -m zoo tests/test_model_sweep.py``; the default run trains
one representative of each of the eight cheaper families and SlowFast (its own sampling, 5-D input
and NAG), and checks the input table of one model of every family but C3D.
"""
import csv
import json
import math
import os
import subprocess
import sys

import mxnet as mx
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognizer import zoo  # noqa: E402
from recognizer.errors import UserError  # noqa: E402
from recognizer.models import build_network  # noqa: E402
from recognizer.synthetic import make_synthetic_ucf101  # noqa: E402

GLUONCV_0_10_5_VIDEO_MODELS = 54
GLUONCV_0_10_5_INT8_VIDEO_MODELS = 5
MIN_SWEEP_SIZE = 64
# One per family, the cheapest of each; the default run trains the first eight (about a minute)
# and SlowFast, the only family with its own sampling and optimizer, and leaves C3D, I3D-InceptionV3
# and i3d_slow (15-40 s each here) to the zoo sweep.
REPRESENTATIVES = ['vgg16_ucf101', 'inceptionv1_ucf101', 'inceptionv3_ucf101', 'resnet18_v1b_kinetics400',
                   'p3d_resnet50_kinetics400', 'r2plus1d_resnet18_kinetics400', 'i3d_resnet50_v1_ucf101',
                   'i3d_inceptionv1_kinetics400',
                   'c3d_kinetics400', 'i3d_inceptionv3_kinetics400', 'i3d_slow_resnet101_f16s4_kinetics700',
                   'slowfast_4x16_resnet50_kinetics400']
TRAINED_BY_DEFAULT = REPRESENTATIVES[:8] + ['slowfast_4x16_resnet50_kinetics400']

# train_recognizer.main for each (model, argv); checkpoints are removed after each run (up to 0.7 GB a model).
RUN_MODELS = r'''
import glob, json, os, shutil, sys, time, traceback
sys.path.insert(0, sys.argv[1])
import train_recognizer as tr
from recognizer.errors import UserError
for model, argv in json.loads(sys.argv[2]):
    start = time.time()
    try:
        result = {'code': tr.main(argv)}
    except UserError as err:
        result = {'error': 'UserError: %s' % err}
    except Exception:
        result = {'error': traceback.format_exc()[-3000:]}
    result['seconds'] = round(time.time() - start, 1)
    save_dir = argv[argv.index('--save-dir') + 1]
    for path in glob.glob(os.path.join(save_dir, '*.params')) + glob.glob(os.path.join(save_dir, '*.states')):
        os.remove(path)
    shutil.rmtree(os.path.join(save_dir, 'resume'), ignore_errors=True)
    print('RESULT ' + json.dumps([model, result]), flush=True)
'''


def test_the_zoo_list_comes_from_gluoncv_and_has_the_expected_length():
    models = zoo.video_models()
    assert len(models) == GLUONCV_0_10_5_VIDEO_MODELS, 'gluoncv changed its zoo: update the layout table'
    assert len(zoo.int8_video_models()) == GLUONCV_0_10_5_INT8_VIDEO_MODELS
    assert set(REPRESENTATIVES) <= set(models)
    assert {zoo.input_layout(m).family for m in REPRESENTATIVES} == {zoo.input_layout(m).family for m in models}


def sweep_input(model):
    """(frames per segment, crop px) the sweep trains ``model`` at: its smallest, at least 64 px."""
    return zoo.smallest_input(model, floor=MIN_SWEEP_SIZE)


def representatives_by_default(models, default=REPRESENTATIVES):
    """``models`` as parameters, all but ``default`` marked zoo (deselected unless -m zoo)."""
    return [pytest.param(m, marks=() if m in default else pytest.mark.zoo) for m in models]


def takes(net, layout, frames, size):
    """Whether a forward pass of 1 clip of ``frames`` x ``size`` px gives one row of class scores."""
    shape = (1, 3, size, size) if layout.kind == '2d' else (1, 3, frames, size, size)
    try:
        out = net(mx.nd.random.uniform(shape=shape))
        out.wait_to_read()
    except mx.base.MXNetError:
        try:
            # A failed Reshape leaves an error pending in MXNet's engine that the next pass would raise.
            mx.nd.waitall()
        except mx.base.MXNetError:
            pass
        return False
    return out.shape == (1, 3)


def region_probes(region):
    """(frames, size, expected) at the corners of an accepted region and just outside them."""
    (min_frames, max_frames), (min_size, max_size) = region
    probes = [(min_frames, min_size, True), (min_frames - 1, min_size, False), (min_frames, min_size - 1, False)]
    if max_frames is not None:
        probes += [(max_frames, min_size, True), (max_frames + 1, min_size, False)]
    if max_size is not None:
        probes += [(min_frames, max_size, True), (min_frames, max_size + 1, False)]
    return [(f, s, expected) for f, s, expected in probes if f >= 1 and s >= 1]


# C3D's three regions take about 30 s of forward passes: checked in the zoo sweep.
@pytest.mark.parametrize('model', representatives_by_default(
    zoo.video_models(), default=[m for m in REPRESENTATIVES if m != 'c3d_kinetics400']))
def test_input_table_matches_the_network(model, tmp_path, monkeypatch):
    """Each accepted region's corners work and one frame or pixel beyond them does not (forward passes)."""
    monkeypatch.setenv('MXNET_HOME', str(tmp_path))
    layout = zoo.input_layout(model)
    for region in layout.regions:
        net = build_network(model, 3, [mx.cpu()], pretrained_base=False)   # fresh: no size fixed yet
        for frames, size, expected in region_probes(region):
            if layout.kind == '2d' and frames != 1:
                continue
            assert takes(net, layout, frames, size) == expected, (frames, size)
    if layout.kind == 'slowfast':
        assert layout.slowfast == (net.fast_frames, net.slow_frames)
    kinds = set()
    net.apply(lambda block: kinds.add(type(block)))
    assert without_onednn(model) == (any(issubclass(k, mx.gluon.nn.Conv3D) for k in kinds)
                                     and any(issubclass(k, mx.gluon.nn.BatchNorm) for k in kinds))
    assert not os.listdir(str(tmp_path))   # built offline: nothing fetched


@pytest.fixture(scope='module')
def sweep_data(tmp_path_factory):
    """2 classes, one training batch of 2 clips and one validation batch of 2, 12 frames of 40x32."""
    root = tmp_path_factory.mktemp('sweep')
    return make_synthetic_ucf101(str(root / 'syn'), num_classes=2, train_per_class=1, val_per_class=1,
                                 num_frames=12, width=40, height=32, videos=False, seed=5)


def command(model, data, save_dir):
    frames, size = sweep_input(model)
    return (['--model', model, '--num-classes', '2', '--no-pretrained-base', '--data-dir', data['rawframes_dir'],
             '--train-list', data['train_list_rawframes'], '--val-list', data['val_list_rawframes'],
             '--new-height', str(size), '--new-width', str(size + size // 4), '--batch-size', '2', '--num-epochs',
             '1', '--lr', '0.001', '-j', '0', '--log-interval', '1', '--save-dir', str(save_dir)]
            + zoo.input_flags(model, frames, size))


def without_onednn(model):
    """Whether build_network turns oneDNN off for ``model``: 3-D networks with BatchNorm, i.e. all but C3D."""
    layout = zoo.input_layout(model)
    return layout.kind != '2d' and layout.family != 'c3d'


def run_models(models, data, out_dir, timeout):
    """train_recognizer.main for each model, one process with oneDNN and one without; {model: result}."""
    env = dict(os.environ, MXNET_HOME=str(out_dir / 'mxnet_home'))
    env.pop('MXNET_MKLDNN_ENABLED', None)
    results = {}
    for group in (False, True):
        batch = [(m, command(m, data, out_dir / m)) for m in models if without_onednn(m) == group]
        if not batch:
            continue
        done = subprocess.run([sys.executable, '-c', RUN_MODELS, REPO, json.dumps(batch)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
        for line in done.stdout.splitlines():
            if line.startswith('RESULT '):
                model, result = json.loads(line[len('RESULT '):])
                results[model] = result
        for model, _ in batch:
            results.setdefault(model, {'error': 'the process ended (%d) before this model: %s'
                                                % (done.returncode, done.stderr[-3000:])})
    return results


def check_trained(model, result, out_dir):
    assert 'error' not in result, result['error']
    assert result['code'] == 0
    with open(str(out_dir / model / 'metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    assert math.isfinite(float(rows[0]['train_loss'])) and math.isfinite(float(rows[0]['val_loss']))
    assert 0 <= float(rows[0]['val_top1']) <= 1
    models_dir = out_dir / 'mxnet_home' / 'models'
    assert not models_dir.exists() or not os.listdir(str(models_dir))   # nothing was downloaded


@pytest.fixture(scope='module')
def representatives(sweep_data, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('representatives')
    return run_models(TRAINED_BY_DEFAULT, sweep_data, out_dir, timeout=900), out_dir


@pytest.mark.slow
@pytest.mark.parametrize('model', TRAINED_BY_DEFAULT)
def test_one_model_per_family_trains_a_step_and_validates(model, representatives):
    results, out_dir = representatives
    check_trained(model, results[model], out_dir)


@pytest.fixture(scope='module')
def full_sweep(sweep_data, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('zoo')
    results = run_models(zoo.video_models(), sweep_data, out_dir, timeout=3 * 3600)
    print('\nper-model seconds: %s' % json.dumps({m: r.get('seconds') for m, r in results.items()}))
    return results, out_dir


@pytest.mark.zoo
@pytest.mark.parametrize('model', zoo.video_models())
def test_every_zoo_model_trains_a_step_and_validates(model, full_sweep):
    """Also the models of TRAINED_BY_DEFAULT: the zoo sweep is the complete record, timed as one."""
    results, out_dir = full_sweep
    check_trained(model, results[model], out_dir)


@pytest.mark.parametrize('model', zoo.int8_video_models())
def test_int8_models_are_refused_for_training_with_the_int8_tools_named(model):
    with pytest.raises(UserError) as err:
        zoo.check_input(model)
    message = str(err.value)
    assert 'INT8' in message and '--calibration' in message and '--model %s ' % model[:-len('_int8')] in message


@pytest.mark.parametrize('argv,message', [
    (['--model', 'c3d_kinetics400'], '--model c3d_kinetics400 takes 5-D input: add --input-5d --new-length 16'),
    (['--model', 'p3d_resnet50_kinetics400', '--new-length', '8'],
     '--new-length 8: --model p3d_resnet50_kinetics400 takes 16-31 frames per segment; e.g. --input-5d '
     '--new-length 16'),
    (['--model', 'vgg16_ucf101', '--new-length', '4'],
     '--model vgg16_ucf101 is a 2-D network: it takes one frame per segment (4-D input); drop --new-length 4'),
    (['--model', 'inceptionv3_ucf101', '--input-size', '224'],
     '--input-size 224: --model inceptionv3_ucf101 takes crops of 299-554 px'),
    (['--model', 'c3d_kinetics400', '--new-length', '16', '--input-size', '224'],
     '--input-size 224 with 16 frames per segment: --model c3d_kinetics400 takes 16-31 frames at 96-127 px or '
     '64-79 frames at 32-63 px or 256-271 frames at 16-31 px'),
    (['--model', 'slowfast_4x16_resnet50_kinetics400', '--new-length', '64'],
     '--model slowfast_4x16_resnet50_kinetics400 takes 32 fast + 4 slow frames per segment (5-D input): add '
     '--input-5d --new-length 64 --slowfast --fast-temporal-stride 2 --slow-temporal-stride 16'),
    (['--model', 'slowfast_8x8_resnet50_kinetics400', '--slowfast', '--new-length', '64'],
     '--new-length 64 --fast-temporal-stride 2 --slow-temporal-stride 16 sample 32 fast + 4 slow frames, but '
     '--model slowfast_8x8_resnet50_kinetics400 takes 32 + 8'),
    (['--model', 'i3d_resnet50_v1_ucf101', '--new-length', '32', '--slowfast'],
     '--model i3d_resnet50_v1_ucf101 is not one; drop --slowfast'),
    (['--model', 'vgg16_ucf101_int8'], 'is an INT8 model for inference only'),
    (['--model', 'resnet50_v1b'], '--model resnet50_v1b is not a video recognizer of the GluonCV model zoo'),
])
def test_a_wrong_input_is_refused_by_the_argument_check_naming_the_flag(argv, message, tmp_path):
    import train_recognizer as tr
    with pytest.raises(UserError) as err:
        tr.check_args(tr.parse_args(argv + ['--save-dir', str(tmp_path / 'out')]))
    assert message in str(err.value)


def test_the_trainer_stops_before_any_work_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(REPO, 'train_recognizer.py'), '--model', 'c3d_kinetics400',
                           '--save-dir', str(tmp_path / 'out')], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert done.stderr == 'error: --model c3d_kinetics400 takes 5-D input: add --input-5d --new-length 16\n'
    assert not (tmp_path / 'out').exists()


def test_published_slowfast_command_line_passes_the_check():
    # GluonCV's Kinetics400 SlowFast 4x16 training line: 64 frames, strides 2 and 16, 224 px.
    layout = zoo.check_input('slowfast_4x16_resnet50_kinetics400', new_length=64, input_size=224, slowfast=True,
                             fast_temporal_stride=2, slow_temporal_stride=16)
    assert layout.slowfast == (32, 4)
    # Other strides giving the same frame counts are as good (32 frames, strides 1 and 8).
    zoo.check_input('slowfast_4x16_resnet50_kinetics400', new_length=32, input_size=224, slowfast=True,
                    fast_temporal_stride=1, slow_temporal_stride=8)
