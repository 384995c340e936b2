"""Build GluonCV model-zoo recognizers so that they work offline and from scratch.

The gluoncv 0.10.5 problems handled here:
* pretrained weights are downloaded on demand, which fails offline with a long
  traceback; we look in MXNet's model cache first and otherwise stop with a
  UserError that names the file, the folder and the ``--no-pretrained-base`` way out;
* ``pretrained_base=False`` leaves the backbone uninitialised and the factory's own
  ``reset_ctx`` call raises "Cannot reset context ... not initialized"; we let that
  call pass for uninitialised parameters and initialise them ourselves;
* the resnet*_v1b_* factories never pass ``pretrained_base`` on (their backbone downloads
  ImageNet weights regardless); we make it reach the backbone;
* factories swallow unknown keywords in ``**kwargs`` or hand them to a Block, which raises
  (``bn_frozen`` for i3d_inceptionv1); each keyword goes only to a factory that names it.
Which input each model takes is recognizer/zoo.py's business.
"""
import contextlib
import os
import re
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


def _factory(model):
    from gluoncv.model_zoo.model_zoo import _models
    return _models[model.lower()]


def _named_parameters(function):
    import inspect
    return {name for name, p in inspect.signature(function).parameters.items() if p.kind != p.VAR_KEYWORD}


def _accepts(model_name, kwarg):
    """Whether the zoo factory of ``model_name`` names ``kwarg`` (``**kwargs`` swallows, or crashes on, others)."""
    return kwarg in _named_parameters(_factory(model_name))


def _resnet_depth(model):
    found = re.match(r'resnet(\d+)_v1b_', model.lower())
    return int(found.group(1)) if found else None


def _resnet_backbone_kwargs(model):
    """Keyword arguments a resnet*_v1b_* recognizer's backbone uses, when build_network forwards them.

    GluonCV's factories drop their **kwargs; build_network hands them to ResNetV1b, whose blocks use
    last_gamma only in bottlenecks (depth 50 and more).
    """
    from gluoncv.model_zoo import resnetv1b
    depth = _resnet_depth(model)
    if depth is None:
        return set()
    block = resnetv1b.BottleneckV1b if depth >= 50 else resnetv1b.BasicBlockV1b
    names = _named_parameters(resnetv1b.ResNetV1b.__init__) - {'self', 'block', 'layers', 'classes', 'name_prefix'}
    if 'last_gamma' not in _named_parameters(block.__init__):
        names.discard('last_gamma')
    return names


def kinetics_pretrain_models():
    """The zoo models whose factory can start from Kinetics400 weights (use_kinetics_pretrain)."""
    from gluoncv.model_zoo.model_zoo import _models
    return [name for name in _models if 'use_kinetics_pretrain' in _named_parameters(_models[name])]


def accepts_kwarg(model, kwarg):
    """Whether ``kwarg`` (e.g. last_gamma, use_se, norm_layer) reaches a constructor of ``model`` that uses it.

    For the zoo factory's own named arguments, and for resnet*_v1b_* the backbone arguments
    build_network forwards; any other keyword would be dropped (or break the build).
    """
    return _accepts(model, kwarg) or kwarg in _resnet_backbone_kwargs(model)


@contextlib.contextmanager
def resnet_backbone_as_asked(pretrained_base, backbone_kwargs):
    """Make the resnet*_v1b_* factories honour pretrained_base (and pass backbone keywords on).

    gluoncv 0.10.5's factories build ActionRecResNetV1b without pretrained_base, so its default
    (True) downloads ImageNet weights even for pretrained_base=False. Wrapping the class's __init__
    for the duration of the call reaches every construction, including the Kinetics400 source
    model of use_kinetics_pretrain.
    """
    from gluoncv.model_zoo.action_recognition.actionrec_resnetv1b import ActionRecResNetV1b
    original = ActionRecResNetV1b.__init__

    def init(block, *args, **kwargs):
        kwargs.update(backbone_kwargs, pretrained_base=pretrained_base)
        original(block, *args, **kwargs)

    ActionRecResNetV1b.__init__ = init
    try:
        yield
    finally:
        ActionRecResNetV1b.__init__ = original


def _split_factory_kwargs(model, factory_kwargs):
    """(keywords for the factory, keywords for the resnet backbone); unusable ones are a UserError."""
    unusable = sorted(k for k in factory_kwargs if not accepts_kwarg(model, k))
    if unusable:
        raise UserError('--model %s takes no %s (its GluonCV factory would ignore it); leave it out'
                        % (model, ', '.join(unusable)))
    backbone = {k: v for k, v in factory_kwargs.items() if not _accepts(model, k)}
    return {k: v for k, v in factory_kwargs.items() if k not in backbone}, backbone


def _factory_kwargs(model, num_classes, pretrained_base, num_segments, num_crop, use_pretrained, hashtag,
                    use_tsn, partial_bn, freeze_bn, use_kinetics_pretrain):
    """The keywords of GluonCV's get_model call, each passed only to a factory that names it."""
    kwargs = dict(nclass=num_classes, pretrained=(hashtag or True) if use_pretrained else False,
                  num_segments=num_segments, num_crop=num_crop)
    optional = {
        'pretrained_base': pretrained_base,
        # inceptionv*_kinetics400/_sthsthv2 call it tsn; no 0.10.5 recognizer reads either.
        'use_tsn': use_tsn, 'tsn': use_tsn,
        # As GluonCV's CLI: the flag's value, never the factory's own default (True for inceptionv3_ucf101).
        'partial_bn': partial_bn,
        # Only i3d_resnet50_v1_kinetics400 and i3d_slow take it; others would pass it on to a Block and crash.
        'bn_frozen': freeze_bn,
        # gluoncv defaults this to True (download Kinetics400 weights even with pretrained_base=False);
        # here it is the explicit --use-kinetics-pretrain choice.
        'use_kinetics_pretrain': use_kinetics_pretrain,
    }
    kwargs.update((k, v) for k, v in optional.items() if _accepts(model, k))
    return kwargs


def _create(model, num_classes, pretrained_base, num_segments, num_crop, use_pretrained, hashtag, use_tsn,
            batch_norm, partial_bn, freeze_bn, use_kinetics_pretrain, factory_kwargs):
    from gluoncv.model_zoo import get_model
    if batch_norm and model.startswith('vgg16_'):
        if use_pretrained:
            raise UserError('--use-pretrained with --batch-norm: the model zoo has no VGG16-BN '
                            'recognizer weights; drop one of the two flags')
        return _vgg_with_batch_norm(num_classes, pretrained_base, num_segments, num_crop)
    kwargs = _factory_kwargs(model, num_classes, pretrained_base, num_segments, num_crop, use_pretrained, hashtag,
                             use_tsn, partial_bn, freeze_bn, use_kinetics_pretrain)
    own, backbone = _split_factory_kwargs(model, factory_kwargs or {})
    kwargs.update(own)
    if _resnet_depth(model) is None:
        return get_model(model, **kwargs)
    with resnet_backbone_as_asked(pretrained_base, backbone):
        return get_model(model, **kwargs)


def avoid_onednn_conv3d_batchnorm_crash(net, ctx):
    """Turn oneDNN off for 3-D CNNs with BatchNorm (I3D, R(2+1)D, P3D, SlowFast) on CPU contexts.

    MXNet 1.9's oneDNN CPU build fails the backward pass of a Conv3D followed by BatchNorm
    ("Check failed: !is_view"), i.e. every I3D training step. MXNet reads MXNET_MKLDNN_ENABLED
    lazily, when the process runs its first oneDNN-capable operator, so this works as long as the
    network is built before anything has run (as in train_recognizer.py); an explicit user setting is kept.
    C3D has no BatchNorm and keeps oneDNN, which runs its training step 4x faster (10.7 s against 42.7 s
    for 2 clips of 64 frames at 32 px).
    """
    if not any(c.device_type == 'cpu' for c in ctx):
        return
    kinds = set()
    net.apply(lambda block: kinds.add(type(block)))
    if any(issubclass(k, gluon.nn.Conv3D) for k in kinds) and any(issubclass(k, gluon.nn.BatchNorm) for k in kinds):
        os.environ.setdefault('MXNET_MKLDNN_ENABLED', '0')
        os.environ.setdefault('MXNET_STORAGE_FALLBACK_LOG_VERBOSE', '0')


def build_network(model, num_classes, ctx, num_segments=1, num_crop=1, use_pretrained=False, hashtag='',
                  pretrained_base=True, use_tsn=False, batch_norm=False, partial_bn=False, freeze_bn=False,
                  use_kinetics_pretrain=False, dtype='float32', factory_kwargs=None):
    """The model-zoo network ``model``, initialised on the list of contexts ``ctx``.

    ``pretrained_base`` asks for ImageNet backbone weights (ignored with ``use_pretrained``, which
    loads the whole recognizer); ``use_kinetics_pretrain`` starts i3d_*_ucf101 from Kinetics400
    weights (only when neither of the other two says otherwise). ``factory_kwargs`` go to the
    model-zoo factory that uses them (see ``accepts_kwarg``).
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
        if not _accepts(model, 'use_kinetics_pretrain'):
            raise UserError('--use-kinetics-pretrain: --model %s has no Kinetics400-pretrained start; it exists '
                            'for %s. Drop the flag' % (model, ', '.join(kinetics_pretrain_models())))
        # The Kinetics400 weights replace every layer but the classifier: ImageNet weights are not needed.
        pretrained_base = False
        what = 'the Kinetics400-trained weights of --use-kinetics-pretrain'
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
