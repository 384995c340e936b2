"""What a network costs: multiply-adds and parameters read from its graph, and forward passes per second.

FLOPs are counted from the MXNet symbol of the network traced on the real input shape: every
Convolution, Deconvolution, FullyConnected, dot and batch_dot node contributes its
multiply-adds (output elements x the products that make each one), with the shapes MXNet's own
shape inference gives every node. One multiply-add is 2 FLOPs. Element-wise layers (ReLU,
BatchNorm, pooling, the segment average) are left out, as in the usual published figures
(VGG16 at 224 px: 15.5 G multiply-adds). Parameters are the arguments of the graph (weights,
biases, BatchNorm gamma/beta) without the input and BatchNorm's running statistics.
"""
import ast
import json
import time

import numpy as np

MAC_OPS = ('Convolution', 'Deconvolution', 'FullyConnected', 'dot', 'batch_dot')


def trace(net, shape):
    """(symbol, {internal output name: shape}, {argument name: shape}) of ``net`` on an input of ``shape``."""
    import mxnet as mx
    sym = net(mx.sym.var('data'))
    if isinstance(sym, (list, tuple)):
        sym = mx.sym.Group(list(sym))
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=shape)
    arg_shapes, _, _ = sym.infer_shape(data=shape)
    return sym, dict(zip(internals.list_outputs(), out_shapes)), dict(zip(sym.list_arguments(), arg_shapes))


def _entry_shape(nodes, entry, shapes):
    node = nodes[entry[0]]
    if node['op'] == 'null':
        return shapes.get(node['name'])
    name = node['name'] + '_output'
    return shapes.get(name) or shapes.get('%s%d' % (name, entry[1]))


def _attr(node, key, default):
    value = node.get('attrs', {}).get(key)
    if value is None:
        return default
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value in ('True', 'true', '1')


def node_macs(node, in_shapes, out_shape):
    """Multiply-adds of one graph node, given its input and output shapes."""
    op = node['op']
    out = int(np.prod(out_shape))
    if op == 'Convolution':
        kernel = int(np.prod(_attr(node, 'kernel', (1,))))
        return out * (in_shapes[0][1] // int(_attr(node, 'num_group', 1))) * kernel
    if op == 'Deconvolution':
        kernel = int(np.prod(_attr(node, 'kernel', (1,))))
        return int(np.prod(in_shapes[0])) * (out_shape[1] // int(_attr(node, 'num_group', 1))) * kernel
    if op == 'FullyConnected':
        features = int(np.prod(in_shapes[0][1:])) if _attr(node, 'flatten', True) else in_shapes[0][-1]
        return out * features
    # dot / batch_dot: every output element sums over the contracted axis of the first operand.
    return out * in_shapes[0][-2 if _attr(node, 'transpose_a', False) else -1]


def count_macs(net, shape):
    """{op: multiply-adds} of ``net`` on one input of ``shape`` (missing ops are absent)."""
    sym, shapes, _ = trace(net, shape)
    nodes = json.loads(sym.tojson())['nodes']
    macs = {}
    for index, node in enumerate(nodes):
        if node['op'] not in MAC_OPS:
            continue
        in_shapes = [_entry_shape(nodes, entry, shapes) for entry in node['inputs']]
        out_shape = _entry_shape(nodes, [index, 0], shapes)
        macs[node['op']] = macs.get(node['op'], 0) + node_macs(node, in_shapes, out_shape)
    return macs


def count_params(net, shape):
    """Learnable parameters of ``net`` as traced on ``shape`` (BatchNorm running statistics excluded)."""
    _, _, args = trace(net, shape)
    return int(sum(int(np.prod(s)) for name, s in args.items() if name != 'data'))


def time_runs(run, num_runs, num_warmup_runs):
    """Seconds per call of ``run`` (which must block until its result exists), warm-up calls excluded."""
    for _ in range(num_warmup_runs):
        run()
    start = time.perf_counter()
    for _ in range(num_runs):
        run()
    return (time.perf_counter() - start) / max(num_runs, 1)


def mxnet_runner(net, shape, ctx):
    """A call that runs ``net`` forward on fixed uniform(-1, 1) data and waits for the output."""
    import mxnet as mx
    data = mx.nd.random.uniform(-1.0, 1.0, shape=shape, ctx=ctx)

    def run():
        out = net(data)
        (out[0] if isinstance(out, (list, tuple)) else out).wait_to_read()
    return run
