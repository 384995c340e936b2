"""Deployable files of a trained recognizer: an MXNet symbol/params pair, ONNX, and the preprocessing they expect.

The pair loads with ``mx.gluon.SymbolBlock.imports(P-symbol.json, ['data'], P-0000.params)``
and nothing of this project or gluoncv. ONNX comes from MXNet 1.9's ``mx.onnx.export_model``,
which always targets the newest opset of the installed onnx package (20 for onnx 1.15) while
still writing ``ReduceMean`` with an ``axes`` attribute, valid only up to opset 17: the TSN
segment average would fail validation. ``onnx_opset`` makes the exporter target opset 13
throughout (what it reads, the graph check and the model's opset import). Initializers are
then removed from the graph inputs, so ONNX Runtime can fold them as constants.
"""
import contextlib
import json
import os

from .errors import UserError

ONNX_OPSET = 13
INPUT_NAME = 'data'


def save_pair(net, prefix):
    """P-symbol.json and P-0000.params of a hybridized network that has run once, written under temporary
    names and then renamed, so a crash never leaves half a pair."""
    tmp = '%s.tmp%d' % (prefix, os.getpid())
    net.export(tmp, epoch=0)
    for suffix in ('-symbol.json', '-0000.params'):
        os.replace(tmp + suffix, prefix + suffix)
    return prefix + '-symbol.json', prefix + '-0000.params'


def write_json(path, obj):
    tmp = '%s.tmp%d' % (path, os.getpid())
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
        f.write('\n')
    os.replace(tmp, path)
    return path


def preprocess_spec(opt, class_names):
    """What a consumer must feed the exported network, and what it gives back."""
    from .clip_network import input_shape, is_3d
    from .transforms import MEAN_RGB, STD_RGB
    three_d = is_3d(opt.new_length, opt.input_5d)
    return {
        'model': opt.model, 'num_classes': opt.num_classes, 'input_name': INPUT_NAME,
        'input_shape_per_clip': list(input_shape(1, opt.num_segments, opt.new_length, opt.input_size,
                                                 opt.input_5d)),
        'input_layout': 'NCTHW' if three_d else 'NCHW',
        'batch_axis': 'axis 0 holds num_segments consecutive rows per clip; a batch of B clips has '
                      'B * num_segments rows (any B)',
        'num_segments': opt.num_segments, 'new_length': opt.new_length, 'new_step': opt.new_step,
        'segment_layout': 'frame sampling: the clip is cut into num_segments equal parts and new_length frames, '
                          'new_step apart, are taken from the centre of each (TSN test sampling); '
                          'rows are in segment order',
        'size': opt.input_size, 'resize': {'new_width': opt.new_width, 'new_height': opt.new_height},
        'crop': 'centre crop of size x size after the optional resize (0 = keep the frame size)',
        'channel_order': 'RGB', 'pixel_scale': 1 / 255.0, 'mean': list(MEAN_RGB), 'std': list(STD_RGB),
        'normalise': '(pixel * pixel_scale - mean) / std per RGB channel, pixels 0..255',
        'output': 'logits, shape (B, num_classes), the segments averaged inside; softmax gives probabilities',
        'class_names': class_names,
    }


@contextlib.contextmanager
def onnx_opset(version=ONNX_OPSET):
    """Make onnx (and so mx.onnx.export_model) use opset ``version`` instead of the package's newest."""
    import onnx.checker
    import onnx.defs
    newest, check_graph = onnx.defs.onnx_opset_version, onnx.checker.check_graph
    context = onnx.checker.C.CheckerContext()
    context.ir_version = onnx.IR_VERSION
    context.opset_imports = {'': version}
    onnx.defs.onnx_opset_version = lambda: version
    onnx.checker.check_graph = lambda graph, ctx=None: check_graph(graph, context)
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version, onnx.checker.check_graph = newest, check_graph


def unsupported_operators(sym, version=ONNX_OPSET):
    """Operators of ``sym`` that MXNet's ONNX exporter cannot convert at opset ``version``."""
    import mxnet as mx
    with onnx_opset(version):
        supported = set(mx.onnx.get_operator_support(version))
    used = {node['op'] for node in json.loads(sym.tojson())['nodes']} - {'null'}
    return sorted(used - supported)


def drop_initializer_inputs(model):
    """Weights listed as graph inputs stop ONNX Runtime from treating them as constants; keep only real inputs."""
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return model


def export_onnx(symbol_file, params_file, shape, onnx_path):
    """The pair as ONNX (opset 13, batch axis dynamic), validated; a UserError names what ONNX cannot express."""
    import mxnet as mx
    import numpy as np
    try:
        import onnx
    except ImportError:
        raise UserError('--onnx needs the onnx package: pip install "onnx>=1.13,<1.16"') from None
    sym = mx.sym.load(symbol_file)
    missing = unsupported_operators(sym)
    if missing:
        raise UserError('ONNX cannot express this network: MXNet operator%s %s ha%s no ONNX conversion (opset %d); '
                        'no .onnx written, the MXNet pair %s / %s still runs with MXNet'
                        % ('s' if len(missing) > 1 else '', ', '.join(missing), 've' if len(missing) > 1 else 's',
                           ONNX_OPSET, symbol_file, params_file))
    tmp = '%s.tmp%d' % (onnx_path, os.getpid())
    try:
        with onnx_opset():
            mx.onnx.export_model(symbol_file, params_file, [tuple(shape)], np.float32, tmp, dynamic=True,
                                 dynamic_input_shapes=[(None,) + tuple(shape[1:])])
        model = drop_initializer_inputs(onnx.load(tmp))
        onnx.checker.check_model(model)
        onnx.save(model, tmp)
    except (AttributeError, NotImplementedError, ValueError, onnx.checker.ValidationError) as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        reason = '%s: %s' % (type(err).__name__, str(err).splitlines()[0][:200])
        raise UserError('ONNX cannot express this network (%s); no .onnx written, the MXNet pair %s / %s still '
                        'runs with MXNet' % (reason, symbol_file, params_file)) from None
    os.replace(tmp, onnx_path)
    return onnx_path
