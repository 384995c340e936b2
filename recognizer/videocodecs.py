"""Videos in the codecs real datasets use, for the benchmark and the frame-accuracy tests.

UCF101's own videos are MPEG-4 part 2 (XviD) with B-frames; most videos found elsewhere are H.264
with B-frames. In both a frame is coded against others, decoded out of display order, and a
reader that seeks must start at a keyframe and get every timestamp right, which the MJPG videos
OpenCV writes (every frame a keyframe) never test. OpenCV's pip wheels cannot write either
inter-frame codec with B-frames, so those go through PyAV (``pip install av``, whose wheels bundle
FFmpeg with libx264); MJPG goes through OpenCV as in the rest of the project.

``stamp_number``/``read_number`` write a frame's number into its pixels, in cells large enough
to survive lossy coding, so a test can tell which frame a decoder really returned.
"""
import os

import cv2
import numpy as np

from .errors import UserError

# name: (encoder, container extension, encoder options, what it stands for). The options are the
# encoders' own defaults except where a real dataset differs: XviD, which coded UCF101, uses up to
# 2 B-frames and a keyframe at most every 300 frames (longer than a UCF101 clip).
CODECS = {
    'h264': ('libx264', '.mp4', {'bf': '3', 'crf': '23', 'preset': 'fast'},
             'H.264 (libx264, 3 B-frames, keyframe every 250 frames)'),
    'mpeg4': ('mpeg4', '.avi', {'bf': '2', 'g': '300', 'qscale': '4'},
              'MPEG-4 part 2 as XviD (2 B-frames, keyframe every 300 frames), UCF101\'s codec'),
    'mjpg': ('MJPG', '.avi', {}, 'MJPG (OpenCV, every frame a keyframe)'),
}
BITS = 8
FPS = 25
PICTURE_TYPES = {1: 'I', 2: 'P', 3: 'B'}    # FFmpeg's AVPictureType


def _import_av():
    try:
        import av
    except ImportError:
        raise UserError('writing H.264/MPEG-4 videos needs PyAV: pip install "av>=12,<17" '
                        '(it is in requirements.txt)') from None
    return av


def extension(codec):
    return CODECS[codec][1]


def describe(codec):
    return CODECS[codec][3]


def write_video(path, frames, codec, fps=FPS, keyint=None, options=None):
    """Write BGR uint8 ``frames`` to ``path`` in ``codec`` (a key of CODECS); returns ``path``.

    ``keyint`` overrides the encoder's keyframe interval (tests use short ones, so that a clip
    has several keyframes to seek between); ``options`` adds encoder options.
    """
    encoder = CODECS[codec][0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    height, width = frames[0].shape[:2]
    if encoder == 'MJPG':
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*encoder), fps, (width, height))
        if not writer.isOpened():
            raise UserError('%s: OpenCV cannot write MJPG here; install opencv-python with video support' % path)
        for img in frames:
            writer.write(img)
        writer.release()
        return path
    options = dict(CODECS[codec][2], **(options or {}), **({'g': str(keyint)} if keyint else {}))
    av = _import_av()
    with av.open(path, 'w') as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.options = options
        if codec == 'mpeg4':
            stream.codec_context.codec_tag = 'XVID'    # the FourCC UCF101's files carry
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format='bgr24')))
        container.mux(stream.encode(None))
    return path


def available_codecs():
    """{codec: None if it can be written here, else why not}."""
    found = {}
    for codec, (encoder, _, _, _) in CODECS.items():
        if encoder == 'MJPG':
            found[codec] = None
            continue
        try:
            av = _import_av()
            av.codec.Codec(encoder, 'w')
            found[codec] = None
        except UserError as err:
            found[codec] = str(err)
        except Exception as err:  # PyAV raises its own errors for encoders its FFmpeg lacks
            found[codec] = 'PyAV\'s FFmpeg has no %s encoder (%s)' % (encoder, err)
    return found


def frame_types(path):
    """Picture types ('I', 'P', 'B') of every frame in display order, and which are keyframes."""
    av = _import_av()
    types, keys = [], []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            # PyAV returns an enum or, from version 16, FFmpeg's AVPictureType number.
            kind = frame.pict_type
            types.append(getattr(kind, 'name', None) or PICTURE_TYPES.get(int(kind), '?'))
            keys.append(bool(frame.key_frame))
    return types, keys


# ---------------------------------------------------------------- frame numbers in the pixels

def _cells(width, height):
    """(x0, y0, x1, y1) of each bit's cell: a row of BITS squares along the top edge."""
    side = min(width // BITS, height // 3)
    return [(k * side, 0, (k + 1) * side, side) for k in range(BITS)]


def stamp_number(img, number):
    """Write ``number`` (0..255) into ``img`` (H, W, 3 uint8, in place) as a row of black and white
    cells, most significant bit first; returns ``img``."""
    if not 0 <= number < 2 ** BITS:
        raise ValueError('frame number %d does not fit in %d bits' % (number, BITS))
    for k, (x0, y0, x1, y1) in enumerate(_cells(img.shape[1], img.shape[0])):
        img[y0:y1, x0:x1] = 235 if (number >> (BITS - 1 - k)) & 1 else 20
    return img


def read_number(img):
    """The number stamp_number wrote, read from the middle of each cell (robust to coding noise)."""
    number = 0
    for x0, y0, x1, y1 in _cells(img.shape[1], img.shape[0]):
        mx, my = (x1 - x0) // 4, (y1 - y0) // 4
        number = number * 2 + int(img[y0 + my:y1 - my, x0 + mx:x1 - mx].mean() > 127)
    return number
