"""Prepare HMDB51 for training: decode every video into JPEG frame folders and
write GluonCV's list files for the three official splits.

Input is the official layout: ``--src_dir`` holds the 51 class folders of
``hmdb51_org.rar`` (``<class>/<video>.avi``, each class's inner rar extracted) and
``--anno_dir`` the extracted ``test_train_splits.rar`` (``testTrainMulti_7030_splits/
<class>_test_split{1,2,3}.txt``, lines ``<video>.avi <tag>``: 1 train, 2 test, 0 unused).
Labels are the classes sorted by name, 0-based. Output:

* ``--out_dir/<class>/<video stem>/img_00001.jpg ...``
* ``--out_list_path/classInd.txt`` (``<1-based index> <class>``)
* ``--out_list_path/hmdb51_{train,val}_split_{1,2,3}_rawframes.txt`` (relative to ``--out_dir``)
* ``--out_list_path/hmdb51_{train,val}_split_{1,2,3}_videos.txt`` (relative to ``--src_dir``)

The run is resumable like prepare_ucf101.py; unreadable and missing videos are listed at the
end (and in ``hmdb51_left_out.txt``) and left out of the lists.

Example:
    python scripts/prepare_hmdb51.py --src_dir data/hmdb51_org --anno_dir data/testTrainMulti_7030_splits \\
        --out_dir data/hmdb51_rawframes --out_list_path data/hmdb51_lists --num_worker 8
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import extract, listfiles  # noqa: E402  (first: it quiets OpenCV before cv2 loads)
from recognizer.errors import UserError, run_cli  # noqa: E402

NUM_SPLITS = 3
SPLIT_FILE = re.compile(r'(.+)_test_split([0-9]+)\.txt')
SUBSETS = {'1': 'train', '2': 'val', '0': None}
DATA_ROOT = os.path.join('~', '.mxnet', 'datasets', 'hmdb51')
ANNO_HINT = 'point --anno_dir at the extracted testTrainMulti_7030_splits folder'


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('--src_dir', '--src-dir', default=os.path.join(DATA_ROOT, 'videos'),
                   help='the class folders of hmdb51_org (<class>/<video>.avi)')
    p.add_argument('--anno_dir', '--anno-dir', default=os.path.join(DATA_ROOT, 'testTrainMulti_7030_splits'),
                   help='the official split files <class>_test_split{1,2,3}.txt')
    p.add_argument('--out_dir', '--out-dir', default=os.path.join(DATA_ROOT, 'rawframes'),
                   help='where the frame folders go')
    p.add_argument('--out_list_path', '--out-list-path', default=os.path.join(DATA_ROOT, 'testTrainMulti_7030_splits'),
                   help='where classInd.txt and the GluonCV list files go')
    extract.add_extraction_args(p)
    args = p.parse_args(argv)
    extract.expand_paths(args, 'src_dir', 'anno_dir', 'out_dir', 'out_list_path')
    extract.check_extraction_args(args)
    return args


# ---------------------------------------------------------------- annotations

def find_split_files(anno_dir):
    """{class: {split: path}} of the official split files; every class needs splits 1-3."""
    if not os.path.isdir(anno_dir):
        raise UserError('%s: folder not found; %s' % (anno_dir, ANNO_HINT))
    files = {}
    for name in sorted(os.listdir(anno_dir)):
        match = SPLIT_FILE.fullmatch(name)
        if match:
            files.setdefault(match.group(1), {})[int(match.group(2))] = os.path.join(anno_dir, name)
    if not files:
        raise UserError('%s: no <class>_test_split1.txt files; %s' % (anno_dir, ANNO_HINT))
    for cls, splits in sorted(files.items()):
        lacking = [k for k in range(1, NUM_SPLITS + 1) if k not in splits]
        if lacking:
            raise UserError('%s: %s_test_split%d.txt not found (the other splits of %s are there); %s'
                            % (anno_dir, cls, lacking[0], cls, ANNO_HINT))
    return files


def read_split_file(path, cls, label):
    """[(subset, (video path, label, 'file:line'))] of one class's split file; unused (tag 0) videos left out."""
    entries = []
    for n, line in listfiles.read_lines(path, 'split file', ANNO_HINT):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in SUBSETS:
            raise UserError('%s:%d: expected "<video>.avi <0|1|2>" (1 train, 2 test, 0 unused), got %r; '
                            'fix the line' % (path, n, line))
        if SUBSETS[parts[1]]:
            ref = '%s:%d' % (os.path.basename(path), n)
            entries.append((SUBSETS[parts[1]], ('%s/%s' % (cls, parts[0]), label, ref)))
    return entries


def read_annotations(anno_dir):
    """(class names sorted, {(split, 'train'|'val'): [(video, label, ref)]}), checked before decoding."""
    files = find_split_files(anno_dir)
    classes = sorted(files)
    splits = {(k, subset): [] for k in range(1, NUM_SPLITS + 1) for subset in ('train', 'val')}
    for label, cls in enumerate(classes):
        for k in range(1, NUM_SPLITS + 1):
            for subset, entry in read_split_file(files[cls][k], cls, label):
                splits[k, subset].append(entry)
    return classes, splits


def main(argv=None):
    args = parse_args(argv)
    classes, splits = read_annotations(args.anno_dir)
    named = {video for entries in splits.values() for video, _, _ in entries}
    videos = [v for v in extract.find_class_videos(args.src_dir, 'the class folders of hmdb51_org') if v in named]
    print('%d classes, %d videos named in the splits, %d of them under %s'
          % (len(classes), len(named), len(videos), args.src_dir))
    if not videos:
        raise UserError('%s: none of the %d videos named in the split files is there; point --src_dir at the '
                        'class folders of hmdb51_org' % (args.src_dir, len(named)))
    jobs = extract.video_jobs(videos, args.src_dir, args.out_dir)
    frames, errors = extract.extract_all(jobs, args.new_width, args.new_height, args.num_worker, args.src_dir)
    listfiles.check_some_readable(frames, errors, args.src_dir)
    os.makedirs(args.out_list_path, exist_ok=True)
    listfiles.write_class_ind(os.path.join(args.out_list_path, 'classInd.txt'), classes)
    lists = listfiles.split_list_files('hmdb51', splits)
    listfiles.write_and_report(lists, frames, errors, args.out_list_path, extract.frame_dir, args.src_dir,
                               'hmdb51_left_out.txt')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
