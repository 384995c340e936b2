"""Write a tiny synthetic UCF101-like dataset (frames, videos, official and GluonCV lists).

Example:
    python scripts/make_synthetic_ucf101.py --out-dir data/synth
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer.errors import UserError, run_cli  # noqa: E402
from recognizer.synthetic import make_synthetic_ucf101  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out-dir', required=True, help='folder to create (must be empty unless --force)')
    p.add_argument('--num-classes', type=int, default=5)
    p.add_argument('--train-per-class', type=int, default=8, help='training clips per class (split 1)')
    p.add_argument('--val-per-class', type=int, default=4, help='validation clips per class (split 1)')
    p.add_argument('--frames', type=int, default=24, help='frames per clip')
    p.add_argument('--width', type=int, default=80)
    p.add_argument('--height', type=int, default=64)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-videos', action='store_true', help='skip UCF-101/*.avi')
    p.add_argument('--no-frames', action='store_true', help='skip rawframes/ JPEG folders')
    p.add_argument('--force', action='store_true', help='write into a non-empty --out-dir')
    return p.parse_args(argv)


def example_command(out_dir, num_classes):
    """The train_recognizer.py command line that fits this dataset on a CPU.

    ``--lr 0.001`` is GluonCV's published UCF101 rate: the trainer's default
    0.1 makes VGG16 trained from scratch diverge to NaN within an epoch.
    """
    return ('python train_recognizer.py --model vgg16_ucf101 --num-segments 3 --num-classes %d '
            '--data-dir {d}/rawframes --train-list {d}/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt '
            '--val-list {d}/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt --input-size 64 '
            '--new-height 80 --new-width 106 --batch-size 2 --num-epochs 2 -j 0 --no-pretrained-base '
            '--lr 0.001' % num_classes).format(d=out_dir)


def main(argv=None):
    args = parse_args(argv)
    if os.path.isfile(args.out_dir):
        raise UserError('%s: is a file; give --out-dir a folder path' % args.out_dir)
    if os.path.isdir(args.out_dir) and os.listdir(args.out_dir) and not args.force:
        raise UserError('%s: folder is not empty; pick another --out-dir or pass --force to write into it'
                        % args.out_dir)
    start = time.time()
    paths = make_synthetic_ucf101(
        args.out_dir, num_classes=args.num_classes, train_per_class=args.train_per_class,
        val_per_class=args.val_per_class, num_frames=args.frames, width=args.width,
        height=args.height, seed=args.seed, frames=not args.no_frames, videos=not args.no_videos)
    clips = args.num_classes * (args.train_per_class + args.val_per_class)
    print('wrote %d clips of %d frames (%dx%d), %d classes, in %.1f s'
          % (clips, args.frames, args.width, args.height, args.num_classes, time.time() - start))
    for key in ('rawframes_dir', 'videos_dir', 'anno_dir', 'train_list_rawframes', 'val_list_rawframes',
                'train_list_videos', 'val_list_videos'):
        if paths.get(key):
            print('  %-21s %s' % (key, paths[key]))
    if not args.no_frames:
        print('train with:')
        print('  ' + example_command(args.out_dir.rstrip('/') or '/', args.num_classes))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
