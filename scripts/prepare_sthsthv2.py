"""Prepare Something-Something v2 for training: decode every video into JPEG frame folders and
write the list files GluonCV's SomethingSomethingV2 dataset reads.

Input is the official layout: ``--video_root`` holds ``<id>.webm`` (the extracted
``20bn-something-something-v2`` folder) and ``--anno_root`` the JSON files
``something-something-v2-{labels,train,validation}.json``. A video's label is its template with
the brackets removed, looked up in the labels file (174 classes, 0-based as numbered there).
Output:

* ``--frame_root/<id>/000001.jpg ...`` (GluonCV's ``%06d.jpg``; see --name_pattern), 256 high
  by default, as GluonCV's script;
* in ``--out_list_path`` (default: ``--anno_root``, where GluonCV writes them):
  ``train_videofolder.txt``, ``val_videofolder.txt`` (``<id> <frames> <label>``, relative to
  ``--frame_root``), ``train_videos.txt``, ``val_videos.txt`` (``<id>.webm <frames> <label>``,
  relative to ``--video_root``), ``classInd.txt`` (``<1-based index> <class name>``),
  ``category.txt`` (GluonCV's: one class name per line) and, when videos are left out,
  ``sthsthv2_left_out.txt``.

The test set has no published labels and is not listed. The run is resumable like
prepare_ucf101.py; missing and unreadable videos are listed at the end and left out.

Example:
    python scripts/prepare_sthsthv2.py --video_root data/20bn-something-something-v2 \\
        --frame_root data/20bn-something-something-v2-frames --anno_root data/annotations --num_worker 8
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import extract, listfiles  # noqa: E402  (first: it quiets OpenCV before cv2 loads)
from recognizer.errors import UserError, run_cli  # noqa: E402

DATA_ROOT = os.path.join('~', '.mxnet', 'datasets', 'somethingsomethingv2')
PREFIX = 'something-something-v2-'
SUBSET_FILES = (('train', 'train'), ('val', 'validation'))
GLUONCV_PATTERN = '%06d.jpg'


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('--video_root', '--video-root', default=os.path.join(DATA_ROOT, '20bn-something-something-v2'),
                   help='the folder of <id>.webm videos')
    p.add_argument('--frame_root', '--frame-root',
                   default=os.path.join(DATA_ROOT, '20bn-something-something-v2-frames'),
                   help='where the frame folders go')
    p.add_argument('--anno_root', '--anno-root', default=os.path.join(DATA_ROOT, 'annotations'),
                   help='the folder of something-something-v2-{labels,train,validation}.json')
    p.add_argument('--out_list_path', '--out-list-path', default=None,
                   help='where the list files go (default: --anno_root)')
    p.add_argument('--name_pattern', '--name-pattern', default=GLUONCV_PATTERN,
                   help="frame file names: GluonCV's %%06d.jpg, or img_%%05d.jpg for train_recognizer.py's "
                        "frame reader")
    extract.add_extraction_args(p, new_width=0, new_height=256)
    p.add_argument('--num_threads', '--num-threads', type=int, dest='num_worker', default=argparse.SUPPRESS,
                   help="GluonCV's name of --num_worker")
    args = p.parse_args(argv)
    extract.expand_paths(args, 'video_root', 'frame_root', 'anno_root', 'out_list_path')
    if args.out_list_path is None:
        args.out_list_path = args.anno_root
    extract.check_extraction_args(args)
    extract.frame_name_regex(args.name_pattern)
    return args


# ---------------------------------------------------------------- annotations

def load_json(anno_root, name):
    path = os.path.join(anno_root, PREFIX + name + '.json')
    if not os.path.isfile(path):
        raise UserError('%s: not found; point --anno_root at the folder of the official %s*.json files'
                        % (path, PREFIX))
    try:
        with open(path, encoding='utf-8') as f:
            return path, json.load(f)
    except ValueError as err:
        raise UserError('%s: not valid JSON (%s); download the annotations again' % (path, err)) from None


def read_labels(anno_root):
    """Class names by 0-based index from the labels file ({name: "index"})."""
    path, labels = load_json(anno_root, 'labels')
    try:
        by_index = {int(index): name for name, index in labels.items()}
    except (AttributeError, TypeError, ValueError):
        raise UserError('%s: expected {"<class name>": "<0-based index>"}; use the official labels file'
                        % path) from None
    if sorted(by_index) != list(range(len(labels))):
        raise UserError('%s: the indices are not 0..%d, each once; use the official labels file'
                        % (path, len(labels) - 1))
    return [by_index[i] for i in range(len(labels))]


def read_subset(anno_root, name, labels):
    """[(video id, label, ref)] of one annotation file; the label is the template without brackets."""
    path, items = load_json(anno_root, name)
    entries = []
    for k, item in enumerate(items if isinstance(items, list) else []):
        ref = '%s item %d' % (os.path.basename(path), k)
        try:
            video_id, template = str(item['id']), item['template']
        except (KeyError, TypeError):
            raise UserError('%s: item %d has no "id" and "template"; use the official file' % (path, k)) from None
        name = template.replace('[', '').replace(']', '')
        if name not in labels:
            raise UserError('%s: item %d (id %s): %r is not a class of the labels file; use the files of one '
                            'release' % (path, k, video_id, name))
        entries.append((video_id, labels[name], ref))
    if not entries:
        raise UserError('%s: no videos; expected a list of {"id", "template", ...} items' % path)
    return entries


# ---------------------------------------------------------------- videos and lists

def index_videos(video_root):
    """{id: file name} of the videos in --video_root."""
    if not os.path.isdir(video_root):
        raise UserError('%s: folder not found; point --video_root at the folder of <id>.webm videos' % video_root)
    return {os.path.splitext(name)[0]: name for name in sorted(os.listdir(video_root)) if extract.is_video(name)}


def build_entries(subsets, index):
    """({'train'|'val': [(video file, label, ref)]}, {expected file: [refs]} of the missing ones)."""
    entries, missing = {}, {}
    for subset, items in subsets.items():
        entries[subset] = []
        for video_id, label, ref in items:
            if video_id in index:
                entries[subset].append((index[video_id], label, ref))
            else:
                missing.setdefault(video_id + '.webm', []).append(ref)
    return entries, missing


def write_class_files(out_list_path, classes):
    os.makedirs(out_list_path, exist_ok=True)
    listfiles.write_class_ind(os.path.join(out_list_path, 'classInd.txt'), classes)
    listfiles.write_if_changed(os.path.join(out_list_path, 'category.txt'), classes)


def main(argv=None):
    args = parse_args(argv)
    classes = read_labels(args.anno_root)
    labels = {name: i for i, name in enumerate(classes)}
    subsets = {subset: read_subset(args.anno_root, name, labels) for subset, name in SUBSET_FILES}
    entries, missing = build_entries(subsets, index_videos(args.video_root))
    videos = sorted({v for items in entries.values() for v, _, _ in items})
    print('%d classes; %d train and %d val videos annotated; %d found under %s, %d missing'
          % (len(classes), len(subsets['train']), len(subsets['val']), len(videos), args.video_root, len(missing)))
    if not videos:
        raise UserError('%s: none of the annotated videos is there; point --video_root at the folder of <id>.webm '
                        'videos' % args.video_root)
    jobs = extract.video_jobs(videos, args.video_root, args.frame_root)
    frames, errors = extract.extract_all(jobs, args.new_width, args.new_height, args.num_worker, args.video_root,
                                         args.name_pattern)
    listfiles.check_some_readable(frames, errors, args.video_root)
    write_class_files(args.out_list_path, classes)
    lists = [('%s_videofolder.txt' % s, '%s_videos.txt' % s, entries[s]) for s, _ in SUBSET_FILES]
    listfiles.write_and_report(lists, frames, errors, args.out_list_path, extract.frame_dir, args.video_root,
                               'sthsthv2_left_out.txt', missing)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
