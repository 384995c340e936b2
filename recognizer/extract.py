"""Decoding videos for the dataset-preparation scripts: frame extraction and frame counts, and
the flags and video search those scripts share.

``extract_all`` decodes videos into ``img_00001.jpg``... frame folders with a pool of worker
processes and shows progress. It can be re-run: a video's frames go to a hidden ``.partial_``
folder that is renamed when complete, so a folder under its final name is finished and skipped,
and a half-written one is redone. ``count_all`` counts the frames of videos that stay videos: the
container's count, checked by decoding (it is used only when its first and last frames decode and
nothing follows), else the number of frames that decode. Both report unreadable videos instead
of stopping.
"""
import multiprocessing
import os
import re
import shutil
import sys
import time

# Keep OpenCV/FFmpeg from printing its own warnings for every broken video: the scripts report
# those once, at the end. Set before cv2 is imported, so this module goes first in the scripts.
os.environ.setdefault('OPENCV_LOG_LEVEL', 'OFF')
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')

import cv2  # noqa: E402

from .data import NAME_PATTERN  # noqa: E402
from .errors import UserError  # noqa: E402

VIDEO_EXTS = ('.avi', '.mp4', '.mkv', '.webm', '.mov')
PARTIAL_PREFIX = '.partial_'
NO_FRAMES = 'no frame could be decoded (corrupt, empty or unsupported codec)'


# ---------------------------------------------------------------- command line

def add_extraction_args(parser, new_width=340, new_height=256):
    """--new_width --new_height --num_worker (and their dashed spellings)."""
    parser.add_argument('--new_width', '--new-width', type=int, default=new_width,
                        help='frame width on disk; 0 keeps the aspect ratio (both 0: the video size)')
    parser.add_argument('--new_height', '--new-height', type=int, default=new_height,
                        help='frame height on disk; 0 keeps the aspect ratio (both 0: the video size)')
    parser.add_argument('--num_worker', '--num-worker', type=int, default=os.cpu_count() or 1,
                        help='decoding processes')


def check_extraction_args(args):
    if args.new_width < 0 or args.new_height < 0:
        raise UserError('--new_width/--new_height must be >= 0 (0 keeps the video size); got %d, %d'
                        % (args.new_width, args.new_height))
    if args.num_worker < 1:
        raise UserError('--num_worker must be >= 1; got %d' % args.num_worker)


def expand_paths(args, *names):
    """``~`` in the named path flags; flags left at None stay None."""
    for name in names:
        if getattr(args, name) is not None:
            setattr(args, name, os.path.expanduser(getattr(args, name)))


# ---------------------------------------------------------------- finding videos

def is_video(name):
    return name.lower().endswith(VIDEO_EXTS) and not name.startswith('.')


def find_class_videos(src_dir, what):
    """Sorted ``<Class>/<video>`` paths of every video one level below ``src_dir`` (``what`` it is)."""
    if not os.path.isdir(src_dir):
        raise UserError('%s: folder not found; point --src_dir at %s' % (src_dir, what))
    videos = []
    for cls in sorted(os.listdir(src_dir)):
        folder = os.path.join(src_dir, cls)
        if os.path.isdir(folder) and not cls.startswith('.'):
            videos += ['%s/%s' % (cls, name) for name in sorted(os.listdir(folder)) if is_video(name)]
    if not videos:
        raise UserError('%s: no video files (%s) in its class folders; point --src_dir at %s'
                        % (src_dir, ', '.join(VIDEO_EXTS), what))
    return videos


# ---------------------------------------------------------------- frame folders

def frame_name_regex(pattern=NAME_PATTERN):
    """Regex of the file names a printf pattern with one ``%0Nd`` field (``img_%05d.jpg``) makes."""
    match = re.fullmatch(r'([^%]*)%0([1-9])d([^%]*)', pattern)
    if not match or not match.group(3):
        raise UserError('frame name pattern %r: expected one %%0Nd field and an extension, such as '
                        'img_%%05d.jpg or %%06d.jpg' % pattern)
    return re.compile('%s[0-9]{%s,}%s' % (re.escape(match.group(1)), match.group(2), re.escape(match.group(3))))


def frame_dir(video):
    """Frame folder of a video path: the path without its extension (``<Class>/<stem>``)."""
    return os.path.splitext(video)[0]


def video_jobs(videos, src_dir, out_dir, frame_dir_of=frame_dir):
    """(key, video path, frame folder) triples for extract_all; keys are the paths relative to ``src_dir``."""
    return [(v, os.path.join(src_dir, v), os.path.join(out_dir, frame_dir_of(v))) for v in videos]


def count_frames(folder, pattern=NAME_PATTERN):
    """Frames in a finished folder, 0 when it does not exist."""
    if not os.path.isdir(folder):
        return 0
    regex = frame_name_regex(pattern)
    return sum(1 for name in os.listdir(folder) if regex.fullmatch(name))


def target_size(width, height, new_width, new_height):
    """(width, height) on disk: a 0 side keeps the aspect ratio, both 0 keep the video size."""
    if new_width and new_height:
        return new_width, new_height
    if new_width:
        return new_width, max(1, round(height * new_width / width))
    if new_height:
        return max(1, round(width * new_height / height)), new_height
    return width, height


# ---------------------------------------------------------------- workers

def _file_problem(src):
    """Why ``src`` cannot be a video without opening it, or None."""
    try:
        size = os.path.getsize(src)
    except OSError:
        return 'not found'
    return 'empty file (0 bytes)' if size == 0 else None


def _decode_into(src, tmp, new_width, new_height, pattern):
    """Write every decodable frame of ``src`` into ``tmp``; return the count."""
    cap = cv2.VideoCapture(src)
    n = 0
    try:
        while cap.isOpened():
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            size = target_size(frame.shape[1], frame.shape[0], new_width, new_height)
            if size != (frame.shape[1], frame.shape[0]):
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            n += 1
            path = os.path.join(tmp, pattern % n)
            if not cv2.imwrite(path, frame):
                raise OSError('could not write %s' % path)
    finally:
        cap.release()
    return n


def extract_video(job):
    """Worker: decode one video into its frame folder; return (key, frames, error message or None).

    Frames go to a hidden partial folder that is renamed only when complete, so an interrupted
    run never leaves a folder that looks finished.
    """
    key, src, final, new_width, new_height, pattern = job
    problem = _file_problem(src)
    if problem:
        return key, 0, problem
    tmp = os.path.join(os.path.dirname(final), PARTIAL_PREFIX + os.path.basename(final))
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        n = _decode_into(src, tmp, new_width, new_height, pattern)
        if n == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return key, 0, NO_FRAMES
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        return key, n, None
    except (OSError, cv2.error) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        return key, 0, 'decoding failed: %s' % err


def _confirmed_container_count(path):
    """The container's frame count when its first and last frames decode and no frame follows."""
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            return None
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if claimed <= 0 or not cap.read()[0]:
            return None
        if claimed > 1 and not (cap.set(cv2.CAP_PROP_POS_FRAMES, claimed - 1) and cap.read()[0]):
            return None
        return None if cap.grab() else claimed
    finally:
        cap.release()


def _decoded_count(path):
    cap = cv2.VideoCapture(path)
    n = 0
    try:
        while cap.isOpened() and cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def count_video_frames(path):
    """Frames of a video: the container's count if decoding confirms it, else the frames that decode.

    Containers are wrong for truncated downloads (the header promises more frames than there are)
    and for some WebM/MKV files (a count estimated from the duration).
    """
    confirmed = _confirmed_container_count(path)
    return confirmed if confirmed is not None else _decoded_count(path)


def count_video(job):
    """Worker: (key, frames, error message or None) of one video that is not extracted."""
    key, src = job
    problem = _file_problem(src)
    if problem:
        return key, 0, problem
    try:
        n = count_video_frames(src)
    except cv2.error as err:
        return key, 0, 'decoding failed: %s' % err
    return (key, n, None) if n else (key, 0, NO_FRAMES)


def _init_worker():
    # One OpenCV thread per process: the parallelism comes from the pool.
    cv2.setNumThreads(1)


# ---------------------------------------------------------------- running them

class Progress:
    """tqdm bar on a terminal, a plain line every ~10% or 30 s otherwise."""

    def __init__(self, total, desc):
        self.total, self.desc, self.done = total, desc, 0
        self.start = self.last = time.time()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit='video', desc=desc)

    def update(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.time()
        step = max(1, -(-self.total // 10))
        if self.done == self.total or self.done % step == 0 or now - self.last > 30:
            self.last = now
            print('%s: %d/%d videos (%.1f videos/s)'
                  % (self.desc, self.done, self.total, self.done / max(now - self.start, 1e-9)), flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_jobs(worker, jobs, num_worker, desc):
    """``worker(job)`` for every job, in a pool of ``num_worker`` processes, with progress shown."""
    progress = Progress(len(jobs), desc)
    results = []
    try:
        if num_worker == 1 or len(jobs) == 1:
            _init_worker()
            for job in jobs:
                results.append(worker(job))
                progress.update()
            return results
        with multiprocessing.Pool(min(num_worker, len(jobs)), initializer=_init_worker) as pool:
            for result in pool.imap_unordered(worker, jobs, chunksize=1):
                results.append(result)
                progress.update()
        return results
    finally:
        progress.close()


def _split_results(results, frames, errors):
    for key, n, err in results:
        if err:
            errors[key] = err
        else:
            frames[key] = n
    return frames, errors


def extract_all(videos, new_width, new_height, num_worker, source, pattern=NAME_PATTERN):
    """Decode the videos not extracted yet; return ({key: frames}, {key: error}).

    ``videos`` holds (key, video path, frame folder) triples; ``source`` names where they are
    in the messages.
    """
    frame_name_regex(pattern)
    frames, todo = {}, []
    for key, src, dest in videos:
        n = count_frames(dest, pattern)
        if n:
            frames[key] = n
        else:
            todo.append((key, src, dest, new_width, new_height, pattern))
    if not todo:
        print('%d videos under %s: %d already done, 0 to decode' % (len(videos), source, len(frames)))
        return frames, {}
    workers = 1 if len(todo) == 1 else min(num_worker, len(todo))
    print('%d videos under %s: %d already done, %d to decode with %d worker(s)'
          % (len(videos), source, len(frames), len(todo), workers), flush=True)
    start = time.time()
    frames, errors = _split_results(run_jobs(extract_video, todo, num_worker, 'decoding'), frames, {})
    elapsed = time.time() - start
    decoded = len(todo) - len(errors)
    print('decoded %d video(s) in %.1f s (%.1f videos/s); %d already done; %d unreadable'
          % (decoded, elapsed, decoded / max(elapsed, 1e-9), len(frames) - decoded, len(errors)))
    return frames, errors


def count_all(videos, num_worker, source):
    """Frame counts of videos that stay videos: ({key: frames}, {key: error}).

    ``videos`` holds (key, video path) pairs.
    """
    if not videos:
        return {}, {}
    workers = 1 if len(videos) == 1 else min(num_worker, len(videos))
    print('counting the frames of %d videos under %s with %d worker(s)' % (len(videos), source, workers), flush=True)
    start = time.time()
    frames, errors = _split_results(run_jobs(count_video, list(videos), num_worker, 'counting'), {}, {})
    elapsed = time.time() - start
    print('counted %d video(s) in %.1f s (%.1f videos/s); %d unreadable'
          % (len(frames), elapsed, len(videos) / max(elapsed, 1e-9), len(errors)))
    return frames, errors
