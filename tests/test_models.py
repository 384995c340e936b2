"""The model-zoo networks the UCF101 rows need (recognizer.models), built offline.

vgg16_ucf101, inceptionv3_ucf101 and i3d_resnet50_v1_ucf101: construction from scratch with
the output shape for each TSN segment count, --partial-bn's parameter selection, the message
naming the missing weight file of each family, Kinetics400 weights for the I3D row, and the
5-D (N, 3, T, H, W) input the trainer feeds I3D.
"""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognizer import models  # noqa: E402
from recognizer.errors import UserError  # noqa: E402
from recognizer.models import build_network, first_batchnorm_params, trainable_params  # noqa: E402


def build(model, pretrained_base=False, **changes):
    """A 101-class network on the CPU; from scratch unless pretrained_base is asked for."""
    return build_network(model, 101, [mx.cpu()], pretrained_base=pretrained_base, **changes)


@pytest.fixture
def empty_model_home(tmp_path, monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxnet_home'))
    return tmp_path / 'mxnet_home' / 'models'


# (model, per-clip input shape after the batch axis, smallest input the model accepts)
FAMILIES = {
    'vgg16_ucf101': (3, 32, 32),
    'inceptionv3_ucf101': (3, 299, 299),       # its 8x8 average pool: nothing under 299 px
    'i3d_resnet50_v1_ucf101': (3, 8, 32, 32),  # 8 frames: the shortest clip its temporal pooling takes
}


@pytest.mark.parametrize('model,segments', [('vgg16_ucf101', 1), ('vgg16_ucf101', 3), ('inceptionv3_ucf101', 3),
                                            ('i3d_resnet50_v1_ucf101', 1), ('i3d_resnet50_v1_ucf101', 2)])
def test_built_from_scratch_offline_gives_one_row_per_clip(model, segments, empty_model_home):
    net = build(model, num_segments=segments, use_tsn=segments > 1)
    clips = 2
    x = mx.nd.random.uniform(shape=(clips * segments,) + FAMILIES[model])
    out = net(x)
    assert out.shape == (clips, 101)
    assert np.isfinite(out.asnumpy()).all()
    assert not empty_model_home.exists() or not os.listdir(str(empty_model_home))  # nothing was fetched


@pytest.mark.parametrize('model,weight_file', [
    ('vgg16_ucf101', 'vgg16-e660d456.params'),
    ('inceptionv3_ucf101', 'inceptionv3-a5050dbc.params'),
    ('i3d_resnet50_v1_ucf101', 'resnet50_v1b-0ecdba34.params'),
])
def test_missing_imagenet_weights_name_the_file_and_the_way_out(model, weight_file, empty_model_home):
    with pytest.raises(UserError) as err:
        build(model, pretrained_base=True)
    message = str(err.value)
    assert weight_file in message and str(empty_model_home) in message
    assert '--no-pretrained-base' in message


def test_missing_kinetics400_weights_name_the_file_and_both_ways_out(empty_model_home):
    with pytest.raises(UserError) as err:
        build('i3d_resnet50_v1_ucf101', pretrained_base=True, use_kinetics_pretrain=True)
    message = str(err.value)
    assert 'i3d_resnet50_v1_kinetics400-568a722e.params' in message and str(empty_model_home) in message
    assert 'drop --use-kinetics-pretrain' in message and '--no-pretrained-base' in message
    # Only the Kinetics400 file is asked for: the ImageNet weights it replaces are not needed.
    assert 'resnet50_v1b' not in message


def test_kinetics_pretrain_only_for_i3d():
    with pytest.raises(UserError, match='--use-kinetics-pretrain: --model vgg16_ucf101'):
        build('vgg16_ucf101', pretrained_base=True, use_kinetics_pretrain=True)


def test_no_pretrained_base_wins_over_kinetics_pretrain(empty_model_home):
    net = build('i3d_resnet50_v1_ucf101', use_kinetics_pretrain=True)
    assert net(mx.nd.zeros((1, 3, 8, 32, 32))).shape == (1, 101)


def test_kinetics400_weights_load_into_all_layers_but_the_classifier(tmp_path, monkeypatch):
    """GluonCV's use_kinetics_pretrain: every parameter but the 400-way classifier is copied."""
    from gluoncv.model_zoo import get_model, model_store
    source = get_model('i3d_resnet50_v1_kinetics400', nclass=400, pretrained_base=False)
    for param in source.collect_params().values():
        param.set_data(mx.nd.random.uniform(shape=param.shape))
    weights = str(tmp_path / 'k400.params')
    source.save_parameters(weights)
    asked = []

    def fake_store(name, tag=None, root=None):
        asked.append(name)
        if name != 'i3d_resnet50_v1_kinetics400':
            raise OSError('offline')
        return weights
    monkeypatch.setattr(model_store, 'get_model_file', fake_store)
    net = build('i3d_resnet50_v1_ucf101', pretrained_base=True, use_kinetics_pretrain=True)
    assert asked == ['i3d_resnet50_v1_kinetics400']
    src = [p.data().asnumpy() for p in source.collect_params().values()]
    dst = [p.data().asnumpy() for p in net.collect_params().values()]
    assert len(src) == len(dst)
    for a, b in zip(src[:-2], dst[:-2]):
        np.testing.assert_array_equal(a, b)
    assert dst[-2].shape == (101, 2048) and src[-2].shape == (400, 2048)


def batchnorms(net):
    found = []
    net.apply(lambda block: found.append(block) if isinstance(block, gluon.nn.BatchNorm) else None)
    return found


def test_partial_bn_trains_weights_biases_and_only_the_first_batchnorm():
    net = build('inceptionv3_ucf101', partial_bn=True)
    names = set(net.collect_params().keys())
    first = batchnorms(net)[0].prefix
    # GluonCV's own --partial-bn pattern for inceptionv3, with this process's layer prefix.
    gluoncv_pattern = ('.*weight|.*bias|%sgamma|%sbeta|%srunning_mean|%srunning_var' % ((first,) * 4))
    expected = set(net.collect_params(gluoncv_pattern).keys())
    selected = {p.name for p in trainable_params(net, partial_bn=True)}
    assert selected == expected
    assert set(first_batchnorm_params(net)) == {first + s for s in ('gamma', 'beta', 'running_mean', 'running_var')}
    frozen = names - selected
    assert frozen and all(n.endswith(('gamma', 'beta', 'running_mean', 'running_var')) for n in frozen)
    assert all(net.collect_params()[n].grad_req == 'null' for n in frozen)
    assert len(batchnorms(net)) == 94 and len(frozen) == 4 * 93


def test_without_partial_bn_every_inceptionv3_parameter_trains():
    net = build('inceptionv3_ucf101')
    params = trainable_params(net)
    assert len(list(params.values())) == len(list(net.collect_params().values()))


def test_i3d_input_is_channels_then_frames_in_clip_order():
    """The trainer's uint8 (B, S*L, H, W, 3) batch becomes (B*S, 3, L, H, W), frames in order."""
    from recognizer.transforms import network_input
    batch, segments, length, size = 2, 2, 4, 8
    frames = np.zeros((batch, segments * length, size, size, 3), dtype=np.uint8)
    frames[..., 0] = np.arange(batch * segments * length).reshape(batch, segments * length, 1, 1)
    x = network_input(mx.nd.array(frames, dtype='uint8'), length).asnumpy()
    assert x.shape == (batch * segments, 3, length, size, size)
    red = x[:, 0, :, 0, 0]   # normalised red value of each frame: increasing with the frame index
    assert (np.diff(red.reshape(-1)) > 0).all()
    flat = network_input(mx.nd.array(frames, dtype='uint8'), 1)
    assert flat.shape == (batch * segments * length, 3, size, size)


TRAIN_STEP = """
import argparse, os, sys
import mxnet as mx
from mxnet import autograd, gluon
sys.path.insert(0, %r)
from recognizer.models import build_network
net = build_network('i3d_resnet50_v1_ucf101', 101, [mx.cpu()], pretrained_base=False)
net.hybridize(static_alloc=True, static_shape=True)
trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.001, 'clip_gradient': 40})
with autograd.record():
    loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(mx.nd.ones((2, 3, 8, 32, 32))), mx.nd.array([0, 1]))
loss.backward()
trainer.step(2)
mx.nd.waitall()
print('loss', loss.mean().asscalar(), os.environ['MXNET_MKLDNN_ENABLED'])
"""


@pytest.mark.slow
def test_i3d_trains_a_step_on_cpu():
    """MXNet 1.9's oneDNN fails Conv3D+BatchNorm backward ("!is_view"); build_network avoids it on CPU.

    In a fresh process, as in train_recognizer.py: MXNet caches the setting at its first BatchNorm.
    """
    env = {k: v for k, v in os.environ.items() if k != 'MXNET_MKLDNN_ENABLED'}
    done = subprocess.run([sys.executable, '-c', TRAIN_STEP % REPO], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    word, loss, flag = done.stdout.split()
    assert word == 'loss' and 0 < float(loss) < 10 and flag == '0'


def test_weight_file_names_follow_the_model_store():
    assert models.weight_file_name('i3d_resnet50_v1_kinetics400') == 'i3d_resnet50_v1_kinetics400-568a722e.params'


# ---------------------------------------------------------------- the rest of the zoo

def test_resnet_v1b_recognizers_build_from_scratch_without_asking_for_weights(monkeypatch, empty_model_home):
    """gluoncv's resnet*_v1b_* factories drop pretrained_base, so their backbone downloaded ImageNet weights."""
    from gluoncv.model_zoo import model_store
    asked = []

    def offline(name, tag=None, root=None):
        asked.append(name)
        raise OSError('offline')
    monkeypatch.setattr(model_store, 'get_model_file', offline)
    net = build('resnet18_v1b_kinetics400')
    assert asked == [] and net(mx.nd.zeros((2, 3, 32, 32))).shape == (2, 101)
    with pytest.raises(UserError, match='resnet50_v1b-0ecdba34.params'):
        build('resnet50_v1b_ucf101', pretrained_base=True)
    assert asked == ['resnet50_v1b']


def test_resnet_custom_from_kinetics400_asks_only_for_the_kinetics400_file(empty_model_home):
    with pytest.raises(UserError) as err:
        build('resnet50_v1b_custom', pretrained_base=True, use_kinetics_pretrain=True)
    assert 'resnet50_v1b_kinetics400-' in str(err.value) and 'resnet50_v1b-' not in str(err.value)


def test_kinetics_pretrain_models_come_from_the_factories():
    assert sorted(models.kinetics_pretrain_models()) == [
        'i3d_resnet50_v1_custom', 'i3d_resnet50_v1_hmdb51', 'i3d_resnet50_v1_ucf101', 'resnet18_v1b_custom',
        'resnet50_v1b_custom', 'slowfast_4x16_resnet50_custom']


@pytest.mark.parametrize('model,kwarg,accepted', [
    ('resnet50_v1b_kinetics400', 'last_gamma', True),      # reaches ResNetV1b's bottlenecks
    ('resnet18_v1b_kinetics400', 'last_gamma', False),     # basic blocks have no last BatchNorm to zero
    ('resnet50_v1b_kinetics400', 'norm_layer', True),
    ('resnet50_v1b_kinetics400', 'use_se', False),
    ('vgg16_ucf101', 'last_gamma', False),
    ('i3d_resnet50_v1_kinetics400', 'use_se', False),
    ('i3d_resnet50_v1_kinetics400', 'bn_frozen', True),
    ('i3d_inceptionv1_kinetics400', 'bn_frozen', False),
])
def test_accepts_kwarg_says_whether_a_keyword_reaches_a_constructor_that_uses_it(model, kwarg, accepted):
    assert models.accepts_kwarg(model, kwarg) == accepted


def test_last_gamma_zeroes_the_last_batchnorm_of_every_bottleneck():
    def zero_gammas(net):
        return sorted(n for n, p in net.collect_params('.*gamma').items() if not p.data().asnumpy().any())
    plain = build('resnet50_v1b_kinetics400')
    zeroed = build('resnet50_v1b_kinetics400', factory_kwargs={'last_gamma': True})
    assert zero_gammas(plain) == []
    assert len(zero_gammas(zeroed)) == 16   # 3 + 4 + 6 + 3 bottlenecks
    # the third BatchNorm (index 2, 5, 8, ... in its stage) of each bottleneck
    assert all(int(name.split('_batchnorm')[1].split('_')[0]) % 3 == 2 for name in zero_gammas(zeroed))


def test_a_keyword_no_constructor_uses_is_refused():
    with pytest.raises(UserError, match='--model vgg16_ucf101 takes no use_se'):
        build('vgg16_ucf101', factory_kwargs={'use_se': True})


def test_freeze_bn_reaches_only_factories_that_take_it():
    """GluonCV's CLI passes bn_frozen to every factory; i3d_inceptionv1 hands it on to a Block and crashed."""
    net = build('i3d_inceptionv1_kinetics400', freeze_bn=True)
    assert net(mx.nd.zeros((1, 3, 8, 32, 32))).shape == (1, 101)
    # i3d_resnet50_v1_kinetics400 names bn_frozen: its stem BatchNorm then uses the running statistics.
    assert batchnorms(build('i3d_resnet50_v1_kinetics400', freeze_bn=True))[0]._kwargs['use_global_stats']
    assert not batchnorms(build('i3d_resnet50_v1_kinetics400'))[0]._kwargs['use_global_stats']


@pytest.mark.parametrize('model', ['inceptionv1_kinetics400', 'inceptionv3_sthsthv2'])
def test_tsn_spelled_tsn_by_some_factories_builds(model):
    net = build(model, num_segments=2, use_tsn=True)
    size = 224 if 'v1' in model else 299
    assert net(mx.nd.zeros((4, 3, size, size))).shape == (2, 101)


def test_onednn_stays_on_for_c3d_which_has_no_batchnorm(monkeypatch):
    monkeypatch.delenv('MXNET_MKLDNN_ENABLED', raising=False)
    net = build('c3d_kinetics400')
    models.avoid_onednn_conv3d_batchnorm_crash(net, [mx.cpu()])
    assert 'MXNET_MKLDNN_ENABLED' not in os.environ
    models.avoid_onednn_conv3d_batchnorm_crash(build('r2plus1d_resnet18_kinetics400'), [mx.cpu()])
    assert os.environ['MXNET_MKLDNN_ENABLED'] == '0'
