"""Build GluonCV model-zoo recognizers so that they work offline and from scratch.

Two gluoncv 0.10.5 problems are handled here:
* pretrained weights are downloaded on demand, which fails offline with a long
  traceback; we look in MXNet's model cache first and otherwise stop with a
  UserError that names the file, the folder and the ``--no-pretrained-base`` way out;
* ``pretrained_base=False`` leaves the backbone uninitialised and the factory's own
  ``reset_ctx`` call raises "Cannot reset context ... not initialized"; we let that
  call pass for uninitialised parameters and initialise them ourselves.
"""
import contextlib
import os
import warnings

import mxnet as mx
from mxnet import gluon

from .errors import UserError


def model_cache_dir():
    """Where gluoncv looks for weights: $MXNET_HOME/models, default ~/.mxnet/models."""
    home = os.environ.get('MXNET_HOME', os.path.join('~', '.mxnet'))
    return os.path.expanduser(os.path.join(home, 'models'))


def weight_file_name(name, tag=None):
    from gluoncv.model_zoo.model_store import short_hash
    return '%s-%s.params' % (name, tag if isinstance(tag, str) else short_hash(name))


@contextlib.contextmanager
def offline_model_store(model_name, what, way_out='pass --no-pretrained-base to train from scratch'):
    """Turn a failed weight download into a UserError naming the file to provide."""
    from gluoncv.model_zoo import model_store
    original = model_store.get_model_file

    def cached_or_download(name, tag=None, root=None):
        root = model_cache_dir()
        try:
            return original(name, tag=tag, root=root)
        except Exception as err:  # requests/OS errors of every kind when offline
            raise UserError(
                '--model %s needs %s (%s) in %s: it is not there and the download failed (%s). '
                'Copy the file there (or point MXNET_HOME at a folder whose models/ has it), or %s.'
                % (model_name, weight_file_name(name, tag), what, root, type(err).__name__, way_out)
            ) from None

    model_store.get_model_file = cached_or_download
    try:
        yield
    finally:
        model_store.get_model_file = original


@contextlib.contextmanager
def tolerate_uninitialized_reset_ctx():
    """Let gluoncv factories call reset_ctx on a backbone built without pretrained weights."""
    original = gluon.Parameter.reset_ctx

    def reset_ctx(param, ctx):
        if param._data is None and not param._deferred_init:
            return
        original(param, ctx)

    gluon.Parameter.reset_ctx = reset_ctx
    try:
        yield
    finally:
        gluon.Parameter.reset_ctx = original


def _vgg_with_batch_norm(num_classes, pretrained_base, num_segments, num_crop):
    # vgg16_ucf101() does not forward batch_norm to its backbone, so build the block directly.
    from gluoncv.model_zoo.action_recognition.actionrec_vgg16 import ActionRecVGG16
    return ActionRecVGG16(nclass=num_classes, pretrained_base=pretrained_base, num_segments=num_segments,
                          num_crop=num_crop, dropout_ratio=0.9, init_std=0.001, batch_norm=True)


def factory_accepts(model_name, kwarg):
    """Whether gluoncv's factory for ``model_name`` names ``kwarg`` among its parameters."""
    import inspect
    from gluoncv.model_zoo.model_zoo import _models
    return kwarg in inspect.signature(_models[model_name.lower()]).parameters


def _create(model, num_classes, pretrained_base, num_segments, num_crop, use_pretrained, hashtag, use_tsn,
            batch_norm, partial_bn, freeze_bn, use_kinetics_pretrain, factory_kwargs):
    from gluoncv.model_zoo import get_model
    if batch_norm and model.startswith('vgg16_'):
        if use_pretrained:
            raise UserError('--use-pretrained with --batch-norm: the model zoo has no VGG16-BN '
                            'recognizer weights; drop one of the two flags')
        return _vgg_with_batch_norm(num_classes, pretrained_base, num_segments, num_crop)
    kwargs = dict(nclass=num_classes, pretrained=(hashtag or True) if use_pretrained else False,
                  pretrained_base=pretrained_base, num_segments=num_segments, num_crop=num_crop)
    if use_tsn:
        kwargs['use_tsn'] = True
    if partial_bn or factory_accepts(model, 'partial_bn'):
        # As GluonCV's CLI: the flag's value, never the factory's own default (True for inceptionv3_ucf101).
        kwargs['partial_bn'] = partial_bn
    if freeze_bn:
        kwargs['bn_frozen'] = True
    if factory_accepts(model, 'use_kinetics_pretrain'):
        # gluoncv defaults this to True (download Kinetics400 weights even with pretrained_base=False);
        # here it is the explicit --use-kinetics-pretrain choice.
        kwargs['use_kinetics_pretrain'] = use_kinetics_pretrain
    kwargs.update(factory_kwargs or {})
    return get_model(model, **kwargs)


def avoid_onednn_conv3d_batchnorm_crash(net, ctx):
    """Turn oneDNN off for 3-D CNNs (I3D) on CPU contexts.

    MXNet 1.9's oneDNN CPU build fails the backward pass of a Conv3D followed by BatchNorm
    ("Check failed: !is_view"), i.e. every I3D training step. MXNet reads MXNET_MKLDNN_ENABLED
    lazily, when the process runs its first oneDNN-capable BatchNorm, so this works as long as the
    network is built before anything has run (as in train_recognizer.py); an explicit user setting is kept.
    """
    if not any(c.device_type == 'cpu' for c in ctx):
        return
    found = []
    net.apply(lambda block: found.append(block) if isinstance(block, gluon.nn.Conv3D) else None)
    if found:
        os.environ.setdefault('MXNET_MKLDNN_ENABLED', '0')
        os.environ.setdefault('MXNET_STORAGE_FALLBACK_LOG_VERBOSE', '0')


def build_network(model, num_classes, ctx, num_segments=1, num_crop=1, use_pretrained=False, hashtag='',
                  pretrained_base=True, use_tsn=False, batch_norm=False, partial_bn=False, freeze_bn=False,
                  use_kinetics_pretrain=False, dtype='float32', factory_kwargs=None):
    """The model-zoo network ``model``, initialised on the list of contexts ``ctx``.

    ``pretrained_base`` asks for ImageNet backbone weights (ignored with ``use_pretrained``, which
    loads the whole recognizer); ``use_kinetics_pretrain`` starts i3d_*_ucf101 from Kinetics400
    weights (only when neither of the other two says otherwise). ``factory_kwargs`` go to the
    model-zoo factory as they are (see ``factory_accepts``).
    """
    from gluoncv.model_zoo import get_model_list
    if model.lower() not in get_model_list():
        raise UserError('--model %s is not in the GluonCV model zoo; for UCF101 use vgg16_ucf101, '
                        'inceptionv3_ucf101 or i3d_resnet50_v1_ucf101' % model)
    use_kinetics_pretrain = use_kinetics_pretrain and pretrained_base and not use_pretrained
    pretrained_base = pretrained_base and not use_pretrained
    what = 'pretrained weights' if use_pretrained else 'ImageNet-pretrained base weights'
    way_out = {}
    if use_kinetics_pretrain:
        if not factory_accepts(model, 'use_kinetics_pretrain'):
            raise UserError('--use-kinetics-pretrain: --model %s has no Kinetics400-pretrained start; it exists '
                            'for i3d_*_ucf101 models. Drop the flag' % model)
        # The Kinetics400 weights replace every layer but the classifier: ImageNet weights are not needed.
        pretrained_base = False
        what = 'the Kinetics400-trained I3D weights of --use-kinetics-pretrain'
        way_out['way_out'] = ('drop --use-kinetics-pretrain to start from ImageNet weights, or pass '
                              '--no-pretrained-base to train from scratch')
    with offline_model_store(model, what, **way_out), tolerate_uninitialized_reset_ctx():
        net = _create(model, num_classes, pretrained_base, num_segments, num_crop, use_pretrained, hashtag,
                      use_tsn, batch_norm, partial_bn, freeze_bn, use_kinetics_pretrain, factory_kwargs)
    with warnings.catch_warnings():
        # Parameters that came initialised (pretrained or the classifier) are left as they are.
        warnings.simplefilter('ignore')
        net.initialize(mx.init.Xavier(), ctx=ctx)
    net.collect_params().reset_ctx(ctx)
    avoid_onednn_conv3d_batchnorm_crash(net, ctx)
    if dtype != 'float32':
        net.cast(dtype)
    return net


def first_batchnorm_params(net):
    """Parameter names of the first BatchNorm layer (the one --partial-bn keeps training)."""
    found = []

    def visit(block):
        if not found and isinstance(block, gluon.nn.BatchNorm):
            found.extend(block.collect_params().keys())
    net.apply(visit)
    return found


def trainable_params(net, partial_bn=False, freeze_bn=False):
    """What the optimizer updates: all, or weights/biases only under --partial-bn/--freeze-bn."""
    params = net.collect_params()
    if not (partial_bn or freeze_bn):
        return params
    keep = set(net.collect_params('.*weight|.*bias').keys())
    if partial_bn:
        keep.update(first_batchnorm_params(net))
    for name, param in params.items():
        if name not in keep:
            param.grad_req = 'null'   # frozen: no point computing its gradient
    return [params[name] for name in params.keys() if name in keep]


def disable_bias_and_bn_decay(net):
    """--no-wd: no weight decay on biases and BatchNorm beta/gamma, as GluonCV."""
    for param in net.collect_params('.*beta|.*gamma|.*bias').values():
        param.wd_mult = 0.0


def weights_source(path_or_model):
    """A .params path as given, or the model cache's file for a model-zoo name (UserError when absent)."""
    from gluoncv.model_zoo import get_model_list, model_store
    if os.path.exists(os.path.expanduser(path_or_model)) or path_or_model.lower() not in get_model_list():
        return path_or_model
    with offline_model_store(path_or_model, 'the model zoo\'s weights', 'pass a .params file instead'):
        return model_store.get_model_file(path_or_model.lower(), root=model_cache_dir())
