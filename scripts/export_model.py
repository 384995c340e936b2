#!/usr/bin/env python
"""Export a trained recognizer for deployment: MXNet symbol + params, optionally ONNX, and its preprocessing.

Writes into --save-dir:
    <model>-symbol.json, <model>-0000.params   loadable with mx.gluon.SymbolBlock.imports(..., ['data'], ...)
                                               without this project or gluoncv
    <model>-preprocess.json                    input size, mean, std, segment and input layout, class names
    <model>.onnx                               with --onnx (opset 13, dynamic batch axis)
The network takes a whole clip: --num-segments views stacked along axis 0, averaged inside
before the classifier, as in training. With --model-prefix an existing pair (e.g. the INT8 one
of test_recognizer.py --calibration) is converted to ONNX instead of building --model.

Example:
    python scripts/export_model.py --model vgg16_ucf101 --num-classes 101 \\
        --resume-params params/ucf101-vgg16_ucf101-079.params --input-size 224 --num-segments 3 \\
        --save-dir exported --onnx
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import clip_network, evaluation, export  # noqa: E402
from recognizer.errors import UserError, run_cli  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(description='Export a trained recognizer (MXNet symbol, ONNX, preprocessing JSON).')
    clip_network.add_network_args(p)
    p.add_argument('--class-index', type=str, default=None,
                   help='classInd.txt for the class names in the JSON; default: the zoo\'s names for 101 classes, '
                        'else the numbers.')
    p.add_argument('--save-dir', type=str, default='exported', help='folder for the exported files.')
    p.add_argument('--onnx', action='store_true', help='also write <model>.onnx (needs the onnx package).')
    p.add_argument('--model-prefix', type=str, default=None,
                   help='convert the existing pair P-symbol.json/P-0000.params instead of building --model.')
    return p


def check_args(opt):
    clip_network.check_network_args(opt)
    if opt.model_prefix and not opt.onnx:
        raise UserError('--model-prefix only converts an existing pair to ONNX; add --onnx')
    if opt.model_prefix:
        opt.model_prefix = os.path.expanduser(opt.model_prefix)
        for suffix in ('-symbol.json', '-0000.params'):
            if not os.path.isfile(opt.model_prefix + suffix):
                raise UserError('--model-prefix %s: %s%s does not exist' % (opt.model_prefix, opt.model_prefix, suffix))
    elif not opt.resume_params and not opt.use_pretrained:
        raise UserError('nothing to export: pass --resume-params <file>.params (from the training --save-dir) '
                        'or --use-pretrained')
    return opt


def export_pair(opt, prefix):
    """Build, load the weights, run once on zeros (which fixes every shape) and save the pair."""
    import mxnet as mx
    ctx = [mx.cpu()]
    net = clip_network.load_clip_network(opt, ctx, opt.num_segments)
    shape = clip_network.input_shape(1, opt.num_segments, opt.new_length, opt.input_size, opt.input_5d)
    net.hybridize()
    try:
        out = net(mx.nd.zeros(shape, ctx=ctx[0]))
    except mx.base.MXNetError as err:
        raise UserError('--model %s cannot run on input %s (%s); use the --input-size/--new-length it was trained '
                        'with' % (opt.model, shape, str(err).splitlines()[0][:160])) from None
    out.wait_to_read()
    return export.save_pair(net, prefix)


def main(argv=None):
    opt = check_args(build_parser().parse_args(argv))
    logging.disable(logging.INFO)     # mx.onnx logs every converted node at INFO
    names = evaluation.class_names(opt.num_classes, opt.class_index)
    try:
        os.makedirs(opt.save_dir, exist_ok=True)
    except OSError as err:
        raise UserError('--save-dir %s cannot be created (%s); choose another folder' % (opt.save_dir, err)) from None
    prefix = os.path.join(opt.save_dir, opt.model)
    if opt.model_prefix:
        files = (opt.model_prefix + '-symbol.json', opt.model_prefix + '-0000.params')
    else:
        files = export_pair(opt, prefix)
        print('wrote %s\nwrote %s' % files)
    print('wrote %s' % export.write_json(prefix + '-preprocess.json', export.preprocess_spec(opt, names)))
    if opt.onnx:
        shape = clip_network.input_shape(1, opt.num_segments, opt.new_length, opt.input_size, opt.input_5d)
        print('wrote %s' % export.export_onnx(files[0], files[1], shape, prefix + '.onnx'))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
