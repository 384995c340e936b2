#!/usr/bin/env python
"""Forward clips per second of a recognizer on dummy data (warm-up runs excluded), MXNet or ONNX Runtime.

The network is built as trained (--num-segments views averaged inside), hybridized with static
memory and shapes, and run --num-warmup-runs + --num-runs times on --batch-size clips of
uniform(-1, 1) data; only the last --num-runs count. ``--onnx FILE`` times an exported model
(scripts/export_model.py --onnx) with ONNX Runtime on the same input instead. Ends with a line
``clips/s: X``.

Example:
    python scripts/get_fps.py --model vgg16_ucf101 --input-size 224 --num-segments 3 --num-runs 20
    python scripts/get_fps.py --model vgg16_ucf101 --input-size 224 --num-segments 3 --onnx exported/vgg16_ucf101.onnx
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import clip_network, cost  # noqa: E402
from recognizer.errors import UserError, run_cli  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(description='Forward clips/s of a recognizer on dummy data.')
    clip_network.add_network_args(p)
    p.add_argument('--batch-size', type=int, default=1, help='clips per forward pass.')
    p.add_argument('--num-runs', type=int, default=105, help='timed forward passes (GluonCV\'s default).')
    p.add_argument('--num-warmup-runs', type=int, default=5, help='untimed passes first.')
    p.add_argument('--onnx', type=str, default=None, help='time this ONNX file with ONNX Runtime instead.')
    return p


def check_args(opt):
    clip_network.check_network_args(opt)
    for flag, value in (('--batch-size', opt.batch_size), ('--num-runs', opt.num_runs)):
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))
    if opt.num_warmup_runs < 0:
        raise UserError('--num-warmup-runs cannot be negative, got %d' % opt.num_warmup_runs)
    if opt.onnx and not os.path.isfile(opt.onnx):
        raise UserError('--onnx %s does not exist; write it with scripts/export_model.py --onnx' % opt.onnx)
    return opt


def mxnet_run(opt, shape):
    import mxnet as mx
    ctx = [mx.cpu()]
    net = clip_network.load_clip_network(opt, ctx, opt.num_segments)
    net.hybridize(static_alloc=True, static_shape=True)
    return cost.mxnet_runner(net, shape, ctx[0])


def onnx_run(opt, shape):
    import numpy as np
    try:
        import onnxruntime
    except ImportError:
        raise UserError('--onnx needs onnxruntime: pip install onnxruntime') from None
    session = onnxruntime.InferenceSession(opt.onnx, providers=['CPUExecutionProvider'])
    data = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: data})


def main(argv=None):
    opt = check_args(build_parser().parse_args(argv))
    shape = clip_network.input_shape(opt.batch_size, opt.num_segments, opt.new_length, opt.input_size, opt.input_5d)
    run = onnx_run(opt, shape) if opt.onnx else mxnet_run(opt, shape)
    seconds = cost.time_runs(run, opt.num_runs, opt.num_warmup_runs)
    print('%s on %s, input %s: %d runs after %d warm-up, %.4f s per run (latency)'
          % (opt.model, 'ONNX Runtime' if opt.onnx else 'MXNet', shape, opt.num_runs, opt.num_warmup_runs, seconds))
    print('clips/s: %.3f' % (opt.batch_size / seconds))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
