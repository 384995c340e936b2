"""Prepare Kinetics400 for training: GluonCV's list files (and, with --out_dir, frame folders)
from the videos the official downloader fetched.

Input: ``--src_dir`` holding ``train/`` and ``val/``, each ``<class>/<youtube_id>_<start:06d>_<end:06d>.mp4``
(the official downloader's layout; class folders with spaces or underscores, other video
extensions, and flat folders of such files work too), and ``--anno_dir`` holding the official
``kinetics_400_{train,val}.csv`` (``label,youtube_id,time_start,time_end,split``; also found
under the names ``kinetics-400_train.csv``, ``kinetics_train.csv``, ``train.csv``/``validate.csv``).
Labels are GluonCV's: the train CSV's labels with spaces as underscores, sorted, 0-based. Output
in ``--out_list_path``:

* ``classInd.txt`` (``<1-based index> <label>``);
* ``kinetics400_{train,val}_list_videos.txt``: ``<path relative to --src_dir> <frames> <label>``;
* with ``--out_dir``: frame folders mirroring the video tree (``train/<class>/<stem>/img_00001.jpg``)
  and ``kinetics400_{train,val}_list_rawframes.txt`` relative to ``--out_dir``;
* ``kinetics400_left_out.txt``: the missing and broken videos (many are, for Kinetics: deleted
  or private YouTube videos). They are counted, listed and left out, never fatal.

Example:
    python scripts/prepare_kinetics400.py --src_dir data/kinetics400 --anno_dir data/kinetics400/annotations \\
        --out_list_path data/kinetics400 --num_worker 8
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import extract, listfiles  # noqa: E402  (first: it quiets OpenCV before cv2 loads)
from recognizer.errors import UserError, run_cli  # noqa: E402

DATA_ROOT = os.path.join('~', '.mxnet', 'datasets', 'kinetics400')
CSV_NAMES = {'train': ('kinetics_400_train.csv', 'kinetics-400_train.csv', 'kinetics_train.csv', 'train.csv'),
             'val': ('kinetics_400_val.csv', 'kinetics-400_val.csv', 'kinetics_val.csv', 'validate.csv', 'val.csv')}
SPLIT_DIRS = {'train': ('train',), 'val': ('val', 'validate', 'valid', 'validation')}
COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')
SEARCH_DEPTH = 3    # src_dir/<split>/<class>/<video>


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('--src_dir', '--src-dir', default=DATA_ROOT,
                   help='the downloaded videos: train/ and val/, each by class (or flat)')
    p.add_argument('--anno_dir', '--anno-dir', default=os.path.join(DATA_ROOT, 'annotations'),
                   help='the folder of the official kinetics_400_{train,val}.csv')
    p.add_argument('--out_list_path', '--out-list-path', default=DATA_ROOT,
                   help='where classInd.txt and the GluonCV list files go')
    p.add_argument('--out_dir', '--out-dir', default=None,
                   help='decode the videos into frame folders here and write the rawframes lists too')
    extract.add_extraction_args(p, new_width=0, new_height=0)
    args = p.parse_args(argv)
    extract.expand_paths(args, 'src_dir', 'anno_dir', 'out_list_path', 'out_dir')
    extract.check_extraction_args(args)
    return args


# ---------------------------------------------------------------- annotations

def class_name(label):
    """GluonCV's class name of a Kinetics label: quotes dropped, spaces as underscores."""
    return label.replace('"', '').replace(' ', '_')


def find_csv(anno_dir, subset):
    if not os.path.isdir(anno_dir):
        raise UserError('%s: folder not found; point --anno_dir at the folder of kinetics_400_train.csv' % anno_dir)
    for name in CSV_NAMES[subset]:
        if os.path.isfile(os.path.join(anno_dir, name)):
            return os.path.join(anno_dir, name)
    raise UserError('%s: no %s annotation file (%s); point --anno_dir at the folder of the official CSV files'
                    % (anno_dir, subset, ', '.join(CSV_NAMES[subset])))


def _stem(row, where):
    try:
        return '%s_%06d_%06d' % (row['youtube_id'], int(float(row['time_start'])), int(float(row['time_end'])))
    except (TypeError, ValueError):
        raise UserError('%s: expected a youtube_id and whole-second time_start and time_end, got %r; fix the row'
                        % (where, row)) from None


def read_csv(path):
    """[(class name, video stem, 'file:line')] of one annotation file."""
    rows = []
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        lacking = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if lacking:
            raise UserError('%s: no %s column (the header is %r); use the official Kinetics400 CSV'
                            % (path, lacking[0], ','.join(reader.fieldnames or [])))
        for row in reader:
            where = '%s:%d' % (os.path.basename(path), reader.line_num)
            if not row['label']:
                raise UserError('%s: %s has no label; fix the row' % (path, where))
            rows.append((class_name(row['label']), _stem(row, os.path.join(os.path.dirname(path), where)), where))
    return rows


def read_annotations(anno_dir):
    """(class names, {'train'|'val': [(class, stem, ref)]}); classes come from the train file."""
    rows = {subset: read_csv(find_csv(anno_dir, subset)) for subset in ('train', 'val')}
    classes = sorted({cls for cls, _, _ in rows['train']})
    known = set(classes)
    for cls, _, where in rows['val']:
        if cls not in known:
            raise UserError('%s: class %r is not in the train annotations; use the official files of one release'
                            % (os.path.join(anno_dir, where), cls))
    return classes, rows


# ---------------------------------------------------------------- finding the videos

def index_videos(src_dir, skip):
    """{stem: [video paths relative to src_dir]} of the videos up to SEARCH_DEPTH levels down."""
    if not os.path.isdir(src_dir):
        raise UserError('%s: folder not found; point --src_dir at the folder holding train/ and val/' % src_dir)
    index = {}
    for folder, dirs, files in os.walk(src_dir):
        rel = os.path.relpath(folder, src_dir)
        depth = 0 if rel == '.' else rel.count(os.sep) + 1
        dirs[:] = sorted(d for d in dirs if not d.startswith('.') and depth + 1 < SEARCH_DEPTH
                         and os.path.realpath(os.path.join(folder, d)) not in skip)
        for name in sorted(files):
            if extract.is_video(name):
                path = name if rel == '.' else '%s/%s' % (rel.replace(os.sep, '/'), name)
                index.setdefault(os.path.splitext(name)[0], []).append(path)
    return index


def _place_score(path, subset, cls):
    """How well a video's folders fit its annotation: split folder and class folder (either spelling)."""
    folders = path.split('/')[:-1]
    return (any(f in SPLIT_DIRS[subset] for f in folders), any(class_name(f) == cls for f in folders))


def locate(index, subset, cls, stem):
    """The video of one annotation row, or None; the one in the right split and class folder first."""
    candidates = index.get(stem)
    if not candidates:
        return None
    # max() keeps the first of equals: the smallest path.
    return max(sorted(candidates), key=lambda p: _place_score(p, subset, cls))


def build_entries(classes, rows, index):
    """({'train'|'val': [(video, label, ref)]}, {expected path: [refs]} of the missing videos)."""
    labels = {cls: i for i, cls in enumerate(classes)}
    entries, missing = {}, {}
    for subset in ('train', 'val'):
        entries[subset] = []
        for cls, stem, ref in rows[subset]:
            video = locate(index, subset, cls, stem)
            if video is None:
                missing.setdefault('%s/%s/%s.mp4' % (subset, cls, stem), []).append(ref)
            else:
                entries[subset].append((video, labels[cls], ref))
    return entries, missing


# ---------------------------------------------------------------- main

def read_videos(videos, args):
    """({video: frames}, {video: error}): decoded into --out_dir, or counted."""
    if args.out_dir:
        jobs = extract.video_jobs(videos, args.src_dir, args.out_dir)
        return extract.extract_all(jobs, args.new_width, args.new_height, args.num_worker, args.src_dir)
    return extract.count_all([(v, os.path.join(args.src_dir, v)) for v in videos], args.num_worker, args.src_dir)


def main(argv=None):
    args = parse_args(argv)
    classes, rows = read_annotations(args.anno_dir)
    index = index_videos(args.src_dir, {os.path.realpath(p) for p in (args.out_dir, args.out_list_path) if p})
    entries, missing = build_entries(classes, rows, index)
    videos = sorted({v for subset in entries.values() for v, _, _ in subset})
    unnamed = sum(len(paths) for paths in index.values()) - len(videos)
    print('%d classes; %d train and %d val videos annotated; %d found under %s, %d missing%s'
          % (len(classes), len(rows['train']), len(rows['val']), len(videos), args.src_dir, len(missing),
             '; %d other videos there were ignored' % unnamed if unnamed > 0 else ''))
    if not videos:
        raise UserError('%s: none of the annotated videos is there; point --src_dir at the folder holding '
                        'train/ and val/' % args.src_dir)
    frames, errors = read_videos(videos, args)
    listfiles.check_some_readable(frames, errors, args.src_dir)
    os.makedirs(args.out_list_path, exist_ok=True)
    listfiles.write_class_ind(os.path.join(args.out_list_path, 'classInd.txt'), classes)
    raw = args.out_dir is not None
    lists = [('kinetics400_%s_list_rawframes.txt' % s if raw else None, 'kinetics400_%s_list_videos.txt' % s,
              entries[s]) for s in ('train', 'val')]
    listfiles.write_and_report(lists, frames, errors, args.out_list_path, extract.frame_dir, args.src_dir,
                               'kinetics400_left_out.txt', missing)
    print('%d train and %d val videos listed; %d missing and %d unreadable left out'
          % (sum(v in frames for v, _, _ in entries['train']), sum(v in frames for v, _, _ in entries['val']),
             len(missing), len(errors)))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
