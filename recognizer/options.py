"""Command-line flags of train_recognizer.py, scripts/test_recognizer.py and scripts/inference.py.

Each flag is declared once, with GluonCV's name, default and meaning; the scripts pick the groups
they need. Flags that take lists are converted by their argparse ``type`` (which raises a UserError, one
line and exit 2, naming the flag), so a parsed options object never changes type afterwards.
"""
from .errors import UserError
from .schedule import parse_decay_epochs

CROPS = (1, 3, 10)
DEFAULT_ROOT = '~/.mxnet/datasets/ucf101'


# ---------------------------------------------------------------- argparse types

def scale_ratios(text):
    """'1.0, 0.875' -> [1.0, 0.875]; a UserError (one line, exit 2) names the flag otherwise."""
    try:
        values = [float(x) for x in text.split(',') if x.strip()]
    except ValueError:
        raise UserError('--scale-ratios %r: expected comma-separated numbers, e.g. "1.0,0.875,0.75,0.66"'
                        % text) from None
    if not values or not all(0 < v <= 1 for v in values):
        raise UserError('--scale-ratios must be fractions in (0, 1], got %r' % text)
    return values


# ---------------------------------------------------------------- groups

def add_list_args(p, workers=4, train_list=True):
    """Where the clips are: data roots, list files, loading workers."""
    p.add_argument('--dataset', type=str, default='ucf101',
                   choices=['ucf101', 'kinetics400', 'somethingsomethingv2', 'hmdb51', 'custom'],
                   help='which dataset to use (all read the same list-file layout; the frame naming follows it).')
    p.add_argument('--name-pattern', type=str, default=None,
                   help='ours: frame file names as a printf pattern of the 1-based frame number; default as GluonCV: '
                        '%%06d.jpg for somethingsomethingv2, img_%%05d.jpg otherwise.')
    p.add_argument('--data-dir', type=str, default=DEFAULT_ROOT + '/rawframes',
                   help='root of the clip folders (or videos) named in the lists.')
    p.add_argument('--val-data-dir', type=str, default=None,
                   help='root for the validation list; default: --data-dir.')
    if train_list:
        p.add_argument('--train-list', type=str,
                       default=DEFAULT_ROOT + '/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt',
                       help='training list: "<clip> <num_frames> <0-based label>" per line.')
    p.add_argument('--val-list', type=str,
                   default=DEFAULT_ROOT + '/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt',
                   help='validation list, same format.')
    p.add_argument('-j', '--num-data-workers', dest='num_workers', default=workers, type=int,
                   help='number of data loading workers (0: load in the main process).')
    p.add_argument('--prefetch-ratio', type=float, default=2.0, help='batches prefetched per worker.')
    p.add_argument('--video-loader', action='store_true', help='read videos instead of frame folders.')
    p.add_argument('--use-decord', action='store_true', help='decode videos with decord.')
    p.add_argument('--skip-bad-samples', action='store_true',
                   help='replace (training) or leave out (evaluation) samples that cannot be decoded, and count them.')


def add_view_args(p, num_segments=1, new_height=0, new_width=0):
    """How a clip becomes network input: segments, frames per segment, frame and crop size.

    The defaults are the script's: GluonCV's test script resizes to 340x256, its training script
    keeps the frames; inference.py takes the 25 segments of the TSN test protocol.
    """
    p.add_argument('--num-segments', type=int, default=num_segments, help='TSN segments per clip.')
    p.add_argument('--new-height', type=int, default=new_height, help='resize frames to this height (0: keep).')
    p.add_argument('--new-width', type=int, default=new_width, help='resize frames to this width (0: keep).')
    p.add_argument('--new-length', type=int, default=1, help='consecutive frames per segment.')
    p.add_argument('--new-step', type=int, default=1, help='step between those frames.')
    p.add_argument('--input-size', type=int, default=224, help='network input side.')
    p.add_argument('--num-crop', type=int, default=1, choices=CROPS,
                   help='crops per segment (evaluation; --ten-crop/--three-crop set it to 10/3).')
    p.add_argument('--input-5d', action='store_true', help='5-D input (N, C, T, H, W) for 3-D CNNs.')
    p.add_argument('--slowfast', action='store_true',
                   help='SlowFast sampling: of --new-length consecutive frames, every --fast-temporal-stride-th '
                        '(fast pathway) followed by every --slow-temporal-stride-th (slow pathway); NAG in training.')
    p.add_argument('--slow-temporal-stride', type=int, default=16, help='--slowfast: slow pathway frame stride.')
    p.add_argument('--fast-temporal-stride', type=int, default=2, help='--slowfast: fast pathway frame stride.')


def add_network_args(p, model_required=True):
    """Which network, on which devices, from which weights."""
    p.add_argument('--model', type=str, required=model_required, default=None if model_required else 'vgg16_ucf101',
                   help='model-zoo name, e.g. vgg16_ucf101.')
    p.add_argument('--num-classes', type=int, default=101, help='number of classes.')
    p.add_argument('--use-pretrained', action='store_true', help='start from the model zoo\'s weights.')
    p.add_argument('--hashtag', type=str, default='', help='hashtag of the pretrained weights.')
    p.add_argument('--use-tsn', action='store_true', help='temporal segment network consensus.')
    p.add_argument('--batch-norm', action='store_true', help='VGG16-BN backbone for vgg16_* models.')
    p.add_argument('--mode', type=str, help='hybrid: hybridize with static memory (others: imperative).')
    p.add_argument('--dtype', type=str, default='float32', help='data type (float16 needs a GPU).')
    p.add_argument('--num-gpus', type=int, default=0, help='GPUs to use; 0 runs on the CPU.')
    p.add_argument('--resume-params', type=str, default='', help='.params file to start from (or to evaluate).')


def add_test_args(p):
    """The test protocol's own flags (scripts/test_recognizer.py, scripts/inference.py)."""
    p.add_argument('--ten-crop', action='store_true', help='10 crops: centre + 4 corners, and their mirrors.')
    p.add_argument('--three-crop', action='store_true', help='3 crops along the long side of the frame.')
    p.add_argument('--class-index', type=str, default=None,
                   help='classInd.txt ("<1-based index> <name>") for class names; default: the model zoo\'s '
                        'UCF101 names when there are 101 classes, else the class numbers.')
    p.add_argument('--score-average', type=str, default='softmax', choices=['softmax', 'logits'],
                   help='average per-view softmax scores (TSN protocol) or logits (ranks as GluonCV\'s script).')
    p.add_argument('--use-softmax', action='store_true',
                   help='GluonCV\'s softmax over the averaged scores: ranks as without it; reported scores '
                        'here are always probabilities (see --score-average).')
    p.add_argument('--views-per-pass', type=int, default=50,
                   help='most views (images) per forward pass per device; bounds memory.')


def add_augmentation_args(p):
    """Training-time data flags: multi-scale crops and data checks."""
    p.add_argument('--crop-ratio', type=float, default=0.875,
                   help='accepted for compatibility; GluonCV\'s video script does not use it either.')
    p.add_argument('--scale-ratios', type=scale_ratios, default='1.0, 0.875, 0.75, 0.66',
                   help='multi-scale crop sides as fractions of the short side.')
    p.add_argument('--max-distort', type=int, default=1, help='max aspect distortion between crop sides.')
    p.add_argument('--more-fix-crop', action='store_false',
                   help='GluonCV quirk kept as is: on by default (13 fixed offsets), the flag turns it off (5).')
    p.add_argument('--data-aug', type=str, default='v1', help='augmentation pipeline (v1 is built).')
    p.add_argument('--check-data', action='store_true',
                   help='decode every frame/video of both lists, report all broken ones, and exit.')


def add_training_model_args(p):
    """How the network starts and which parts of it train."""
    p.add_argument('--no-pretrained-base', action='store_true',
                   help='train the backbone from scratch instead of from ImageNet weights.')
    p.add_argument('--use-kinetics-pretrain', action='store_true',
                   help='i3d_*_ucf101: start from Kinetics400-trained I3D weights (all but the classifier; '
                        'not with --no-pretrained-base).')
    p.add_argument('--finetune-from', type=str, default='',
                   help='start from a .params file (or a model-zoo name, from the model cache) trained with another '
                        '--num-classes: every weight whose name and shape fit is loaded, the classifier starts fresh.')
    p.add_argument('--partial-bn', action='store_true', help='freeze all BatchNorm layers but the first.')
    p.add_argument('--freeze-bn', action='store_true', help='freeze all BatchNorm layers.')
    p.add_argument('--use-amp', action='store_true',
                   help='automatic mixed precision: float16 on GPUs, bfloat16 on CPUs with avx512_bf16 or AMX; '
                        'weights and checkpoints stay float32.')
    p.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default=None,
                   help='the low-precision type of --use-amp (default: float16 on GPUs, bfloat16 on CPUs).')


def add_regularisation_args(p):
    """Label smoothing, mixup, distillation, and GluonCV's model options for image backbones."""
    p.add_argument('--label-smoothing', action='store_true',
                   help='soft targets: 0.9 + 0.1/C on the true class, 0.1/C elsewhere (eta 0.1, as GluonCV).')
    p.add_argument('--mixup', action='store_true',
                   help='mix each batch with itself reversed, clips and targets, with a Beta(alpha, alpha) weight.')
    p.add_argument('--mixup-alpha', type=float, default=0.2, help='alpha of the mixup Beta distribution.')
    p.add_argument('--mixup-off-epoch', type=int, default=0, help='train the last N epochs without mixup.')
    p.add_argument('--teacher', type=str, default=None,
                   help='model-zoo name of a teacher for distillation (its weights: --teacher-params, or the '
                        'model zoo\'s from the model cache).')
    p.add_argument('--teacher-params', type=str, default='',
                   help='ours: a .params of the teacher trained here (same --num-classes and input layout).')
    p.add_argument('--temperature', type=float, default=20, help='distillation temperature.')
    p.add_argument('--hard-weight', type=float, default=0.5,
                   help='weight of the loss on the labels in distillation (the teacher\'s gets 1 - this).')
    p.add_argument('--last-gamma', action='store_true',
                   help='zero-init the last BN gamma of each block, where the model factory takes it.')
    p.add_argument('--use_se', action='store_true', help='SE layers, where the model factory takes it.')
    p.add_argument('--use-gn', action='store_true', help='group norm, where the model factory takes it.')


def add_optim_args(p, batch_size=True):
    """SGD and its learning-rate schedule (``batch_size=False``: the script declares its own)."""
    if batch_size:
        p.add_argument('--batch-size', type=int, default=25, help='clips per device.')
    p.add_argument('--num-epochs', type=int, default=3, help='training epochs.')
    p.add_argument('--lr', type=float, default=0.1, help='learning rate.')
    p.add_argument('--momentum', type=float, default=0.9, help='SGD momentum.')
    p.add_argument('--wd', type=float, default=0.0001, help='weight decay.')
    p.add_argument('--no-wd', action='store_true', help='no weight decay on biases and BN beta/gamma.')
    p.add_argument('--lr-mode', type=str, default='step', help='step, poly or cosine.')
    p.add_argument('--lr-decay', type=float, default=0.1, help='step decay factor.')
    p.add_argument('--lr-decay-period', type=int, default=0, help='decay every N epochs (0: use --lr-decay-epoch).')
    p.add_argument('--lr-decay-epoch', type=parse_decay_epochs, default='40,60', help='epochs at which the LR decays.')
    p.add_argument('--warmup-lr', type=float, default=0.0, help='LR at the start of warmup.')
    p.add_argument('--warmup-epochs', type=int, default=0, help='linear warmup epochs.')
    p.add_argument('--clip-grad', type=float, default=0, help='clip gradients to this value (0: off).')
    p.add_argument('--accumulate', type=int, default=1, help='accumulate gradients over N batches.')


def add_run_args(p):
    """Devices, outputs, checkpoints, resuming, logging."""
    p.add_argument('--cpu-contexts', type=int, default=1,
                   help='with --num-gpus 0: split each batch over N CPU contexts (tests the multi-device path).')
    p.add_argument('--kvstore', type=str, default=None, help='local, device, dist_sync, dist_sync_device, dist_async.')
    p.add_argument('--save-frequency', type=int, default=10, help='save a checkpoint every N epochs.')
    p.add_argument('--save-dir', type=str, default='params', help='output folder.')
    p.add_argument('--resume-every', type=int, default=1,
                   help='ours: write a resume point every N epochs (and after the last epoch and on a stop); '
                        'a crash then loses up to N-1 epochs.')
    p.add_argument('--resume-epoch', type=int, default=0, help='epoch to resume from.')
    p.add_argument('--resume-states', type=str, default='', help='.states file to start from.')
    p.add_argument('--auto-resume', action='store_true', help='continue from the newest checkpoint in --save-dir.')
    p.add_argument('--seed', type=int, default=0, help='seed of every random draw (reproducible on CPU).')
    p.add_argument('--log-interval', type=int, default=50, help='batches between log lines.')
    p.add_argument('--logging-file', type=str, default='train.log', help='log file name inside --save-dir.')
    p.add_argument('--tensorboard', action='store_true', help='write TensorBoard events to --save-dir.')
    p.add_argument('--eval', action='store_true', help='only evaluate --resume-params on --val-list.')
    p.add_argument('--train-only', action='store_true', help='skip validation; save only the last epoch.')


def training_parser():
    """Every flag of train_recognizer.py."""
    import argparse
    parser = argparse.ArgumentParser(description='Train a model for video action recognition.')
    add_list_args(parser)
    add_view_args(parser, num_segments=1)
    add_augmentation_args(parser)
    add_network_args(parser)
    add_training_model_args(parser)
    add_regularisation_args(parser)
    add_optim_args(parser)
    add_run_args(parser)
    return parser


def mark_without_effect(parser, keep, why):
    """Say in --help that every flag whose dest is not in ``keep`` is accepted but does nothing here."""
    for action in parser._actions:
        if action.option_strings and action.dest not in keep and action.dest != 'help':
            action.help = '%s; no effect here.' % why


# ---------------------------------------------------------------- checks shared by the scripts

def check_at_least_one(pairs):
    """UserError for the first (flag, value) pair whose value is below 1."""
    for flag, value in pairs:
        if value < 1:
            raise UserError('%s must be at least 1, got %d' % (flag, value))


def check_input_fits_frames(opt):
    """--input-size must fit the resized frames when both sides are given (3-crop resizes itself)."""
    sizes_known = opt.new_height > 0 and opt.new_width > 0
    if sizes_known and opt.num_crop != 3 and min(opt.new_height, opt.new_width) < opt.input_size:
        raise UserError('--input-size %d is larger than the resized frames %dx%d; lower --input-size or '
                        'raise --new-height/--new-width' % (opt.input_size, opt.new_width, opt.new_height))
