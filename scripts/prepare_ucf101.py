"""Prepare UCF101 for training: decode every video into JPEG frame folders and
write GluonCV's list files for the three official splits.

Input is the official archive layout: ``--src_dir`` is the extracted ``UCF-101``
folder (``<Class>/v_<Class>_gGG_cCC.avi``) and ``--anno_dir`` the extracted
``ucfTrainTestlist`` folder (``classInd.txt``, ``trainlist0K.txt``,
``testlist0K.txt``).  Output:

* ``--out_dir/<Class>/<video stem>/img_00001.jpg ...``
* ``--out_list_path/ucf101_{train,val}_split_{1,2,3}_rawframes.txt``
  (``<Class>/<stem> <frames> <0-based label>``, relative to ``--out_dir``)
* ``--out_list_path/ucf101_{train,val}_split_{1,2,3}_videos.txt``
  (``<Class>/<video>.avi <frames> <0-based label>``, relative to ``--src_dir``)

The run is resumable: finished videos are skipped, half-written ones redone.

Example:
    python scripts/prepare_ucf101.py --src_dir data/UCF-101 --anno_dir data/ucfTrainTestlist \\
        --out_dir data/rawframes --out_list_path data/ucfTrainTestlist --num_worker 8
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import extract, listfiles  # noqa: E402  (first: it quiets OpenCV before cv2 loads)
from recognizer.errors import UserError, run_cli  # noqa: E402
# tests/test_prepare_ucf101.py checks the resizing rule under this name.
from recognizer.extract import target_size as _target_size  # noqa: E402,F401

NUM_SPLITS = 3
DATA_ROOT = os.path.join('~', '.mxnet', 'datasets', 'ucf101')


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('--src_dir', '--src-dir', default=os.path.join(DATA_ROOT, 'UCF-101'),
                   help='the extracted UCF-101 video folder')
    p.add_argument('--anno_dir', '--anno-dir', default=os.path.join(DATA_ROOT, 'ucfTrainTestlist'),
                   help='the official ucfTrainTestlist folder (classInd.txt, trainlist0K, testlist0K)')
    p.add_argument('--out_dir', '--out-dir', default=os.path.join(DATA_ROOT, 'rawframes'),
                   help='where the frame folders go')
    p.add_argument('--out_list_path', '--out-list-path', default=os.path.join(DATA_ROOT, 'ucfTrainTestlist'),
                   help='where the GluonCV list files go')
    extract.add_extraction_args(p)
    args = p.parse_args(argv)
    extract.expand_paths(args, 'src_dir', 'anno_dir', 'out_dir', 'out_list_path')
    extract.check_extraction_args(args)
    return args


# ---------------------------------------------------------------- annotations

def _read_lines(path, what):
    return listfiles.read_lines(path, what, 'point --anno_dir at the official ucfTrainTestlist folder')


def read_class_ind(anno_dir):
    """{class name: 0-based label} from ``classInd.txt`` (``1 ApplyEyeMakeup`` per line)."""
    path = os.path.join(anno_dir, 'classInd.txt')
    classes = {}
    for n, line in _read_lines(path, 'class index file'):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise UserError('%s:%d: expected "<1-based index> <ClassName>", got %r; fix the line'
                            % (path, n, line))
        if parts[1] in classes:
            raise UserError('%s:%d: class %s is listed twice; remove one line' % (path, n, parts[1]))
        classes[parts[1]] = int(parts[0]) - 1
    if not classes:
        raise UserError('%s: no classes in the file; use the official classInd.txt' % path)
    return classes


def read_split(path, classes):
    """[(video path, 0-based label, 'file:line')] of one official train/test list.

    The label always comes from the class folder via classInd.txt (test lists
    have none); a label written in the file must agree with it.
    """
    entries = []
    for n, line in _read_lines(path, 'split file'):
        where = '%s:%d' % (path, n)
        parts = line.split()
        video = parts[0].replace('\\', '/')
        if len(parts) > 2:
            raise UserError('%s: expected "<Class>/<video>.avi [<1-based label>]", got %r; fix the line'
                            % (where, line))
        cls = video.split('/')[0] if '/' in video else None
        if cls not in classes:
            raise UserError('%s: %r is not in a class folder named in classInd.txt; fix the line '
                            'or classInd.txt' % (where, video))
        if len(parts) == 2 and parts[1] != str(classes[cls] + 1):
            raise UserError('%s: label %s does not match classInd.txt (%s is %d); fix the line'
                            % (where, parts[1], cls, classes[cls] + 1))
        entries.append((video, classes[cls], os.path.basename(path) + ':%d' % n))
    return entries


def read_annotations(anno_dir):
    """{(split, 'train'|'val'): entries} for splits 1-3, checked before any decoding."""
    if not os.path.isdir(anno_dir):
        raise UserError('%s: folder not found; point --anno_dir at the official ucfTrainTestlist folder'
                        % anno_dir)
    classes = read_class_ind(anno_dir)
    splits = {}
    for k in range(1, NUM_SPLITS + 1):
        splits[k, 'train'] = read_split(os.path.join(anno_dir, 'trainlist%02d.txt' % k), classes)
        splits[k, 'val'] = read_split(os.path.join(anno_dir, 'testlist%02d.txt' % k), classes)
    return splits


def main(argv=None):
    args = parse_args(argv)
    splits = read_annotations(args.anno_dir)
    videos = extract.find_class_videos(args.src_dir, 'the extracted UCF-101 folder')
    jobs = extract.video_jobs(videos, args.src_dir, args.out_dir)
    frames, errors = extract.extract_all(jobs, args.new_width, args.new_height, args.num_worker, args.src_dir)
    listfiles.check_some_readable(frames, errors, args.src_dir)
    lists = listfiles.split_list_files('ucf101', splits)
    listfiles.write_and_report(lists, frames, errors, args.out_list_path, extract.frame_dir, args.src_dir,
                               'ucf101_left_out.txt')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
