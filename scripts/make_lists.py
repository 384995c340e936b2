"""Make train/val list files and classInd.txt for a folder of your own videos sorted by class.

Input: ``--src_dir ROOT`` with one folder per class, each holding videos (.avi .mp4 .mkv .webm
.mov, any case) or frame folders (``img_00001.jpg``...): ``ROOT/<class name>/<video>``. Class
names may hold spaces, unicode and mixed case. Labels are the class folders sorted by name
(Python's order, by code point: "Zebra" before "apple"), 0-based. Output in ``--out_list_path``:

* ``classInd.txt``: ``<1-based index> <class name>`` per line, as UCF101's;
* ``train_videos.txt``, ``val_videos.txt``: ``<class>/<video> <frames> <label>``, relative to ROOT;
* with ``--out_dir FRAMES``: every video decoded into ``FRAMES/<class>/<video stem>/img_00001.jpg``...
  (resumable and parallel, as prepare_ucf101.py) and ``train_rawframes.txt``, ``val_rawframes.txt``
  relative to FRAMES. A ROOT of frame folders gives these two, relative to ROOT, instead of the
  videos lists;
* ``left_out.txt``, when a video is left out: empty (0-byte) and undecodable videos, and names a
  list line cannot hold, are listed at the end and in this file, and left out of the lists.

The split is stratified: in each class, round(n x --val_ratio) clips (at least 1 when the class
has 2 or more, and never all of them) go to val. Which ones depends only on --seed and the
clip's path, so the same folder and seed always give the same bytes, and adding a video to a
class moves at most a few others. ``--split_file`` gives the split instead: lines
``<class>/<video or frame folder> train|val``; clips it does not name are left out.

Frame counts come from the container when decoding confirms them (the first and last frames
decode and nothing follows), else from decoding the whole video.

Example:
    python scripts/make_lists.py --src_dir my_videos --out_list_path my_lists --val_ratio 0.2 --seed 0 \\
        --out_dir my_frames --new_width 340 --new_height 256 --num_worker 8
"""
import argparse
import collections
import hashlib
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import extract, listfiles  # noqa: E402  (first: it quiets OpenCV before cv2 loads)
from recognizer.errors import UserError, run_cli  # noqa: E402

SUBSETS = ('train', 'val')
EXAMPLES = 5


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('--src_dir', '--src-dir', required=True,
                   help='ROOT: one folder per class holding videos or frame folders')
    p.add_argument('--out_list_path', '--out-list-path', required=True,
                   help='where classInd.txt and the list files go')
    p.add_argument('--val_ratio', '--val-ratio', type=float, default=None,
                   help='share of each class that goes to val (default 0.2)')
    p.add_argument('--seed', type=int, default=0, help='which clips go to val')
    p.add_argument('--split_file', '--split-file', default=None,
                   help='the split instead of --val_ratio: "<class>/<video or frame folder> train|val" lines')
    p.add_argument('--out_dir', '--out-dir', default=None,
                   help='decode the videos into frame folders here and write the rawframes lists too')
    extract.add_extraction_args(p)
    args = p.parse_args(argv)
    extract.expand_paths(args, 'src_dir', 'out_list_path', 'split_file', 'out_dir')
    extract.check_extraction_args(args)
    if args.split_file and args.val_ratio is not None:
        raise UserError('--split_file and --val_ratio both give the split; pass one of them')
    if args.val_ratio is None:
        args.val_ratio = 0.2
    if not 0 <= args.val_ratio < 1:
        raise UserError('--val_ratio must be at least 0 and below 1; got %g' % args.val_ratio)
    if not os.path.isdir(args.src_dir):
        raise UserError('%s: folder not found; --src_dir is the folder holding one folder per class' % args.src_dir)
    return args


# ---------------------------------------------------------------- finding the clips

Scan = collections.namedtuple('Scan', 'videos folders ignored')


def frame_dirs(cls, names):
    """{video path: frame folder path} of one class: ``<class>/<stem>``, or ``<class>/<stem>_<ext>``
    for the videos whose stem another video of the class shares (``a.mp4`` and ``a.avi``)."""
    stems = collections.Counter(os.path.splitext(name)[0] for name in names)
    dirs = {}
    for name in names:
        stem, ext = os.path.splitext(name)
        dirs['%s/%s' % (cls, name)] = '%s/%s' % (cls, stem if stems[stem] == 1 else stem + '_' + ext[1:])
    return dirs


def scan_class(root, cls, scan):
    """Add the videos and frame folders of one class folder to ``scan``."""
    folder = os.path.join(root, cls)
    names = sorted(os.listdir(folder))
    videos = [n for n in names if extract.is_video(n) and os.path.isfile(os.path.join(folder, n))]
    # Frame folders of these videos extracted beside them (--out_dir ROOT) are not clips of their own.
    own = {os.path.basename(d) for d in frame_dirs(cls, videos).values()}
    scan.videos[cls] = ['%s/%s' % (cls, n) for n in videos]
    scan.folders[cls] = []
    for name in names:
        path = os.path.join(folder, name)
        if name.startswith('.') or name in videos or name in own:
            continue
        if os.path.isdir(path) and extract.count_frames(path):
            scan.folders[cls].append('%s/%s' % (cls, name))
        elif os.path.isdir(path):
            scan.ignored.append(('%s/%s' % (cls, name), 'a folder without img_00001.jpg frames'))
        else:
            scan.ignored.append(('%s/%s' % (cls, name), 'not a video (%s)' % ', '.join(extract.VIDEO_EXTS)))
    if not scan.videos[cls] and not scan.folders[cls]:
        scan.ignored.append((cls, 'a folder without videos or frame folders'))


def scan_root(root, skip):
    """Scan({class: [video paths]}, {class: [frame folder paths]}, [(path, why ignored)]); paths
    relative to ROOT; folders in ``skip`` (our own output inside ROOT) are passed over."""
    scan = Scan({}, {}, [])
    for cls in sorted(os.listdir(root)):
        path = os.path.join(root, cls)
        if cls.startswith('.') or os.path.realpath(path) in skip:
            continue
        if not os.path.isdir(path):
            scan.ignored.append((cls, 'not in a class folder'))
        elif listfiles.unlistable(cls):
            scan.ignored.append((cls, 'class folder: ' + listfiles.unlistable(cls)))
        else:
            scan_class(root, cls, scan)
    return scan


def clips_of(scan, args):
    """({class: [clip paths]}, kind 'videos'|'frames') of a scan, refusing a mix of the two kinds."""
    videos = [v for paths in scan.videos.values() for v in paths]
    folders = [f for paths in scan.folders.values() for f in paths]
    if videos and folders:
        raise UserError('%s holds both videos (%s) and frame folders (%s); keep one kind per --src_dir (decode '
                        'videos into another folder with --out_dir)' % (args.src_dir, videos[0], folders[0]))
    if not videos and not folders:
        raise UserError('%s: no videos (%s) or img_00001.jpg frame folders in class folders; expected '
                        '<src_dir>/<class name>/<video>' % (args.src_dir, ', '.join(extract.VIDEO_EXTS)))
    if folders and args.out_dir:
        raise UserError('%s holds frame folders, not videos: there is nothing to decode; drop --out_dir'
                        % args.src_dir)
    by_class = scan.videos if videos else scan.folders
    return {cls: paths for cls, paths in by_class.items() if paths}, 'videos' if videos else 'frames'


# ---------------------------------------------------------------- the split

def read_split_file(path):
    """({path: 'train'|'val'}, {path: 'file:line'}) of a --split_file."""
    subsets, refs = {}, {}
    for n, line in listfiles.read_lines(path, 'split file', 'check --split_file'):
        if line.startswith('#'):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in SUBSETS:
            raise UserError('%s:%d: expected "<class>/<video or frame folder> train|val", got %r; fix the line'
                            % (path, n, line))
        clip = parts[0].replace('\\', '/')
        if clip in subsets:
            raise UserError('%s:%d: %s is already on line %s; keep one line per clip'
                            % (path, n, clip, refs[clip].rsplit(':', 1)[1]))
        subsets[clip], refs[clip] = parts[1], '%s:%d' % (os.path.basename(path), n)
    return subsets, refs


def val_count(n, ratio):
    """Val clips of a class of ``n``: n x ratio rounded half up, at least 1 of 2 or more, never all."""
    if n < 2 or ratio <= 0:
        return 0
    return min(n - 1, max(1, int(math.floor(n * ratio + 0.5 + 1e-9))))


def stratified_split(clips, ratio, seed):
    """{clip: 'train'|'val'} for {class: [clips]}: each class's val clips are those whose
    hash of (seed, path) is smallest, which is reproducible on any machine and Python."""
    subsets = {}
    for paths in clips.values():
        ranked = sorted(paths, key=lambda p: hashlib.sha256(('%d/%s' % (seed, p)).encode('utf-8')).hexdigest())
        k = val_count(len(paths), ratio)
        subsets.update({p: 'val' if i < k else 'train' for i, p in enumerate(ranked)})
    return subsets


def apply_split_file(clips, args):
    """(clips named in --split_file, their subsets, {missing path: [ref]}); unnamed clips are dropped."""
    subsets, refs = read_split_file(args.split_file)
    every = {p for paths in clips.values() for p in paths}
    missing = {p: [refs[p]] for p in subsets if p not in every}
    unnamed = sorted(every - set(subsets))
    if unnamed:
        print('%d clip(s) under %s are not named in %s and are left out, e.g. %s'
              % (len(unnamed), args.src_dir, args.split_file, ', '.join(map(listfiles.shown, unnamed[:EXAMPLES]))))
    named = {cls: [p for p in paths if p in subsets] for cls, paths in clips.items()}
    return named, subsets, missing


# ---------------------------------------------------------------- frame counts

def extracted_frame_dirs(scan):
    """{video: frame folder} for --out_dir, from every video of each class (not only those listed),
    so a video's folder never depends on --split_file."""
    dirs = {}
    for cls, paths in scan.videos.items():
        dirs.update(frame_dirs(cls, [p.split('/', 1)[1] for p in paths]))
    return dirs.__getitem__


def count_clips(clips, kind, frame_dir_of, args):
    """({clip: frames}, {clip: why left out}): decoded with --out_dir, else counted; names a list
    line cannot hold are left out first."""
    paths = [p for cls in sorted(clips) for p in clips[cls]]
    errors = {}
    for path in paths:
        why = listfiles.unlistable(path) or (args.out_dir and listfiles.unlistable(frame_dir_of(path)))
        if why:
            errors[path] = why
    paths = [p for p in paths if p not in errors]
    if kind == 'frames':
        frames = {p: extract.count_frames(os.path.join(args.src_dir, p)) for p in paths}
    elif args.out_dir:
        jobs = extract.video_jobs(paths, args.src_dir, args.out_dir, frame_dir_of)
        frames, decode_errors = extract.extract_all(jobs, args.new_width, args.new_height, args.num_worker,
                                                    args.src_dir)
        errors.update(decode_errors)
    else:
        frames, decode_errors = extract.count_all([(p, os.path.join(args.src_dir, p)) for p in paths],
                                                  args.num_worker, args.src_dir)
        errors.update(decode_errors)
    return frames, errors


# ---------------------------------------------------------------- output

def list_names(kind, args):
    """[(rawframes list or None, videos list or None)] of train and of val."""
    raw = kind == 'frames' or args.out_dir is not None
    vid = kind == 'videos'
    return [('%s_rawframes.txt' % s if raw else None, '%s_videos.txt' % s if vid else None) for s in SUBSETS]


def print_ignored(ignored):
    if ignored:
        print('ignored %d entr%s that are not clips of a class folder: %s%s'
              % (len(ignored), 'y' if len(ignored) == 1 else 'ies',
                 '; '.join('%s (%s)' % (listfiles.shown(p), why) for p, why in ignored[:EXAMPLES]),
                 '; ...' if len(ignored) > EXAMPLES else ''))


def _class_note(train, val):
    if not train and not val:
        return '   <- no usable clip'
    return '' if train and val else '   <- no %s clip' % ('val' if train else 'train')


def list_entries(classes, clips, frames, subsets):
    """{'train'|'val': [(clip, label, None)]}, class by class, usable clips only."""
    entries = {s: [] for s in SUBSETS}
    for label, cls in enumerate(classes):
        for path in clips[cls]:
            if path in frames:
                entries[subsets[path]].append((path, label, None))
    return entries


def print_summary(classes, entries):
    print('%d classes: %d train and %d val clips' % (len(classes), len(entries['train']), len(entries['val'])))
    for label, cls in enumerate(classes):
        train, val = (sum(1 for _, lab, _ in entries[s] if lab == label) for s in SUBSETS)
        print('  %3d %s: %d train, %d val%s' % (label, listfiles.shown(cls), train, val, _class_note(train, val)))


def write_outputs(classes, entries, frames, errors, missing, kind, frame_dir_of, args):
    os.makedirs(args.out_list_path, exist_ok=True)
    listfiles.write_class_ind(os.path.join(args.out_list_path, 'classInd.txt'), classes)
    lists = [(raw, vid, entries[s]) for s, (raw, vid) in zip(SUBSETS, list_names(kind, args))]
    listfiles.write_and_report(lists, frames, errors, args.out_list_path, frame_dir_of, args.src_dir,
                               'left_out.txt', missing)


def main(argv=None):
    args = parse_args(argv)
    scan = scan_root(args.src_dir, {os.path.realpath(p) for p in (args.out_dir, args.out_list_path) if p})
    clips, kind = clips_of(scan, args)
    classes = sorted(clips)
    print('%s: %d classes, %d %s' % (args.src_dir, len(classes), sum(map(len, clips.values())),
                                     'videos' if kind == 'videos' else 'frame folders'))
    print_ignored(scan.ignored)
    missing = {}
    if args.split_file:
        clips, subsets, missing = apply_split_file(clips, args)
    frame_dir_of = extracted_frame_dirs(scan) if kind == 'videos' and args.out_dir else (lambda p: p)
    frames, errors = count_clips(clips, kind, frame_dir_of, args)
    listfiles.check_some_readable(frames, errors, args.src_dir)
    if not args.split_file:
        usable = {cls: [p for p in clips[cls] if p in frames] for cls in classes}
        subsets = stratified_split(usable, args.val_ratio, args.seed)
    entries = list_entries(classes, clips, frames, subsets)
    print_summary(classes, entries)
    write_outputs(classes, entries, frames, errors, missing, kind, frame_dir_of, args)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
