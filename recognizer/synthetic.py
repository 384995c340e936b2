"""A tiny, deterministic, UCF101-shaped dataset for smoke tests and demos.

Each class is one moving object with its own colour and shape on a noisy grey
background, so a 2D CNN trained from scratch can tell the classes apart from a
single frame, while the object's motion makes temporal sampling visible.  The
folder layout and annotation files mimic the official UCF101 archive
(``UCF-101/``, ``ucfTrainTestlist/``) plus GluonCV's frame folders
(``rawframes/``) and list files, so the real data pipeline can be exercised
end to end without downloading anything.
"""
import os

import cv2
import numpy as np

from recognizer.errors import UserError

FPS = 25
FOURCC = 'MJPG'
JPEG_QUALITY = 95
NUM_SPLITS = 3

# Saturated BGR colours that stay far apart in RGB space and from the grey
# background, so colour alone separates up to 8 classes.
COLOURS = [
    (40, 40, 230),    # red
    (40, 210, 40),    # green
    (230, 60, 30),    # blue
    (30, 230, 240),   # yellow
    (220, 40, 220),   # magenta
    (230, 230, 40),   # cyan
    (20, 140, 255),   # orange
    (250, 250, 250),  # white
]
SHAPES = ['square', 'disc', 'triangle', 'cross', 'diamond', 'hbar', 'vbar', 'ring']
FILLS = ['solid', 'striped']
MAX_CLASSES = len(COLOURS) * len(SHAPES) * len(FILLS)


def class_name(index):
    """Class folder name, e.g. ``Class00``."""
    return 'Class%02d' % index


def clip_name(cls, group, clip):
    """UCF101-style clip stem: ``v_<Class>_g<GG>_c<CC>`` (group and clip 1-based)."""
    return 'v_%s_g%02d_c%02d' % (cls, group, clip)


def class_style(index):
    """(colour, shape, fill) of class ``index``; unique for index < MAX_CLASSES.

    Class k's shape is shifted by k // 8 so that the first 64 classes are all
    distinct (colour, shape) pairs and the first 8 differ in both.
    """
    colour = index % len(COLOURS)
    shape = (colour + index // len(COLOURS)) % len(SHAPES)
    fill = index // (len(COLOURS) * len(SHAPES))
    return COLOURS[colour], SHAPES[shape], FILLS[fill]


def _shape_points(shape, cx, cy, r):
    """Polygon vertices of the polygonal shapes, centred on (cx, cy), half-size r."""
    if shape == 'triangle':
        pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    elif shape == 'diamond':
        pts = [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    else:
        raise ValueError(shape)
    return np.array(pts, dtype=np.int32)


def _draw_shape(img, shape, cx, cy, r, colour):
    """Draw one filled shape of half-size ``r`` centred on (cx, cy) into ``img``."""
    cx, cy, r = int(round(cx)), int(round(cy)), max(int(round(r)), 2)
    t = max(r // 3, 1)
    if shape == 'square':
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    elif shape == 'disc':
        cv2.circle(img, (cx, cy), r, colour, -1)
    elif shape == 'ring':
        cv2.circle(img, (cx, cy), r - t // 2, colour, t + 1)
    elif shape == 'cross':
        cv2.rectangle(img, (cx - r, cy - t), (cx + r, cy + t), colour, -1)
        cv2.rectangle(img, (cx - t, cy - r), (cx + t, cy + r), colour, -1)
    elif shape == 'hbar':
        cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), colour, -1)
    elif shape == 'vbar':
        cv2.rectangle(img, (cx - r // 2, cy - r), (cx + r // 2, cy + r), colour, -1)
    else:
        cv2.fillPoly(img, [_shape_points(shape, cx, cy, r)], colour)


def _trajectory(rng, num_frames, width, height, r):
    """Object centres for every frame: straight motion bouncing off the borders."""
    lo = np.array([r, r], dtype=np.float64)
    hi = np.array([width - 1 - r, height - 1 - r], dtype=np.float64)
    pos = lo + rng.random(2) * (hi - lo)
    angle = rng.random() * 2 * np.pi
    # Cross roughly half the frame over the clip whatever its length.
    speed = (0.5 + 0.5 * rng.random()) * min(width, height) / max(num_frames, 1)
    vel = speed * np.array([np.cos(angle), np.sin(angle)])
    centres = []
    for _ in range(num_frames):
        centres.append(pos.copy())
        pos = pos + vel
        for axis in range(2):
            if pos[axis] < lo[axis] or pos[axis] > hi[axis]:
                vel[axis] = -vel[axis]
                pos[axis] = np.clip(pos[axis], lo[axis], hi[axis])
    return centres


def render_clip(class_index, rng, num_frames, width, height):
    """Return ``num_frames`` BGR uint8 frames (height x width x 3) of one clip."""
    colour, shape, fill = class_style(class_index)
    r = 0.3 * min(width, height) * (0.85 + 0.3 * rng.random())
    base = 100 + 30 * rng.random()
    # A smooth per-clip brightness gradient so backgrounds differ between clips.
    ramp = np.linspace(-1, 1, width)[None, :, None] * (8 * rng.standard_normal())
    phase = rng.random() * 2 * np.pi
    frames = []
    for t, (cx, cy) in enumerate(_trajectory(rng, num_frames, width, height, r)):
        bg = base + ramp + 20 * rng.standard_normal((height, width, 3))
        img = np.clip(bg, 0, 255).astype(np.uint8)
        # A gentle size pulse: frames differ even when the object is still.
        pulse = 1.0 + 0.08 * np.sin(phase + 2 * np.pi * t / 12.0)
        _draw_shape(img, shape, cx, cy, r * pulse, colour)
        if fill == 'striped':
            img[::4, :, :] = np.clip(bg[::4], 0, 255).astype(np.uint8)
        frames.append(img)
    return frames


def _split_members(total, val_per_class, split):
    """Indices of the test clips of ``split`` (1-based): a window rotated per split."""
    start = ((split - 1) * val_per_class) % max(total, 1)
    return {(start + i) % total for i in range(val_per_class)}


def _check_args(num_classes, train_per_class, val_per_class, num_frames, width, height):
    if not 1 <= num_classes <= MAX_CLASSES:
        raise UserError('num_classes=%d: must be 1..%d; pick fewer classes' % (num_classes, MAX_CLASSES))
    if train_per_class < 1 or val_per_class < 1:
        raise UserError('train_per_class and val_per_class must be >= 1; got %d and %d'
                        % (train_per_class, val_per_class))
    if train_per_class + val_per_class > 99:
        raise UserError('train_per_class + val_per_class must be <= 99 (clip groups are 2 digits)')
    if num_frames < 1:
        raise UserError('num_frames=%d: must be >= 1' % num_frames)
    if width < 16 or height < 16:
        raise UserError('frame size %dx%d is too small; use at least 16x16' % (width, height))
    if width % 2 or height % 2:
        # OpenCV's MJPG writer silently drops an odd last column, so videos and frames would differ.
        raise UserError('frame size %dx%d: width and height must be even' % (width, height))


def _write_frames(folder, frames):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(frames):
        path = os.path.join(folder, 'img_%05d.jpg' % (i + 1))
        if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise UserError('%s: could not write the frame; check the out dir is writable' % path)


def _write_video(path, frames, width, height):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC), FPS, (width, height))
    if not writer.isOpened():
        raise UserError('%s: OpenCV cannot open a %s video writer; install opencv-python '
                        'with video support' % (path, FOURCC))
    for img in frames:
        writer.write(img)
    writer.release()


def _write_text(path, lines):
    with open(path, 'w', newline='\n') as f:
        f.write(''.join(line + '\n' for line in lines))
    return path


def _clips(num_classes, per_class):
    """(class index, class name, clip index, clip stem) of every clip, class-major."""
    for c in range(num_classes):
        name = class_name(c)
        for i in range(per_class):
            yield c, name, i, clip_name(name, i + 1, 1)


def _write_annotations(anno_dir, num_classes, per_class, val_per_class, num_frames, frames, videos):
    """Official split files plus GluonCV's split-1 lists; returns {key: path}."""
    os.makedirs(anno_dir, exist_ok=True)
    paths = {'class_ind': _write_text(os.path.join(anno_dir, 'classInd.txt'),
                                      ['%d %s' % (c + 1, class_name(c)) for c in range(num_classes)])}
    for split in range(1, NUM_SPLITS + 1):
        test_idx = _split_members(per_class, val_per_class, split)
        train, test = [], []
        for c, name, i, stem in _clips(num_classes, per_class):
            video = '%s/%s.avi' % (name, stem)
            if i in test_idx:
                test.append(video)
            else:
                train.append('%s %d' % (video, c + 1))
        paths['trainlist%02d' % split] = _write_text(
            os.path.join(anno_dir, 'trainlist%02d.txt' % split), train)
        paths['testlist%02d' % split] = _write_text(
            os.path.join(anno_dir, 'testlist%02d.txt' % split), test)
    test_idx = _split_members(per_class, val_per_class, 1)
    for kind, enabled, suffix in (('rawframes', frames, ''), ('videos', videos, '.avi')):
        if not enabled:
            continue
        for subset, in_test in (('train', False), ('val', True)):
            lines = ['%s/%s%s %d %d' % (name, stem, suffix, num_frames, c)
                     for c, name, i, stem in _clips(num_classes, per_class) if (i in test_idx) == in_test]
            key = '%s_list_%s' % (subset, kind)
            paths[key] = _write_text(
                os.path.join(anno_dir, 'ucf101_%s_split_1_%s.txt' % (subset, kind)), lines)
    return paths


def make_synthetic_ucf101(out_dir, num_classes=5, train_per_class=8, val_per_class=4, num_frames=24,
                          width=80, height=64, seed=0, frames=True, videos=True):
    """Write a synthetic UCF101-like dataset under ``out_dir`` and return what it wrote.

    Every class has ``train_per_class + val_per_class`` clips; split 1 tests on
    the first ``val_per_class`` clips of each class, splits 2 and 3 on other
    windows.  The same arguments always produce byte-identical JPEGs and lists.

    Returns a dict of paths: ``out_dir``, ``rawframes_dir``, ``videos_dir``,
    ``anno_dir``, ``class_ind``, ``trainlist01..03``, ``testlist01..03``,
    ``train_list_rawframes``/``val_list_rawframes`` (when ``frames``) and
    ``train_list_videos``/``val_list_videos`` (when ``videos``); the two
    ``*_dir`` keys of a skipped layout are None.  ``classes`` holds the names.
    """
    _check_args(num_classes, train_per_class, val_per_class, num_frames, width, height)
    per_class = train_per_class + val_per_class
    out_dir = os.path.abspath(out_dir)
    raw_dir = os.path.join(out_dir, 'rawframes') if frames else None
    vid_dir = os.path.join(out_dir, 'UCF-101') if videos else None
    for c, name, i, stem in _clips(num_classes, per_class):
        # Seeding per clip keeps each clip identical whatever else is generated.
        rng = np.random.default_rng([seed, c, i])
        clip = render_clip(c, rng, num_frames, width, height)
        if frames:
            _write_frames(os.path.join(raw_dir, name, stem), clip)
        if videos:
            _write_video(os.path.join(vid_dir, name, stem + '.avi'), clip, width, height)
    anno_dir = os.path.join(out_dir, 'ucfTrainTestlist')
    paths = _write_annotations(anno_dir, num_classes, per_class, val_per_class, num_frames, frames, videos)
    paths.update(out_dir=out_dir, rawframes_dir=raw_dir, videos_dir=vid_dir, anno_dir=anno_dir,
                 classes=[class_name(c) for c in range(num_classes)])
    return paths
