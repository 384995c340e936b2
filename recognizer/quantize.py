"""INT8 inference on the CPU (oneDNN) and symbol deployment for scripts/test_recognizer.py, GluonCV's flags.

* ``--calibration`` quantizes the network that scores one view (the test protocol's
  network) with ``mxnet.contrib.quantization.quantize_net``: oneDNN fuses convolution,
  BatchNorm and ReLU, and the layer output ranges come from ``--num-calib-batches`` x
  ``--batch-size`` clips of --val-list, taken evenly over the list so every part of a
  class-sorted list is seen (``--calib-mode naive``: min/max, ``entropy``: KL-optimal
  thresholds, ``none``: ranges computed at run time). The pair
  ``<save-dir>/<model>-quantized-<mode>-symbol.json`` / ``-0000.params`` is written.
* Dense (FullyConnected) layers stay FP32 (``fp32_layers`` names them in the log): they are
  under 1% of VGG16's multiply-adds at 224 px, and the last one's outputs are the scores, so
  quantizing them would buy little time for error that lands straight on the ranking.
* ``--deploy --model-prefix P`` loads such a pair (or any single-view symbol exported by
  MXNet) with ``SymbolBlock.imports`` and is evaluated like the FP32 network;
  ``--quantized`` evaluates the INT8 form of --resume-params, quantized in memory, or with
  --use-pretrained the model zoo's ``<model>_int8``.
* ``--benchmark --num-iterations N`` times forward passes on dummy data and prints clips/s.
"""
import json
import os
import warnings

import numpy as np

from . import cost, data, evaluation, transforms
from .clip_network import input_shape
from .errors import UserError
from .export import save_pair

logger = evaluation.logger

CALIB_MODES = ('naive', 'entropy', 'none')
QUANTIZED_DTYPES = ('auto', 'int8', 'uint8')
FP32_OPS = ('FullyConnected',)
BENCHMARK_WARMUP = 5


def add_int8_args(p):
    """GluonCV's INT8, deployment and benchmark flags of test_recognizer.py."""
    g = p.add_argument_group('INT8, deployment and benchmark (CPU, oneDNN)')
    g.add_argument('--calibration', action='store_true',
                   help='quantize the network to INT8 and write <save-dir>/<model>-quantized-<calib-mode>-symbol.json '
                        'and -0000.params; no evaluation.')
    g.add_argument('--num-calib-batches', type=int, default=5,
                   help='calibration batches of --batch-size clips, taken evenly over --val-list.')
    g.add_argument('--quantized-dtype', type=str, default='auto', choices=QUANTIZED_DTYPES,
                   help='INT8 type of the quantized data (auto: uint8 after ReLU, else int8).')
    g.add_argument('--calib-mode', type=str, default='naive', choices=CALIB_MODES,
                   help='naive: min/max of the layer outputs; entropy: KL-optimal thresholds; none: computed at run '
                        'time (slower).')
    g.add_argument('--quantized', action='store_true',
                   help='run the INT8 network: --resume-params quantized in memory (as --calibration), or with '
                        '--use-pretrained the model zoo\'s <model>_int8.')
    g.add_argument('--deploy', action='store_true', help='run the symbol/params pair of --model-prefix.')
    g.add_argument('--model-prefix', type=str, default=None,
                   help='with --deploy: P of P-symbol.json and P-0000.params (e.g. written by --calibration).')
    g.add_argument('--benchmark', action='store_true',
                   help='time forward passes of --batch-size clips on dummy data and print clips/s; no evaluation.')
    g.add_argument('--num-iterations', type=int, default=100, help='timed passes of --benchmark (after 5 warm-up).')


def check_int8_args(opt):
    """Refuse what cannot work; --deploy takes its weights from the prefix (so it needs no --resume-params)."""
    if opt.calibration + opt.quantized + opt.deploy > 1:
        raise UserError('--calibration, --quantized and --deploy exclude each other; pick one')
    if opt.deploy:
        if not opt.model_prefix:
            raise UserError('--deploy needs --model-prefix P (P-symbol.json and P-0000.params)')
        opt.model_prefix = os.path.expanduser(opt.model_prefix)
        for path in pair_files(opt.model_prefix):
            if not os.path.isfile(path):
                raise UserError('--model-prefix %s: %s does not exist; pass the prefix written by --calibration or '
                                'scripts/export_model.py' % (opt.model_prefix, path))
        opt.resume_params = opt.model_prefix + '-0000.params'
        opt.use_pretrained = False
    elif opt.model_prefix:
        raise UserError('--model-prefix is read with --deploy only; add --deploy')
    if opt.slowfast and (opt.calibration or opt.quantized or opt.deploy or opt.benchmark):
        raise UserError('--slowfast networks have no INT8 or deployed path here (gluoncv\'s zoo has no SlowFast '
                        'INT8 model either); evaluate them in float32 without --calibration/--quantized/--deploy/'
                        '--benchmark')
    if (opt.calibration or opt.quantized) and opt.num_gpus > 0:
        raise UserError('INT8 networks run on the CPU (oneDNN); use --num-gpus 0')
    for flag, value in (('--num-calib-batches', opt.num_calib_batches), ('--num-iterations', opt.num_iterations),
                        ('--batch-size', opt.batch_size)):
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))
    return opt


def pair_files(prefix):
    return prefix + '-symbol.json', prefix + '-0000.params'


def replaces_evaluation(opt):
    """--calibration and --benchmark do their own job instead of the evaluation."""
    return opt.calibration or opt.benchmark


# ---------------------------------------------------------------- calibration

def quantized_prefix(save_dir, model, calib_mode):
    return os.path.join(save_dir, '%s-quantized-%s' % (model, calib_mode))


def fp32_layers(net, opt):
    """Names of the graph nodes kept in FP32 (the dense layers), as quantize_net's exclude_layers."""
    shape = (1,) + input_shape(1, 1, opt.new_length, opt.input_size, opt.input_5d)[1:]
    sym, _, _ = cost.trace(net, shape)
    return [node['name'] for node in json.loads(sym.tojson())['nodes'] if node['op'] in FP32_OPS]


def spread_indices(total, count):
    """``count`` indices spread evenly over range(total), first one included."""
    count = min(count, total)
    return sorted({int(i * total / count) for i in range(count)})


def calibration_data(opt):
    """An mx.io.NDArrayIter of normalised views of --num-calib-batches x --batch-size clips of --val-list."""
    import mxnet as mx
    clips = data.read_clip_list(opt.val_list, opt.val_data_dir, opt.num_classes, opt.video_loader)
    dataset = evaluation.ViewDataset(clips, opt)
    batches = []
    for index in spread_indices(len(clips), opt.num_calib_batches * opt.batch_size):
        views, _, _, error = dataset[index]
        if error is not None:
            if not opt.skip_bad_samples:
                raise UserError('%s (calibration clip on line %d of %s); fix or remove it, or pass '
                                '--skip-bad-samples' % (error, clips[index].line_no, opt.val_list))
            logger.warning('calibration: skipped %s', error)
            continue
        x = transforms.network_input(mx.nd.array(views, dtype='uint8'), opt.new_length, opt.input_5d)
        batches.append(x.asnumpy())
    if not batches:
        raise UserError('no calibration clip of %s could be read; check the data' % opt.val_list)
    views = np.concatenate(batches)
    per_batch = min(len(views), len(batches[0]) * opt.batch_size)
    return mx.io.NDArrayIter(views, batch_size=per_batch, last_batch_handle='discard'), len(batches), len(views)


def quantize(net, opt, ctx):
    """The INT8 SymbolBlock of ``net`` (single-view network) calibrated on --val-list clips."""
    from mxnet.contrib.quantization import quantize_net
    keep = fp32_layers(net, opt)
    calib, clips, views = calibration_data(opt)
    logger.info('calibrating (%s, %s) on %d views of %d clips; kept in FP32: %s', opt.calib_mode,
                opt.quantized_dtype, views, clips, ', '.join(keep) or 'nothing')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')     # quantize_net's deprecation notice and SymbolBlock's dtype notes
        qnet = quantize_net(net, quantized_dtype=opt.quantized_dtype, quantize_mode='full', exclude_layers=keep,
                            calib_data=calib, calib_mode=opt.calib_mode, num_calib_examples=views, ctx=ctx[0])
    qnet.hybridize(static_alloc=True)
    calib.reset()
    qnet(calib.next().data[0].as_in_context(ctx[0])).wait_to_read()   # export() saves only a graph that has run
    return qnet


def calibrate(opt, ctx):
    """--calibration: quantize and write the pair; returns its prefix."""
    try:
        os.makedirs(opt.save_dir, exist_ok=True)
    except OSError as err:
        raise UserError('--save-dir %s cannot be created (%s); choose another folder' % (opt.save_dir, err)) from None
    qnet = quantize(evaluation.load_network(opt, ctx), opt, ctx)
    prefix = quantized_prefix(opt.save_dir, opt.model, opt.calib_mode)
    for path in save_pair(qnet, prefix):
        print('wrote %s' % path)
    return prefix


# ---------------------------------------------------------------- loading

def load_deployed(opt, ctx):
    """--deploy: the pair of --model-prefix as a SymbolBlock taking one view per row."""
    from mxnet import base, gluon
    files = pair_files(opt.model_prefix)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            net = gluon.SymbolBlock.imports(files[0], ['data'], files[1], ctx=ctx)
    except (base.MXNetError, AssertionError, ValueError, KeyError) as err:
        raise UserError('--model-prefix %s cannot be loaded as an MXNet symbol with input "data" (%s)'
                        % (opt.model_prefix, str(err).splitlines()[0][:200])) from None
    check_deployed_output(net, opt, ctx)
    net.hybridize(static_alloc=True)
    return net


def check_deployed_output(net, opt, ctx):
    """One view in, one row of --num-classes logits out, or a UserError saying what differs."""
    from mxnet import base, nd
    views = nd.zeros((1, opt.new_length, opt.input_size, opt.input_size, 3), dtype='uint8', ctx=ctx[0])
    try:
        out = net(transforms.network_input(views, opt.new_length, opt.input_5d))
        shape = out.shape
    except base.MXNetError as err:
        raise UserError('--model-prefix %s cannot score one %dx%d view (%s); it must be a single-view network '
                        '(--calibration output, or export_model.py --num-segments 1) at the --input-size it was made '
                        'for' % (opt.model_prefix, opt.input_size, opt.input_size, str(err).splitlines()[0][:160])
                        ) from None
    if len(shape) != 2 or shape[0] != 1:
        raise UserError('--model-prefix %s gives %s for one view, not one row: it averages several segments inside; '
                        'export it with --num-segments 1 to evaluate it view by view' % (opt.model_prefix, shape))
    if shape[1] != opt.num_classes:
        raise UserError('--model-prefix %s gives %s for one view, not (1, %d): pass --num-classes %d'
                        % (opt.model_prefix, shape, opt.num_classes, shape[1]))


def zoo_int8_network(opt, ctx):
    """--quantized --use-pretrained: GluonCV's <model>_int8 (its symbol, the zoo's FP32 weights)."""
    from gluoncv.model_zoo import get_model, get_model_list
    from .models import offline_model_store
    name = opt.model + '_int8'
    if name not in get_model_list():
        raise UserError('the model zoo has no %s (its UCF101 INT8 models: vgg16_ucf101_int8, '
                        'inceptionv3_ucf101_int8); quantize a checkpoint with --calibration instead' % name)
    with offline_model_store(name, 'weights of the INT8 model', 'quantize --resume-params with --calibration'):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return get_model(name, pretrained=True, ctx=ctx[0])


def load_network(opt, ctx):
    """The network evaluate() scores views with: FP32 (evaluation.load_network), --deploy or --quantized."""
    if opt.deploy:
        return load_deployed(opt, ctx)
    if opt.quantized and opt.use_pretrained and not opt.resume_params:
        return zoo_int8_network(opt, ctx)
    net = evaluation.load_network(opt, ctx)
    return quantize(net, opt, ctx) if opt.quantized else net


# ---------------------------------------------------------------- benchmark and entry

def benchmark(net, opt, ctx):
    """clips/s of forward passes over --batch-size clips (num_segments x num_crop views each) of dummy data."""
    views = opt.num_segments * opt.num_crop
    shape = input_shape(opt.batch_size, views, opt.new_length, opt.input_size, opt.input_5d)
    net.hybridize(static_alloc=True, static_shape=True)   # one fixed shape, as a deployment would run it
    seconds = cost.time_runs(cost.mxnet_runner(net, shape, ctx[0]), opt.num_iterations, BENCHMARK_WARMUP)
    speed = opt.batch_size / seconds
    print('With batch size %d (%d views per clip), %d batches: %.3f s per batch, throughput is %.3f clips/s'
          % (opt.batch_size, views, opt.num_iterations, seconds, speed))
    print('clips/s: %.3f' % speed)
    return speed


def run(opt):
    """--calibration or --benchmark (the latter of whichever network the other flags select)."""
    from .runtime import contexts
    ctx = contexts(opt.num_gpus)
    if opt.calibration:
        calibrate(opt, ctx)
        return 0
    benchmark(load_network(opt, ctx), opt, ctx)
    return 0
