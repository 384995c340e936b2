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
import multiprocessing
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Keep OpenCV/FFmpeg from printing its own warnings for every broken video:
# this script reports those itself, once, at the end.
os.environ.setdefault('OPENCV_LOG_LEVEL', 'OFF')
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')

import cv2  # noqa: E402

from recognizer.errors import UserError, run_cli  # noqa: E402

NUM_SPLITS = 3
VIDEO_EXTS = ('.avi', '.mp4', '.mkv', '.webm', '.mov')
FRAME_RE = re.compile(r'^img_\d{5}\.jpg$')
PARTIAL_PREFIX = '.partial_'
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
    p.add_argument('--new_width', '--new-width', type=int, default=340,
                   help='frame width on disk; 0 keeps the video size (GluonCV used 340)')
    p.add_argument('--new_height', '--new-height', type=int, default=256,
                   help='frame height on disk; 0 keeps the video size (GluonCV used 256)')
    p.add_argument('--num_worker', '--num-worker', type=int, default=os.cpu_count() or 1,
                   help='decoding processes')
    args = p.parse_args(argv)
    for name in ('src_dir', 'anno_dir', 'out_dir', 'out_list_path'):
        setattr(args, name, os.path.expanduser(getattr(args, name)))
    if args.new_width < 0 or args.new_height < 0:
        raise UserError('--new_width/--new_height must be >= 0 (0 keeps the video size); got %d, %d'
                        % (args.new_width, args.new_height))
    if args.num_worker < 1:
        raise UserError('--num_worker must be >= 1; got %d' % args.num_worker)
    return args


# ---------------------------------------------------------------- annotations

def _read_lines(path, what):
    if not os.path.isfile(path):
        raise UserError('%s: %s not found; point --anno_dir at the official ucfTrainTestlist folder'
                        % (path, what))
    with open(path, encoding='utf-8-sig') as f:
        # The official files use CRLF line ends and may end with blank lines.
        return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]


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


# ------------------------------------------------------------------- decoding

def find_videos(src_dir):
    """Sorted ``<Class>/<video>`` paths of every video one level below ``src_dir``."""
    if not os.path.isdir(src_dir):
        raise UserError('%s: folder not found; point --src_dir at the extracted UCF-101 folder' % src_dir)
    videos = []
    for cls in sorted(os.listdir(src_dir)):
        folder = os.path.join(src_dir, cls)
        if os.path.isdir(folder):
            videos += ['%s/%s' % (cls, name) for name in sorted(os.listdir(folder))
                       if name.lower().endswith(VIDEO_EXTS)]
    return videos


def frame_dir(video):
    """Frame folder of a video, relative to --out_dir: ``<Class>/<stem>``."""
    return os.path.splitext(video)[0]


def count_frames(folder):
    """Frames in a finished folder, 0 when it does not exist."""
    if not os.path.isdir(folder):
        return 0
    return sum(1 for name in os.listdir(folder) if FRAME_RE.match(name))


def _target_size(width, height, new_width, new_height):
    if new_width and new_height:
        return new_width, new_height
    if new_width:
        return new_width, max(1, round(height * new_width / width))
    if new_height:
        return max(1, round(width * new_height / height)), new_height
    return width, height


def _decode_into(src, tmp, new_width, new_height):
    """Write every decodable frame of ``src`` into ``tmp``; return the count."""
    cap = cv2.VideoCapture(src)
    n = 0
    try:
        while cap.isOpened():
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            size = _target_size(frame.shape[1], frame.shape[0], new_width, new_height)
            if size != (frame.shape[1], frame.shape[0]):
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            n += 1
            if not cv2.imwrite(os.path.join(tmp, 'img_%05d.jpg' % n), frame):
                raise OSError('could not write %s' % os.path.join(tmp, 'img_%05d.jpg' % n))
    finally:
        cap.release()
    return n


def decode_video(job):
    """Worker: decode one video; return (video, frames, error message or None).

    Frames go to a hidden partial folder that is renamed only when complete,
    so an interrupted run never leaves a folder that looks finished.
    """
    video, src_dir, out_dir, new_width, new_height = job
    final = os.path.join(out_dir, frame_dir(video))
    tmp = os.path.join(os.path.dirname(final), PARTIAL_PREFIX + os.path.basename(final))
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        n = _decode_into(os.path.join(src_dir, video), tmp, new_width, new_height)
        if n == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return video, 0, 'no frame could be decoded (corrupt, empty or unsupported codec)'
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        return video, n, None
    except (OSError, cv2.error) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        return video, 0, 'decoding failed: %s' % err


def _init_worker():
    # One OpenCV thread per process: the parallelism comes from the pool.
    cv2.setNumThreads(1)


class Progress:
    """tqdm bar on a terminal, a plain line every ~10% or 30 s otherwise."""

    def __init__(self, total):
        self.total, self.done, self.start, self.last = total, 0, time.time(), time.time()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit='video', desc='decoding')

    def update(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.time()
        step = max(1, self.total // 10)
        if self.done == self.total or self.done % step == 0 or now - self.last > 30:
            self.last = now
            print('decoding: %d/%d videos (%.1f videos/s)'
                  % (self.done, self.total, self.done / max(now - self.start, 1e-9)), flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def decode_all(videos, args):
    """Decode the videos not finished yet; return ({video: frames}, {video: error}, decoded)."""
    frames, errors, todo = {}, {}, []
    for video in videos:
        n = count_frames(os.path.join(args.out_dir, frame_dir(video)))
        if n:
            frames[video] = n
        else:
            todo.append((video, args.src_dir, args.out_dir, args.new_width, args.new_height))
    if not todo:
        print('%d videos under %s: %d already done, 0 to decode' % (len(videos), args.src_dir, len(frames)))
        return frames, errors, 0
    workers = 1 if len(todo) == 1 else min(args.num_worker, len(todo))
    print('%d videos under %s: %d already done, %d to decode with %d worker(s)'
          % (len(videos), args.src_dir, len(frames), len(todo), workers), flush=True)
    progress = Progress(len(todo))
    results = _run_jobs(todo, args.num_worker, progress)
    progress.close()
    for video, n, err in results:
        if err:
            errors[video] = err
        else:
            frames[video] = n
    return frames, errors, len(todo) - sum(1 for _, _, err in results if err)


def _run_jobs(todo, num_worker, progress):
    results = []
    if num_worker == 1 or len(todo) == 1:
        _init_worker()
        for job in todo:
            results.append(decode_video(job))
            progress.update()
        return results
    with multiprocessing.Pool(min(num_worker, len(todo)), initializer=_init_worker) as pool:
        for result in pool.imap_unordered(decode_video, todo, chunksize=1):
            results.append(result)
            progress.update()
    return results


# ---------------------------------------------------------------- list files

def write_if_changed(path, lines):
    """Write ``lines``; leave the file untouched (same mtime) when it already matches."""
    text = ''.join(line + '\n' for line in lines)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def write_lists(splits, frames, out_list_path):
    """Write the 12 list files; return (names written, names unchanged, {video: list refs} missing)."""
    os.makedirs(out_list_path, exist_ok=True)
    written, unchanged, missing = [], [], {}
    for (k, subset), entries in sorted(splits.items()):
        raw, vid = [], []
        for video, label, ref in entries:
            if video not in frames:
                missing.setdefault(video, []).append(ref)
                continue
            raw.append('%s %d %d' % (frame_dir(video), frames[video], label))
            vid.append('%s %d %d' % (video, frames[video], label))
        for kind, lines in (('rawframes', raw), ('videos', vid)):
            name = 'ucf101_%s_split_%d_%s.txt' % (subset, k, kind)
            (written if write_if_changed(os.path.join(out_list_path, name), lines) else unchanged).append(name)
    return written, unchanged, missing


def report_problems(errors, missing, src_dir):
    """Print every unreadable or missing video once, after the progress output."""
    absent = sorted(v for v in missing if v not in errors)
    if not errors and not absent:
        return
    print('%d video(s) left out of the lists:' % (len(errors) + len(absent)))
    for video in sorted(errors):
        print('  %s: %s' % (os.path.join(src_dir, video), errors[video]))
    for video in absent:
        refs = missing[video]
        more = ' and %d more' % (len(refs) - 1) if len(refs) > 1 else ''
        print('  %s: not found (named in %s%s)' % (os.path.join(src_dir, video), refs[0], more))


def main(argv=None):
    args = parse_args(argv)
    splits = read_annotations(args.anno_dir)
    videos = find_videos(args.src_dir)
    if not videos:
        raise UserError('%s: no video files (%s) in its class folders; point --src_dir at the extracted '
                        'UCF-101 folder' % (args.src_dir, ', '.join(VIDEO_EXTS)))
    start = time.time()
    frames, errors, decoded = decode_all(videos, args)
    elapsed = time.time() - start
    print('decoded %d video(s) in %.1f s (%.1f videos/s); %d already done; %d unreadable'
          % (decoded, elapsed, decoded / max(elapsed, 1e-9), len(frames) - decoded, len(errors)))
    if not frames:
        report_problems(errors, {}, args.src_dir)
        raise UserError('%s: none of the %d videos could be decoded; check the files and that OpenCV '
                        'can read their codec' % (args.src_dir, len(videos)))
    written, unchanged, missing = write_lists(splits, frames, args.out_list_path)
    print('list files in %s: %d written, %d unchanged' % (args.out_list_path, len(written), len(unchanged)))
    report_problems(errors, missing, args.src_dir)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
