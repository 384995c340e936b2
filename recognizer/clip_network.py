"""Networks for the after-training tools (export, FLOPs, clips/s): built whole, segments averaged inside.

Evaluation scores every view on its own (``recognizer.evaluation.load_network`` builds with
``num_segments=1``); an exported or measured network instead takes a whole clip, its
``num_segments`` views stacked along axis 0, and averages them before the classifier as the
TSN network does in training. ``build_clip_network`` is the one call of
``recognizer.models.build_network`` in these tools.
"""
from .errors import UserError


def build_clip_network(model, num_classes, ctx, num_segments=1, num_crop=1, batch_norm=False,
                       use_pretrained=False, hashtag='', dtype='float32'):
    """The model-zoo network, initialised on ``ctx``, never fetching ImageNet base weights."""
    from .models import build_network
    return build_network(model, num_classes, ctx, num_segments=num_segments, num_crop=num_crop,
                         use_pretrained=use_pretrained, hashtag=hashtag, pretrained_base=False,
                         batch_norm=batch_norm, dtype=dtype)


def load_clip_network(opt, ctx, num_segments):
    """build_clip_network + --resume-params (checked as the evaluation checks it) or the zoo's weights."""
    from .checkpoint import load_params
    net = build_clip_network(opt.model, opt.num_classes, ctx, num_segments=num_segments, batch_norm=opt.batch_norm,
                             use_pretrained=opt.use_pretrained and not opt.resume_params, hashtag=opt.hashtag)
    if opt.resume_params:
        load_params(net, opt.resume_params, ctx, opt.model, opt.num_classes, opt.batch_norm)
    return net


def is_3d(new_length, input_5d=False):
    """3-D CNNs (clips of several frames, or --input-5d) take (N, 3, T, H, W)."""
    return new_length > 1 or input_5d


def input_shape(clips, num_segments, new_length, input_size, input_5d=False):
    """Shape of the network input for ``clips`` clips: their segments stacked along axis 0."""
    if is_3d(new_length, input_5d):
        return (clips * num_segments, 3, new_length, input_size, input_size)
    return (clips * num_segments, 3, input_size, input_size)


def add_network_args(p):
    """The network flags of the after-training tools: those of the trainer (recognizer/options.py)."""
    from . import options
    options.add_view_args(p)
    options.add_network_args(p)


def check_network_args(opt):
    for flag, value in (('--num-segments', opt.num_segments), ('--input-size', opt.input_size),
                        ('--new-length', opt.new_length), ('--num-classes', opt.num_classes)):
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))
    return opt
