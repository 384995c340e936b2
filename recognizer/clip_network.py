"""Networks for the after-training tools (export, FLOPs, clips/s): built whole, segments averaged inside.

Evaluation scores every view on its own (``recognizer.evaluation.load_network`` builds with
``num_segments=1``); an exported or measured network instead takes a whole clip, its
``num_segments`` views stacked along axis 0, and averages them before the classifier as the
TSN network does in training. ``build_clip_network`` is the one call of
``recognizer.models.build_network`` in these tools.
"""
import argparse
import os

from .errors import UserError


def build_clip_network(model, num_classes, ctx, num_segments=1, num_crop=1, batch_norm=False,
                       use_pretrained=False, hashtag='', dtype='float32'):
    """The model-zoo network, initialised on ``ctx``, never fetching ImageNet base weights."""
    from .models import build_network
    options = argparse.Namespace(model=model, num_classes=num_classes, num_segments=num_segments,
                                 num_crop=num_crop, use_pretrained=use_pretrained, hashtag=hashtag,
                                 no_pretrained_base=True, batch_norm=batch_norm, use_tsn=False, partial_bn=False,
                                 freeze_bn=False, use_kinetics_pretrain=False, dtype=dtype)
    return build_network(options, ctx)


def load_clip_network(opt, ctx, num_segments):
    """build_clip_network + --resume-params (checked as the evaluation checks it) or the zoo's weights."""
    from mxnet import base
    from .evaluation import check_params_fit
    net = build_clip_network(opt.model, opt.num_classes, ctx, num_segments=num_segments, batch_norm=opt.batch_norm,
                             use_pretrained=opt.use_pretrained and not opt.resume_params, hashtag=opt.hashtag)
    if opt.resume_params:
        path = os.path.expanduser(opt.resume_params)
        check_params_fit(net, path, opt)
        try:
            net.load_parameters(path, ctx=ctx)
        except (base.MXNetError, AssertionError, ValueError) as err:
            raise UserError('%s does not fit --model %s --num-classes %d (%s)'
                            % (path, opt.model, opt.num_classes, str(err).splitlines()[0][:200])) from None
    return net


def is_3d(new_length, input_5d=False):
    """3-D CNNs (clips of several frames, or --input-5d) take (N, 3, T, H, W)."""
    return new_length > 1 or input_5d


def input_shape(clips, num_segments, new_length, input_size, input_5d=False):
    """Shape of the network input for ``clips`` clips: their segments stacked along axis 0."""
    if is_3d(new_length, input_5d):
        return (clips * num_segments, 3, new_length, input_size, input_size)
    return (clips * num_segments, 3, input_size, input_size)


def add_network_args(p, resume=True):
    """--model, --num-classes, --batch-norm, --input-size, --num-segments, --new-length, --input-5d[, weights]."""
    p.add_argument('--model', type=str, required=True, help='model-zoo name, e.g. vgg16_ucf101.')
    p.add_argument('--num-classes', type=int, default=101, help='number of classes of the classifier.')
    p.add_argument('--batch-norm', action='store_true', help='VGG16-BN backbone (a checkpoint trained with it).')
    p.add_argument('--input-size', type=int, default=224, help='crop side fed to the network.')
    p.add_argument('--num-segments', type=int, default=1, help='segments per clip, averaged inside the network.')
    p.add_argument('--new-length', type=int, default=1, help='frames per segment (3-D CNNs: the clip length).')
    p.add_argument('--input-5d', action='store_true', help='5-D input (N, C, T, H, W) even for one frame.')
    if resume:
        p.add_argument('--resume-params', type=str, default='',
                       help='.params file saved by train_recognizer.py; default: freshly initialised weights.')
        p.add_argument('--use-pretrained', action='store_true',
                       help='the model zoo\'s weights (from the MXNet model cache) instead.')
        p.add_argument('--hashtag', type=str, default='', help='hashtag of the pretrained weights.')


def check_network_args(opt):
    for flag, value in (('--num-segments', opt.num_segments), ('--input-size', opt.input_size),
                        ('--new-length', opt.new_length), ('--num-classes', opt.num_classes)):
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))
    return opt
