"""FLOPs and parameters from the graph (scripts/get_flops.py), clips/s (scripts/get_fps.py)."""
import subprocess
import sys

import pytest

from conftest import REPO
from recognizer import cost


def run(script, *args):
    return subprocess.run([sys.executable, script] + [str(a) for a in args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def last_value(stdout, key):
    lines = stdout.strip().splitlines()
    found = [line for line in lines if line.startswith(key + ': ')]
    assert found, stdout
    return float(found[-1].split(': ')[1])


def conv_node(kernel, groups=1):
    return {'op': 'Convolution', 'attrs': {'kernel': str(kernel), 'num_group': str(groups)}}


def test_multiply_adds_of_each_layer_kind_by_hand():
    # 3x3 convolution, 16 -> 32 channels, 8x8 output: each output sums 16 x 9 products.
    assert cost.node_macs(conv_node((3, 3)), [(1, 16, 8, 8)], (1, 32, 8, 8)) == 32 * 64 * 16 * 9
    # grouped (depthwise) convolution: each output sees in_channels / groups channels.
    assert cost.node_macs(conv_node((3, 3), groups=16), [(1, 16, 8, 8)], (1, 16, 8, 8)) == 16 * 64 * 9
    # 3-D convolution: the kernel volume counts.
    assert cost.node_macs(conv_node((3, 1, 1)), [(2, 4, 8, 7, 7)], (2, 8, 8, 7, 7)) == 2 * 8 * 8 * 49 * 4 * 3
    fc = {'op': 'FullyConnected', 'attrs': {'num_hidden': '10'}}
    assert cost.node_macs(fc, [(5, 64, 2, 2)], (5, 10)) == 5 * 10 * 256
    fc['attrs']['flatten'] = 'False'
    assert cost.node_macs(fc, [(5, 3, 64)], (5, 3, 10)) == 5 * 3 * 10 * 64
    bdot = {'op': 'batch_dot', 'attrs': {'transpose_a': 'True'}}
    assert cost.node_macs(bdot, [(4, 7, 5), (4, 7, 6)], (4, 5, 6)) == 4 * 5 * 6 * 7


def test_a_traced_network_is_counted_layer_by_layer():
    import mxnet as mx
    from mxnet.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1, in_channels=3), nn.BatchNorm(), nn.Activation('relu'), nn.MaxPool2D(),
            nn.Dense(10))
    net.initialize(ctx=mx.cpu())
    macs = cost.count_macs(net, (2, 3, 16, 16))
    assert macs == {'Convolution': 2 * 8 * 256 * 3 * 9, 'FullyConnected': 2 * 10 * 8 * 64}
    assert cost.count_params(net, (2, 3, 16, 16)) == (8 * 27 + 8) + (8 + 8) + (10 * 512 + 10)


@pytest.mark.slow
def test_vgg16_at_224_px_has_the_textbook_cost():
    done = run('scripts/get_flops.py', '--model', 'vgg16_ucf101', '--num-classes', '1000', '--input-size', '224')
    assert done.returncode == 0, done.stderr
    assert last_value(done.stdout, 'GFLOPs') == pytest.approx(2 * 15.47, rel=0.01)     # 15.5 G multiply-adds
    assert last_value(done.stdout, 'params') == 138357544                               # VGG16's 138.36 M
    assert done.stdout.strip().splitlines()[-2].startswith('GFLOPs: ')
    tsn = run('scripts/get_flops.py', '--model', 'vgg16_ucf101', '--num-classes', '101', '--input-size', '224',
              '--num-segments', '3')
    assert last_value(tsn.stdout, 'GFLOPs') == pytest.approx(3 * 30.94, rel=0.01)        # per clip of 3 segments
    assert last_value(tsn.stdout, 'params') == 138357544 - 899 * 4097                  # 101 classes, not 1000


@pytest.mark.slow
def test_a_3d_network_counts_its_frames():
    eight = run('scripts/get_flops.py', '--model', 'i3d_resnet50_v1_ucf101', '--input-size', '64', '--new-length', '8')
    more = run('scripts/get_flops.py', '--model', 'i3d_resnet50_v1_ucf101', '--input-size', '64', '--new-length', '16')
    assert eight.returncode == 0 and more.returncode == 0, eight.stderr + more.stderr
    assert 'input (1, 3, 16, 64, 64)' in more.stdout
    assert last_value(more.stdout, 'GFLOPs') == pytest.approx(2 * last_value(eight.stdout, 'GFLOPs'), rel=0.05)
    assert last_value(more.stdout, 'params') == last_value(eight.stdout, 'params')


@pytest.mark.slow
def test_get_fps_ends_with_clips_per_second():
    done = run('scripts/get_fps.py', '--model', 'vgg16_ucf101', '--num-classes', '4', '--batch-norm', '--input-size',
               '32', '--num-segments', '2', '--num-runs', '3', '--num-warmup-runs', '2', '--batch-size', '2')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert 'MXNet, input (4, 3, 32, 32): 3 runs after 2 warm-up' in lines[-2]
    assert lines[-1].startswith('clips/s: ') and last_value(done.stdout, 'clips/s') > 0


def test_bad_cost_flags_are_user_errors():
    done = run('scripts/get_fps.py', '--model', 'vgg16_ucf101', '--num-runs', '0')
    assert done.returncode == 2 and '--num-runs must be at least 1' in done.stderr
    done = run('scripts/get_flops.py', '--model', 'vgg16_ucf101', '--input-size', '16')
    assert done.returncode == 2 and 'cannot take input (1, 3, 16, 16)' in done.stderr
