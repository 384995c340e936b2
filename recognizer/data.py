"""UCF101-layout data: list files, TSN segment sampling, frame/video reading, loaders.

List lines are ``<clip dir or video, relative to the data root> <num_frames> <0-based label>``
(video lists may leave out the frame count, as GluonCV's dataset scripts write them); frames are
named by a printf pattern, ``img_00001.jpg`` onward by default (GluonCV's name_pattern).
Sampling follows GluonCV's VideoClsCustom exactly (1-based frame numbers, the same clamping
for short clips, its SlowFast frame selection). Every random draw of a
sample comes from a generator seeded by (seed, epoch, index), so what a sample looks
like does not depend on the number of loader workers, their order, or a resume.
"""
import atexit
import glob
import os
import re
from collections import namedtuple

import cv2
import numpy as np

from . import transforms
from .dist import dump_shard, sharded_indices
from .errors import UserError
from .videoread import BadSample, VideoFile

NAME_PATTERN = 'img_%05d.jpg'
# GluonCV's dataset classes: SomethingSomethingV2 reads the frames its preparation script writes
# with ffmpeg (%06d.jpg from 000001); the others read img_%05d.jpg.
DATASET_NAME_PATTERNS = {'somethingsomethingv2': '%06d.jpg'}
# What GluonCV's VideoClsCustom appends to a listed video without an extension (its video_ext default).
VIDEO_EXT = 'mp4'
Clip = namedtuple('Clip', 'path num_frames label line_no')


def name_pattern_for(dataset, name_pattern=None):
    """The frame file pattern to read: ``name_pattern`` when given, else the dataset's as in GluonCV."""
    pattern = name_pattern or DATASET_NAME_PATTERNS.get(dataset, NAME_PATTERN)
    try:
        first = pattern % 1
        if _frame_name_regex(pattern) is None:
            raise ValueError(pattern)
    except (TypeError, ValueError):
        raise UserError('--name-pattern %r: expected a printf pattern with one integer field for the 1-based '
                        'frame number, e.g. img_%%05d.jpg or %%06d.jpg' % pattern) from None
    if os.sep in first:
        raise UserError('--name-pattern %r: a file name inside the clip folder, without a folder part, '
                        'e.g. img_%%05d.jpg' % pattern)
    return pattern


# ---------------------------------------------------------------- list files

def _parse_line(list_path, line_no, line, video=False):
    # Split off only the last two fields: a path may hold runs of spaces or tabs, kept as they are.
    fields = line.strip().rsplit(None, 2)
    where = '%s:%d' % (list_path, line_no)
    if video and len(fields) == 2:
        # GluonCV's hmdb51.py/kinetics400.py write "<video> <label>" lines for videos; the length
        # comes from the video itself.
        fields = [fields[0], '-1', fields[1]]
    if len(fields) < 3:
        raise UserError('%s: expected "<clip path> <num_frames> <label>", got %r; '
                        'fix the line or regenerate the list' % (where, line.strip()))
    try:
        num_frames = int(fields[-2])
    except ValueError:
        raise UserError('%s: frame count %r is not an integer; the second field must be the '
                        'number of frames of the clip' % (where, fields[-2])) from None
    try:
        label = int(fields[-1])
    except ValueError:
        raise UserError('%s: label %r is not an integer; the last field must be a 0-based class '
                        'index' % (where, fields[-1])) from None
    return fields[0], num_frames, label


def _frame_name_regex(name_pattern):
    """A regex whose group 1 is the number of a name ``name_pattern`` may have produced, or None if
    the pattern has no %d-style field."""
    field = re.search(r'%0?\d*[di]', name_pattern)
    if field is None:
        return None
    head, tail = (part.replace('%%', '%') for part in (name_pattern[:field.start()], name_pattern[field.end():]))
    return re.compile(re.escape(head) + r' *(\d+)' + re.escape(tail) + '$')


def _count_frames(clip_dir, name_pattern=NAME_PATTERN):
    """Frame files of a clip folder named exactly as ``name_pattern`` names them (others are not counted)."""
    regex = _frame_name_regex(name_pattern)
    try:
        names = os.listdir(clip_dir)
    except OSError:
        return -1
    found = (regex.match(name) for name in names)
    return sum(1 for name, match in zip(names, found) if match and name_pattern % int(match.group(1)) == name)


def _check_clip(where, clip, num_classes, video, name_pattern=NAME_PATTERN):
    if not 0 <= clip.label < num_classes:
        raise UserError('%s: label %d is outside 0..%d; labels are 0-based and must be below '
                        '--num-classes %d' % (where, clip.label, num_classes - 1, num_classes))
    if video:
        if not os.path.isfile(clip.path):
            raise UserError('%s: video %s does not exist; check --data-dir and the list' % (where, clip.path))
        return
    if not os.path.isdir(clip.path):
        raise UserError('%s: clip folder %s does not exist; check --data-dir (the list paths are '
                        'relative to it)' % (where, clip.path))
    on_disk = _count_frames(clip.path, name_pattern)
    if on_disk < clip.num_frames:
        raise UserError('%s: the list claims %d frames but %s holds %d files named %s; fix the count, '
                        're-extract the frames, or give their naming with --name-pattern'
                        % (where, clip.num_frames, clip.path, on_disk, name_pattern))


def _text_lines(list_path):
    """(line number, line) of a UTF-8 text file; a UserError names the first line that is not text."""
    with open(list_path, 'rb') as f:
        raw = f.read()
    lines = raw.split(b'\n')
    for line_no, line in enumerate(lines, 1):
        try:
            text = line.decode('utf-8')
        except UnicodeDecodeError:
            text = None
        if text is None or '\x00' in text:
            raise UserError('%s:%d: not a text line (binary or non-UTF-8 bytes %r...); a list file has one '
                            '"<clip> <num_frames> <label>" text line per clip: pass the list, not a video, '
                            'archive or parameter file' % (list_path, line_no, line[:20]))
        yield line_no, text


def _video_path(path):
    """A listed video without an extension is ``<path>.mp4`` as in GluonCV, or else the one file
    ``<path>.<ext>`` (HMDB51's lists name its .avi videos without extension)."""
    if '.' in os.path.basename(path) or os.path.isfile(path):
        return path
    default = '%s.%s' % (path, VIDEO_EXT)
    others = glob.glob(glob.escape(path) + '.*')
    return others[0] if len(others) == 1 and not os.path.isfile(default) else default


def read_clip_list(list_path, root, num_classes, video=False, check_files=True, name_pattern=NAME_PATTERN):
    """Parse and check a list file; every problem is a UserError naming file and line.

    Frame folders are checked for ``name_pattern`` files; videos are found as GluonCV does.
    """
    list_path = os.path.expanduser(list_path)
    root = os.path.expanduser(root)
    if not os.path.isfile(list_path):
        raise UserError('list file %s does not exist; pass --train-list/--val-list' % list_path)
    clips = []
    for line_no, line in _text_lines(list_path):
        if not line.strip():
            continue
        rel, num_frames, label = _parse_line(list_path, line_no, line, video)
        path = os.path.join(root, rel)
        clip = Clip(_video_path(path) if video else path, num_frames, label, line_no)
        if check_files:
            _check_clip('%s:%d' % (list_path, line_no), clip, num_classes, video, name_pattern)
        clips.append(clip)
    if not clips:
        raise UserError('list file %s is empty; it needs one "<clip> <num_frames> <label>" line per clip'
                        % list_path)
    return clips


# ---------------------------------------------------------------- sampling

def train_offsets(num_frames, num_segments, skip_length, rng):
    """1-based start frame of each segment: one random frame inside each equal segment."""
    average = (num_frames - skip_length + 1) // num_segments
    if average > 0:
        offsets = np.arange(num_segments) * average + rng.integers(average, size=num_segments)
    elif num_frames > max(num_segments, skip_length):
        offsets = np.sort(rng.integers(num_frames - skip_length + 1, size=num_segments))
    else:
        offsets = np.zeros(num_segments, dtype=int)
    return offsets + 1


def val_offsets(num_frames, num_segments, skip_length):
    """1-based start frame of each segment: the segment centres."""
    if num_frames > num_segments + skip_length - 1:
        tick = (num_frames - skip_length + 1) / float(num_segments)
        offsets = np.array([int(tick / 2.0 + tick * k) for k in range(num_segments)])
    else:
        offsets = np.zeros(num_segments, dtype=int)
    return offsets + 1


def test_offsets(num_frames, num_segments, skip_length):
    """Like val_offsets, but used for dense test views even when segments outnumber frames."""
    if num_frames > skip_length - 1:
        tick = (num_frames - skip_length + 1) / float(num_segments)
        offsets = np.array([int(tick / 2.0 + tick * k) for k in range(num_segments)])
    else:
        offsets = np.zeros(num_segments, dtype=int)
    return offsets + 1


def frame_numbers(offsets, num_frames, new_length, new_step):
    """1-based frames to read: new_length frames new_step apart from each offset.

    Mirrors GluonCV's loader (without temporal jitter): the position stops advancing near
    the clip's end, so a short clip repeats its last frames.
    """
    numbers = []
    for start in offsets:
        pos = int(start)
        for _ in range(new_length):
            numbers.append(pos)
            if pos + new_step < num_frames:
                pos += new_step
    return numbers


def slowfast_frame_counts(new_length, new_step, fast_temporal_stride, slow_temporal_stride):
    """(fast, slow) frames per segment of --slowfast sampling; bad settings are a UserError.

    GluonCV's VideoClsCustom asserts the same two conditions (consecutive frames, slow stride a
    multiple of the fast one).
    """
    if new_step != 1:
        raise UserError('--slowfast reads consecutive frames and subsamples them itself: --new-step must be 1, '
                        'got %d' % new_step)
    if fast_temporal_stride < 1 or slow_temporal_stride % fast_temporal_stride:
        raise UserError('--slow-temporal-stride %d must be a multiple of --fast-temporal-stride %d (the slow '
                        'pathway takes every n-th fast frame)' % (slow_temporal_stride, fast_temporal_stride))
    fast, slow = new_length // fast_temporal_stride, new_length // slow_temporal_stride
    if slow < 1:
        raise UserError('--new-length %d gives the slow pathway no frame at --slow-temporal-stride %d; '
                        'raise --new-length' % (new_length, slow_temporal_stride))
    return fast, slow


def frames_per_segment(new_length, slowfast=False, fast_temporal_stride=2, slow_temporal_stride=16):
    """Frames the network gets per segment: --new-length, or fast + slow frames with --slowfast."""
    if not slowfast:
        return new_length
    return sum(slowfast_frame_counts(new_length, 1, fast_temporal_stride, slow_temporal_stride))


def segment_frames(opt):
    """frames_per_segment of parsed options (--new-length, --slowfast and its strides)."""
    return frames_per_segment(opt.new_length, opt.slowfast, opt.fast_temporal_stride, opt.slow_temporal_stride)


def slowfast_strides(opt):
    """ClipDataset's ``slowfast`` from parsed options: (fast, slow) temporal strides with --slowfast, else None."""
    return (opt.fast_temporal_stride, opt.slow_temporal_stride) if opt.slowfast else None


def slowfast_frame_numbers(offsets, num_frames, new_length, fast_temporal_stride, slow_temporal_stride):
    """1-based frames of GluonCV's SlowFast sampling: per segment, of the ``new_length`` consecutive
    frames from its offset, every fast_temporal_stride-th one (the fast pathway) followed by every
    slow_temporal_stride-th one (the slow pathway)."""
    numbers = []
    for start in offsets:
        run = frame_numbers([start], num_frames, new_length, 1)
        numbers += run[fast_temporal_stride - 1::fast_temporal_stride]
        numbers += run[slow_temporal_stride - 1::slow_temporal_stride]
    return numbers


# ---------------------------------------------------------------- reading

# OpenCV >= 4.10 decodes straight to RGB (libjpeg-turbo converts while decoding, no extra pass);
# older versions decode BGR and we reorder channels. Both give identical pixels.
_RGB_FLAG = getattr(cv2, 'IMREAD_COLOR_RGB', None)
_cv2_threads_set = []


def _single_threaded_cv2():
    """One OpenCV thread per process: loader workers run in parallel already, and spare
    threads would only compete with the network's compute threads for the same cores."""
    if not _cv2_threads_set:
        cv2.setNumThreads(1)
        _cv2_threads_set.append(True)


def decode_rgb(path):
    """RGB uint8 image of a JPEG/PNG file, or None when it cannot be read or decoded.

    np.fromfile + imdecode is faster than cv2.imread for small frames (one read call).
    """
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if buf.size == 0:
        return None
    if _RGB_FLAG is not None:
        return cv2.imdecode(buf, _RGB_FLAG)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_frames(clip_dir, numbers, new_width=0, new_height=0, name_pattern=NAME_PATTERN):
    """RGB uint8 frames from a frame folder, resized to (new_height, new_width) when given.

    Reads only the listed frames, each once even when short clips repeat a number.
    """
    _single_threaded_cv2()
    decoded = {}
    for n in numbers:
        if n in decoded:
            continue
        path = os.path.join(clip_dir, name_pattern % n)
        img = decode_rgb(path)
        if img is None:
            raise BadSample(path, 'cannot be read or decoded as an image')
        if new_width > 0 and new_height > 0 and img.shape[:2] != (new_height, new_width):
            # Like GluonCV, which resizes BGR frames: resizing works per channel, so the order does not matter.
            img = cv2.resize(img, (new_width, new_height))
        decoded[n] = img
    return [decoded[n] for n in numbers]


def open_video(path, new_width=0, new_height=0):
    return VideoFile(path, new_width, new_height)


def read_video_frames(reader, path, numbers):
    try:
        return reader.frames(numbers)
    except (BadSample, UserError):
        raise
    except Exception as err:
        raise BadSample(path, 'frames %s cannot be decoded (%s)' % (numbers, str(err).splitlines()[0])) from None


def decode_whole_clip(clip, video, name_pattern=NAME_PATTERN):
    """Decode every frame of a clip (for --check-data); raises BadSample on the first failure."""
    if video:
        reader = open_video(clip.path)
        try:
            if len(reader) == 0:
                raise BadSample(clip.path, 'has no frames')
            for start in range(0, len(reader), 64):
                read_video_frames(reader, clip.path, list(range(start + 1, min(start + 64, len(reader)) + 1)))
        finally:
            reader.close()   # --check-data opens every video of the lists: free each decoder at once
        return
    read_frames(clip.path, range(1, clip.num_frames + 1), name_pattern=name_pattern)


# ---------------------------------------------------------------- dataset and loader

class ClipDataset(object):
    """Clips of a list file as uint8 arrays (num_segments * frames per segment, H, W, 3) + label.

    Items are addressed by (index, epoch) so each draw can be seeded independently.
    ``transform(frames, rng)`` turns the list of read frames into the uint8 array.
    ``slowfast=(fast_temporal_stride, slow_temporal_stride)`` samples as GluonCV does for SlowFast
    networks: each segment is its fast frames followed by its slow frames (frames_per_segment).
    """

    def __init__(self, clips, transform, train, num_segments=1, new_length=1, new_step=1,
                 new_width=0, new_height=0, video=False, seed=0, skip_bad=False, offsets='auto',
                 slowfast=None, name_pattern=NAME_PATTERN):
        if slowfast:
            slowfast_frame_counts(new_length, new_step, *slowfast)
        self.slowfast = tuple(slowfast) if slowfast else None
        self.name_pattern = name_pattern
        self.clips = clips
        self.transform = transform
        self.train = train
        self.num_segments = num_segments
        self.new_length = new_length
        self.new_step = new_step
        self.new_width = new_width
        self.new_height = new_height
        self.video = video
        self.seed = seed
        self.skip_bad = skip_bad
        self.offsets = offsets if offsets != 'auto' else ('train' if train else 'val')

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, key):
        index, epoch = key
        bad = 0
        for attempt in range(len(self.clips)):
            item = (index + attempt) % len(self.clips)
            rng = np.random.default_rng([self.seed, epoch, item, attempt])
            try:
                return self.load(item, rng), self.clips[item].label, bad
            except BadSample as err:
                if not self.skip_bad:
                    raise UserError('%s (clip on line %d of its list); fix or remove it, or pass '
                                    '--skip-bad-samples to replace broken samples and count them'
                                    % (err, self.clips[item].line_no)) from None
                bad += 1
        raise UserError('no clip in the list could be read; check the data with --check-data')

    def frame_numbers(self, num_frames, rng):
        """The 1-based frames one draw of a clip of ``num_frames`` frames reads, in network order."""
        skip_length = self.new_length * self.new_step
        if self.offsets == 'train':
            offsets = train_offsets(num_frames, self.num_segments, skip_length, rng)
        elif self.offsets == 'val':
            offsets = val_offsets(num_frames, self.num_segments, skip_length)
        else:
            offsets = test_offsets(num_frames, self.num_segments, skip_length)
        if self.slowfast:
            return slowfast_frame_numbers(offsets, num_frames, self.new_length, *self.slowfast)
        return frame_numbers(offsets, num_frames, self.new_length, self.new_step)

    def load(self, index, rng):
        clip = self.clips[index]
        if not self.video:
            numbers = self.frame_numbers(clip.num_frames, rng)
            return self.transform(read_frames(clip.path, numbers, self.new_width, self.new_height,
                                              self.name_pattern), rng)
        reader = open_video(clip.path, self.new_width, self.new_height)
        try:
            if len(reader) == 0:
                raise BadSample(clip.path, 'has no frames')
            frames = read_video_frames(reader, clip.path, self.frame_numbers(len(reader), rng))
        finally:
            reader.close()
        return self.transform(frames, rng)


def training_datasets(opt, train_clips, val_clips):
    """ClipDatasets of train_recognizer.py: multi-scale crops for training, centre crops for validation."""
    size = opt.input_size

    def train_view(frames, rng):
        return transforms.train_transform(frames, rng, size, opt.scale_ratios, opt.max_distort,
                                          opt.more_fix_crop)

    def val_view(frames, rng):
        return transforms.center_crop(frames, size)

    common = dict(num_segments=opt.num_segments, new_length=opt.new_length, new_step=opt.new_step,
                  new_width=opt.new_width, new_height=opt.new_height, video=opt.video_loader,
                  seed=opt.seed, skip_bad=opt.skip_bad_samples,
                  name_pattern=name_pattern_for(opt.dataset, opt.name_pattern),
                  slowfast=slowfast_strides(opt))
    return (ClipDataset(train_clips, train_view, train=True, **common),
            ClipDataset(val_clips, val_view, train=False, **common))


def batchify(samples):
    """Stack samples into (uint8 clips, int32 labels, number of replaced bad samples)."""
    clips = np.stack([s[0] for s in samples])
    labels = np.array([s[1] for s in samples], dtype=np.int32)
    return clips, labels, sum(s[2] for s in samples)


class EpochBatchSampler(object):
    """Batches of (index, epoch) keys; the order is a function of (seed, epoch) only.

    With ``num_parts > 1`` each part (distributed worker) gets its shard: for training an
    equally long share of the epoch's permutation (recognizer.dist.sharded_indices).
    """

    def __init__(self, length, batch_size, shuffle, seed=0, last_batch='discard', num_parts=1, part_index=0):
        self.length = length
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.last_batch = last_batch
        self.num_parts = num_parts
        self.part_index = part_index
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch, start_batch=0):
        """Next iteration yields this epoch's batches from ``start_batch`` (for mid-epoch resume)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def indices(self):
        if self.shuffle:
            return sharded_indices(self.length, self.epoch, self.seed, self.part_index, self.num_parts)
        # Validation: no padding, so every clip is counted exactly once over all parts.
        return list(range(self.part_index, self.length, self.num_parts))

    def __iter__(self):
        order = self.indices()
        if self.shuffle:
            dump_shard(order[:len(self) * self.batch_size], self.part_index, self.epoch)
        for start in range(self.start_batch * self.batch_size, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            if len(chunk) < self.batch_size and self.last_batch == 'discard':
                return
            yield [(int(i), self.epoch) for i in chunk]

    def __len__(self):
        n = len(self.indices())
        if self.last_batch == 'discard':
            return n // self.batch_size
        return -(-n // self.batch_size)


def shared_memory_batchify(samples):
    """batchify, with the clips in an NDArray in shared memory: worker processes then hand the
    main process a file descriptor instead of pickling megabytes through a pipe, which capped
    the loader at about 200 clips/s at 224 px whatever the number of workers."""
    import mxnet as mx
    clips, labels, bad = batchify(samples)
    return mx.nd.array(clips, ctx=mx.Context('cpu_shared', 0), dtype=clips.dtype), labels, bad


def make_loader(dataset, sampler, num_workers, prefetch_ratio=2.0, threads=True):
    """A gluon DataLoader over ``sampler``'s batches; ``num_workers`` 0 loads in the calling thread.

    By default the workers are threads of this process: JPEG decoding, resizing and cropping run
    in OpenCV/numpy with the GIL released, so threads load in parallel without the per-batch cost
    of worker processes (task pickling, a shared-memory file descriptor per batch, an extra copy),
    which made the main process the ceiling at about 220-330 clips/s on 2 cores. 2 threads gave
    about 1.5x the clips/s of 2 processes (420-520 at 224 px) for fewer CPU-seconds per clip, and
    no forked copies of the trainer (end-to-end PSS at 112 px: 1.25 GiB instead of 2.2-2.4 GiB).
    ``threads=False`` uses worker processes (for transforms that hold the GIL).
    """
    from mxnet import gluon
    prefetch = max(1, int(prefetch_ratio * num_workers)) if num_workers > 0 else None
    processes = num_workers > 0 and not threads
    loader = gluon.data.DataLoader(dataset, batch_sampler=sampler,
                                   batchify_fn=shared_memory_batchify if processes else batchify,
                                   num_workers=num_workers, prefetch=prefetch, thread_pool=threads)
    if num_workers > 0 and threads:
        atexit.register(_finish_loader_threads, loader._worker_pool)
    return loader


def _finish_loader_threads(pool, timeout=60.0):
    """Let the loader threads finish their current task and exit before the interpreter tears
    down: a daemon thread returning from OpenCV during finalisation is unwound through C++ frames,
    which aborts the process ("terminate called without an active exception", exit 134).
    ThreadPool.terminate() (also what DataLoader.__del__ calls) drops queued tasks but neither
    stops nor joins its threads, so hand each one an exit sentinel and join it."""
    pool.terminate()
    threads = list(getattr(pool, '_pool', []))
    for _ in threads:
        pool._inqueue.put(None)
    for thread in threads:
        thread.join(timeout)


test_offsets.__test__ = False   # GluonCV's name for it; keep pytest from collecting it as a test
