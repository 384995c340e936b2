"""Which video recognizers gluoncv's model zoo has, and what input each one takes.

The zoo's action-recognition models are read from gluoncv itself (every factory of
``gluoncv.model_zoo.action_recognition``), so a new gluoncv version shows up here. What each
family accepts was measured on gluoncv 0.10.5 with forward passes of the networks built from
scratch (tests/test_model_sweep.py checks every bound against the real networks; MXNet's
symbolic shape inference is no help: it lets a wrong-sized Reshape through):

* 2-D networks (TSN style) take one frame per segment, 4-D input (N*S, 3, H, W);
* 3-D networks take ``--new-length`` frames per segment, 5-D input (N*S, 3, T, H, W);
* SlowFast networks take 5-D input whose T is their fast frames followed by their slow
  frames, which ``--slowfast`` sampling produces.

``check_input`` turns a command line that cannot work into one UserError naming the flag.
"""
import re
from collections import namedtuple

from .data import slowfast_frame_counts
from .errors import UserError

ACTION_RECOGNITION_MODULE = 'gluoncv.model_zoo.action_recognition'
INT8_SUFFIX = '_int8'

# kind: '2d', '3d' or 'slowfast'; regions: ((min_frames, max_frames), (min_size, max_size)) pairs the
# network accepts, None meaning no upper bound; slowfast: (fast frames, slow frames) per segment.
Layout = namedtuple('Layout', 'family kind regions slowfast')
ANY_SIZE = (1, None)


def _layout(family, kind, *regions):
    return Layout(family, kind, tuple(regions), None)


# First match wins: i3d_inceptionv*_ and i3d_slow_ come before the other i3d_ models.
_FAMILIES = [
    (r'vgg16_', _layout('vgg16', '2d', ((1, 1), (32, None)))),
    # Their fixed 7x7 / 8x8 average pools must give 1x1 maps.
    (r'inceptionv1_', _layout('inceptionv1', '2d', ((1, 1), (223, 446)))),
    (r'inceptionv3_', _layout('inceptionv3', '2d', ((1, 1), (299, 554)))),
    (r'resnet\d+_v1b_', _layout('resnet_v1b', '2d', ((1, 1), ANY_SIZE))),
    # Its classifier takes exactly 8192 = 512 x (frames // 16) x (px // 32 + 1)^2 features.
    (r'c3d_', _layout('c3d', '3d', ((16, 31), (96, 127)), ((64, 79), (32, 63)), ((256, 271), (16, 31)))),
    (r'p3d_', _layout('p3d', '3d', ((16, 31), ANY_SIZE))),
    (r'r2plus1d_', _layout('r2plus1d', '3d', ((1, None), ANY_SIZE))),
    (r'i3d_inceptionv1_', _layout('i3d_inceptionv1', '3d', ((5, None), (17, None)))),
    (r'i3d_inceptionv3_', _layout('i3d_inceptionv3', '3d', ((1, None), (75, None)))),
    (r'i3d_slow_', _layout('i3d_slow', '3d', ((1, None), ANY_SIZE))),
    (r'i3d_', _layout('i3d_resnet', '3d', ((5, None), ANY_SIZE))),
]
# slowfast_<slow frames>x<slow stride>_...: GluonCV samples new_length = frames x stride consecutive
# frames and keeps every 2nd for the fast pathway.
_SLOWFAST = re.compile(r'slowfast_(\d+)x(\d+)_')
SLOWFAST_FAST_STRIDE = 2


def _zoo():
    from gluoncv.model_zoo.model_zoo import _models
    return _models


def video_models():
    """Every float32 action-recognition model of the installed gluoncv's zoo, in zoo order."""
    return [name for name, factory in _zoo().items()
            if getattr(factory, '__module__', '').startswith(ACTION_RECOGNITION_MODULE)]


def int8_video_models():
    """The zoo's INT8 versions of video models (inference only)."""
    fp32 = set(video_models())
    return [name for name in _zoo() if name.endswith(INT8_SUFFIX) and name[:-len(INT8_SUFFIX)] in fp32]


def slowfast_strides(model):
    """(new_length, fast_temporal_stride, slow_temporal_stride) GluonCV samples for a SlowFast model."""
    found = _SLOWFAST.match(model.lower())
    slow_frames, slow_stride = int(found.group(1)), int(found.group(2))
    return slow_frames * slow_stride, SLOWFAST_FAST_STRIDE, slow_stride


def input_layout(model):
    """The Layout of a video model of the zoo; anything else is a UserError saying why."""
    name = model.lower()
    if name.endswith(INT8_SUFFIX) and name in int8_video_models():
        raise UserError('--model %s is an INT8 model for inference only; it cannot be trained. Train --model %s '
                        'and quantize the result with the INT8 tools (scripts/test_recognizer.py --calibration), '
                        'or evaluate these weights with scripts/test_recognizer.py --quantized'
                        % (model, name[:-len(INT8_SUFFIX)]))
    if name not in video_models():
        raise UserError('--model %s is not a video recognizer of the GluonCV model zoo; choose one of its %d, '
                        'e.g. vgg16_ucf101, i3d_resnet50_v1_kinetics400 or slowfast_4x16_resnet50_kinetics400 '
                        '(all are listed in the README)' % (model, len(video_models())))
    if _SLOWFAST.match(name):
        new_length, fast_stride, slow_stride = slowfast_strides(name)
        frames = (new_length // fast_stride, new_length // slow_stride)
        # The network slices its fast then slow frames off the front: more frames pass unseen.
        return Layout('slowfast', 'slowfast', (((sum(frames), None), ANY_SIZE),), frames)
    return next(layout for pattern, layout in _FAMILIES if re.match(pattern, name))


def smallest_input(model, floor=1):
    """(frames per segment, crop size) of the model's smallest accepted input, crop at least ``floor`` px."""
    layout = input_layout(model)
    candidates = [(frames[0], max(size[0], floor)) for frames, size in layout.regions
                  if size[1] is None or size[1] >= floor]
    return min(candidates, key=lambda pair: pair[0] * pair[1] * pair[1])


def input_flags(model, frames, size):
    """The trainer flags that feed ``model`` clips of ``frames`` frames per segment at ``size`` px."""
    flags = ['--input-size', str(size)]
    layout = input_layout(model)
    if layout.kind == 'slowfast':
        new_length, fast_stride, slow_stride = slowfast_strides(model)
        return flags + ['--input-5d', '--new-length', str(new_length), '--slowfast', '--fast-temporal-stride',
                        str(fast_stride), '--slow-temporal-stride', str(slow_stride)]
    if layout.kind == '3d':
        return flags + ['--input-5d', '--new-length', str(frames)]
    return flags


def _within(value, bounds):
    return bounds[0] <= value and (bounds[1] is None or value <= bounds[1])


def _describe(bounds, unit):
    low, high = bounds
    if high is None:
        return 'any size' if (low, unit) == (1, 'px') else 'at least %d %s' % (low, unit)
    return '%d %s' % (low, unit) if low == high else '%d-%d %s' % (low, high, unit)


def _describe_regions(layout):
    return ' or '.join(_describe(frames, 'frames') + ('' if size == ANY_SIZE else ' at ' + _describe(size, 'px'))
                       for frames, size in layout.regions)


def _check_2d(model, new_length, input_5d, slowfast):
    wrong = [flag for flag, bad in (('--new-length %d' % new_length, new_length != 1),
                                    ('--input-5d', input_5d), ('--slowfast', slowfast)) if bad]
    if wrong:
        raise UserError('--model %s is a 2-D network: it takes one frame per segment (4-D input); drop %s '
                        '(for more frames raise --num-segments)' % (model, ' '.join(wrong)))


def _check_slowfast(model, layout, new_length, new_step, slowfast, fast_stride, slow_stride):
    fast, slow = layout.slowfast
    how = ' '.join(input_flags(model, 0, 0)[2:])
    if not slowfast:
        raise UserError('--model %s takes %d fast + %d slow frames per segment (5-D input): add %s'
                        % (model, fast, slow, how))
    got = slowfast_frame_counts(new_length, new_step, fast_stride, slow_stride)
    if got != (fast, slow):
        raise UserError('--new-length %d --fast-temporal-stride %d --slow-temporal-stride %d sample %d fast + %d '
                        'slow frames, but --model %s takes %d + %d: use %s'
                        % (new_length, fast_stride, slow_stride, got[0], got[1], model, fast, slow, how))


def _check_3d(model, layout, new_length, input_5d, slowfast):
    # The first region is the one GluonCV trains in (c3d: 16 frames at 112 px).
    how = ' '.join(input_flags(model, layout.regions[0][0][0], 0)[2:])
    if slowfast:
        raise UserError('--slowfast samples frames for SlowFast networks and --model %s is not one; drop '
                        '--slowfast' % model)
    if new_length == 1 and not input_5d:
        raise UserError('--model %s takes 5-D input: add %s' % (model, how))
    if not any(_within(new_length, region[0]) for region in layout.regions):
        raise UserError('--new-length %d: --model %s takes %s per segment; e.g. %s'
                        % (new_length, model, _describe_regions(layout), how))


def check_input(model, new_length=1, input_size=224, input_5d=False, new_step=1, slowfast=False,
                fast_temporal_stride=2, slow_temporal_stride=16):
    """Refuse, with the flag to change, any input ``model`` cannot take; return its Layout.

    Arguments are the trainer's flags of the same names (``input_size`` is the crop side).
    """
    layout = input_layout(model)
    if layout.kind == '2d':
        _check_2d(model, new_length, input_5d, slowfast)
    elif layout.kind == 'slowfast':
        _check_slowfast(model, layout, new_length, new_step, slowfast, fast_temporal_stride, slow_temporal_stride)
    else:
        _check_3d(model, layout, new_length, input_5d, slowfast)
    _check_size(model, layout, sum(layout.slowfast) if layout.slowfast else new_length, input_size)
    return layout


def _check_size(model, layout, frames, input_size):
    if any(_within(frames, f) and _within(input_size, s) for f, s in layout.regions):
        return
    if layout.kind == '2d':
        raise UserError('--input-size %d: --model %s takes crops of %s; change --input-size (frames smaller than '
                        'the crop need --new-height/--new-width)' % (input_size, model,
                                                                     _describe(layout.regions[0][1], 'px')))
    raise UserError('--input-size %d with %d frames per segment: --model %s takes %s; change --input-size or '
                    '--new-length' % (input_size, frames, model, _describe_regions(layout)))
