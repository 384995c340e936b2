#!/usr/bin/env python
"""FLOPs and parameters of a recognizer per clip, counted from its MXNet graph (recognizer/cost.py).

The network is built as trained (--num-segments views averaged inside) and traced on one clip;
every Convolution, Deconvolution, FullyConnected, dot and batch_dot node contributes its
multiply-adds, from the shapes MXNet infers for it. Ends with the lines ``GFLOPs: X``
(multiply-adds counted as 2 FLOPs, per clip) and ``params: N``.

Example:
    python scripts/get_flops.py --model vgg16_ucf101 --input-size 224 --num-segments 3
    python scripts/get_flops.py --model i3d_resnet50_v1_ucf101 --input-size 224 --new-length 32
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import clip_network, cost  # noqa: E402
from recognizer.errors import UserError, run_cli  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(description='FLOPs and parameters of a recognizer per clip, from its graph.')
    clip_network.add_network_args(p)
    return p


def measure(opt):
    """(shape, {op: multiply-adds}, parameters) of one clip."""
    import mxnet as mx
    net = clip_network.build_clip_network(opt.model, opt.num_classes, [mx.cpu()], num_segments=opt.num_segments,
                                          batch_norm=opt.batch_norm)
    shape = clip_network.input_shape(1, opt.num_segments, opt.new_length, opt.input_size, opt.input_5d)
    try:
        return shape, cost.count_macs(net, shape), cost.count_params(net, shape)
    except mx.base.MXNetError as err:
        raise UserError('--model %s cannot take input %s (%s); change --input-size/--new-length'
                        % (opt.model, shape, str(err).splitlines()[0][:160])) from None


def main(argv=None):
    opt = clip_network.check_network_args(build_parser().parse_args(argv))
    shape, macs, params = measure(opt)
    total = sum(macs.values())
    print('%s, input %s (%d segment%s per clip)' % (opt.model, shape, opt.num_segments,
                                                    '' if opt.num_segments == 1 else 's'))
    for op, value in sorted(macs.items()):
        print('  %-15s %10.3f G multiply-adds' % (op, value / 1e9))
    print('multiply-adds per clip: %.3f G (%.3f G per segment)' % (total / 1e9, total / 1e9 / opt.num_segments))
    print('GFLOPs: %.3f' % (2 * total / 1e9))
    print('params: %d' % params)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
