"""Every flag of GluonCV's train_recognizer.py and test_recognizer.py is accepted here, with its default.

The names are GluonCV's (scripts/action-recognition/, master), written out so that a flag lost here
is noticed; the defaults are GluonCV's, as parsed by our flag types. The few defaults that differ on
purpose are listed in DEVIATIONS with the reason (and in the README).
"""
import os
import subprocess
import sys

import pytest

import train_recognizer as tr
from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'scripts'))
import test_recognizer as te  # noqa: E402

TRAIN_FLAGS = """
--accumulate --batch-norm --batch-size --clip-grad --crop-ratio --data-aug --data-dir --dataset
--dtype --eval --fast-temporal-stride --freeze-bn --hard-weight --hashtag --input-5d
--input-size --kvstore --label-smoothing --last-gamma --log-interval --logging-file --lr
--lr-decay --lr-decay-epoch --lr-decay-period --lr-mode --max-distort --mixup --mixup-alpha
--mixup-off-epoch --mode --model --momentum --more-fix-crop --new-height --new-length --new-step
--new-width --no-wd --num-classes --num-crop --num-epochs --num-gpus --num-segments --partial-bn
--prefetch-ratio --resume-epoch --resume-params --resume-states --save-dir --save-frequency
--scale-ratios --slow-temporal-stride --slowfast --teacher --temperature --train-list
--train-only --use-amp --use-decord --use-gn --use-pretrained --use-tsn --use_se --val-data-dir
--val-list --video-loader --warmup-epochs --warmup-lr --wd -j
""".split()

TEST_FLAGS = """
--batch-norm --batch-size --benchmark --calib-mode --calibration --crop-ratio --data-aug
--data-dir --dataset --deploy --dtype --eval --fast-temporal-stride --hard-weight --hashtag
--input-5d --input-size --label-smoothing --last-gamma --log-interval --logging-file --lr
--lr-decay --lr-decay-epoch --lr-decay-period --lr-mode --mixup --mixup-alpha --mixup-off-epoch
--mode --model --model-prefix --momentum --new-height --new-length --new-step --new-width
--no-wd --num-calib-batches --num-classes --num-crop --num-epochs --num-gpus --num-iterations
--num-segments --prefetch-ratio --quantized --quantized-dtype --resume-epoch --resume-params
--resume-states --save-dir --save-frequency --slow-temporal-stride --slowfast --teacher
--temperature --ten-crop --three-crop --train-list --use-amp --use-decord --use-gn
--use-pretrained --use-softmax --use-tsn --use_se --val-data-dir --val-list --video-loader
--warmup-epochs --warmup-lr --wd -j
""".split()

UCF = '~/.mxnet/datasets/ucf101'
# GluonCV's defaults of the training flags both scripts share (dest: value).
SHARED_DEFAULTS = dict(
    dataset='ucf101', data_dir=UCF + '/rawframes', dtype='float32', num_gpus=0, num_workers=4, num_epochs=3,
    lr=0.1, momentum=0.9, wd=0.0001, lr_mode='step', lr_decay=0.1, lr_decay_period=0, lr_decay_epoch=[40, 60],
    warmup_lr=0.0, warmup_epochs=0, last_gamma=False, mode=None, input_size=224, crop_ratio=0.875,
    use_pretrained=False, hashtag='', use_se=False, mixup=False, mixup_alpha=0.2, mixup_off_epoch=0,
    label_smoothing=False, no_wd=False, teacher=None, temperature=20, hard_weight=0.5, batch_norm=False,
    save_frequency=10, save_dir='params', resume_epoch=0, resume_params='', resume_states='', log_interval=50,
    logging_file='train.log', use_gn=False, eval=False, num_segments=1, use_tsn=False, new_length=1, new_step=1,
    num_classes=101, use_amp=False, prefetch_ratio=2.0, input_5d=False, video_loader=False, use_decord=False,
    slowfast=False, slow_temporal_stride=16, fast_temporal_stride=2, num_crop=1)
TRAIN_DEFAULTS = dict(SHARED_DEFAULTS, batch_size=25, new_height=0, new_width=0, clip_grad=0, partial_bn=False,
                      freeze_bn=False, scale_ratios=[1.0, 0.875, 0.75, 0.66], kvstore=None, accumulate=1,
                      data_aug='v1', train_only=False, max_distort=1, more_fix_crop=True)
TEST_DEFAULTS = dict(SHARED_DEFAULTS, batch_size=32, new_height=256, new_width=340, ten_crop=False, three_crop=False,
                     use_softmax=False, model_prefix=None, deploy=False, quantized=False, num_iterations=100,
                     benchmark=False, calibration=False, num_calib_batches=5, quantized_dtype='auto',
                     calib_mode='naive', val_list=UCF + '/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt',
                     train_list=UCF + '/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt')
DEVIATIONS = {
    # GluonCV: the same path as --data-dir's default. Here: None means "--data-dir", which is what the
    # default means unless --data-dir is changed (then GluonCV's would point at the UCF101 default).
    'val_data_dir': None,
    # GluonCV's training script defaults to ucf101_{train,val}_rgb_split1.txt, which nothing writes;
    # GluonCV's own preparation script (and ours) writes the *_split_1_rawframes.txt lists its runs use.
    'train_list': UCF + '/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt',
    'val_list': UCF + '/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt',
}


def option_strings(parser):
    return {s for action in parser._actions for s in action.option_strings}


@pytest.mark.parametrize('parser,flags', [(tr.build_parser(), TRAIN_FLAGS), (te.build_parser(), TEST_FLAGS)],
                         ids=['train_recognizer', 'test_recognizer'])
def test_every_gluoncv_flag_is_accepted(parser, flags):
    assert len(flags) == (71 if flags is TRAIN_FLAGS else 74)
    assert sorted(set(flags) - option_strings(parser)) == []


@pytest.mark.parametrize('parser,defaults', [(tr.build_parser(), TRAIN_DEFAULTS), (te.build_parser(), TEST_DEFAULTS)],
                         ids=['train_recognizer', 'test_recognizer'])
def test_every_gluoncv_default_is_kept(parser, defaults):
    opt = vars(parser.parse_args(['--model', 'vgg16_ucf101']))
    differ = {key: (opt.get(key, 'MISSING'), value) for key, value in defaults.items()
              if key not in DEVIATIONS and opt.get(key, 'MISSING') != value}
    assert differ == {}
    present = [key for key in DEVIATIONS if key in opt]
    assert {key: opt[key] for key in present} == {key: DEVIATIONS[key] for key in present}


def test_flags_without_effect_say_so_in_the_test_scripts_help():
    done = subprocess.run([sys.executable, 'scripts/test_recognizer.py', '--help'], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    text = ' '.join(done.stdout.split('options:', 1)[1].split())   # past the usage line
    for flag in ('--lr LR', '--mixup', '--teacher TEACHER', '--resume-states RESUME_STATES'):
        after = text.split(flag, 1)[1][:120]
        assert after.lstrip().startswith('training flag, accepted as GluonCV\'s test script does; no effect here.')
