"""Reading sampled frames from videos (--video-loader --use-decord): decoding only what is needed,
and only in ways that return the frames asked for.

decord gives the clip length (GluonCV's: the packets of the video stream) and the keyframes.
Then, per video:
- every frame a keyframe (MJPG): decord seeks to each sampled frame;
- inter-frame coding in a container with presentation timestamps (.mp4/.m4v/.mov/.mkv): PyAV
  decodes in order from the keyframe before the first sampled frame, skipping the non-reference
  frames that are not sampled (no other frame needs them: a third to two thirds of H.264 and
  MPEG-4 frames) and converting only the sampled ones. Frames are recognised by their timestamps,
  so a seek that lands elsewhere cannot return a wrong frame;
- otherwise (.avi and others, which carry no presentation timestamps): OpenCV's FFmpeg decoder,
  the one the preparation scripts extract frames with, decodes in order from the first frame and
  converts only the sampled frames.
decord's own seeking returns wrong frames in MPEG-4 part 2 with B-frames (UCF101's XviD .avi
files) and in .avi files with B-frames (tests/test_video_frame_accuracy.py); such a video logs one
line per codec and container. Reads in increasing order go on from where the last one stopped
(recognizer.windows reads long videos so), and nothing decoded is kept beyond the frames returned.
"""
import logging
import os
import threading

import cv2

from .errors import UserError

TIMESTAMPED_CONTAINERS = {'.mp4', '.m4v', '.mov', '.mkv'}
_warned = set()
_warned_lock = threading.Lock()
logger = logging.getLogger(__name__)


class BadSample(Exception):
    """A frame or video that cannot be decoded, found while loading."""

    def __init__(self, path, what):
        super().__init__('%s %s' % (path, what))
        self.path = path


def _say_once(codec, container, path):
    with _warned_lock:
        first = (codec, container) not in _warned
        _warned.add((codec, container))
    if first:
        logger.warning('video loader: decord cannot be trusted to seek in %s videos in %s files (%s has '
                       'inter-frame coding); decoding them in order instead', codec or 'unknown-codec',
                       container or 'extension-less', path)


class VideoFile(object):
    """A video opened to read sampled frames, RGB uint8, resized to (new_height, new_width) when given."""

    def __init__(self, path, new_width=0, new_height=0):
        import decord
        self.path = path
        self.size = (new_width, new_height) if new_width > 0 and new_height > 0 else None
        try:
            if self.size:
                self.reader = decord.VideoReader(path, width=new_width, height=new_height, num_threads=1)
            else:
                self.reader = decord.VideoReader(path, num_threads=1)
        except Exception as err:  # decord raises its own DECORDError types
            raise BadSample(path, 'cannot be opened as a video (%s)' % str(err).splitlines()[0]) from None
        self.length = len(self.reader)
        self.keyframes = len(self.reader.get_key_indices())
        self.container = os.path.splitext(path)[1].lower()
        if self.keyframes >= self.length:
            self.mode = 'seek'
        elif self.container in TIMESTAMPED_CONTAINERS:
            self.mode, self.decoder = 'skip', None
        else:
            self.mode, self.capture, self.position = 'order', None, 0
        self.codec = None

    def __len__(self):
        return self.length

    def close(self):
        """Free the decoders now: a PyAV container left to the garbage collector keeps its buffers
        for a while, and a loader opening a video per clip grew by about 25 MiB per 100 clips."""
        decoder, capture = getattr(self, 'decoder', None), getattr(self, 'capture', None)
        self.decoder = self.capture = self.reader = None
        if decoder is not None:
            decoder.container.close()
        if capture is not None:
            capture.release()

    __del__ = close

    def frames(self, numbers):
        """RGB frames of the 1-based ``numbers`` (any order, repeats allowed)."""
        wanted = sorted(set(numbers))
        if wanted[0] < 1 or wanted[-1] > self.length:
            raise BadSample(self.path, 'has no frame %d (it has %d)'
                            % (wanted[0] if wanted[0] < 1 else wanted[-1], self.length))
        if self.mode == 'seek':
            decoded = list(self.reader.get_batch([n - 1 for n in wanted]).asnumpy())
        elif self.mode == 'skip':
            decoded = self._skipping(wanted)
        else:
            decoded = self._in_order(wanted)
        found = dict(zip(wanted, decoded))
        return [found[n] for n in numbers]

    def _rgb(self, bgr):
        if self.size and bgr.shape[:2] != self.size[::-1]:
            bgr = cv2.resize(bgr, self.size)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    # ------------------------------------------------------------ OpenCV, in order

    def _open_capture(self):
        self.capture = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        self.position = 0
        if not self.capture.isOpened():
            raise BadSample(self.path, 'cannot be opened by OpenCV\'s FFmpeg decoder')
        if self.codec is None:
            self.codec = int(self.capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, 'little').decode('latin-1')
            if self.keyframes > 1:    # with one keyframe, seeking would not skip anything anyway
                _say_once(self.codec.strip('\0 '), self.container, self.path)

    def _in_order(self, wanted):
        if self.capture is None or self.position > wanted[0]:
            self._open_capture()    # backwards: start again (a repeat of the last frame needs no decoding)
        out = []
        for n in wanted:
            while self.position < n:
                if not self.capture.grab():
                    raise BadSample(self.path, 'frame %d cannot be decoded (the video ends or is broken after '
                                               'frame %d)' % (n, self.position))
                self.position += 1
            ok, bgr = self.capture.retrieve()
            if not ok:
                raise BadSample(self.path, 'frame %d cannot be decoded' % n)
            out.append(self._rgb(bgr))
        return out

    # ------------------------------------------------------------ PyAV, skipping what no one needs

    def _skipping(self, wanted):
        if self.decoder is None:
            self.decoder = TimestampDecoder(self.path)
        return [self._rgb(bgr) for bgr in self.decoder.frames([n - 1 for n in wanted])]


class TimestampDecoder(object):
    """Frames of a video with presentation timestamps, by 0-based display index, decoding in order.

    Packets that hold neither a wanted frame nor a reference frame are not decoded. A request that
    starts behind the current position, or past the next keyframe, seeks (backwards) to the
    keyframe before it; frames are told apart by their timestamps only.
    """

    def __init__(self, path):
        try:
            import av
        except ImportError:
            # Not the clip's fault: a UserError, so that --skip-bad-samples does not hide a missing package.
            raise UserError('%s needs PyAV to be decoded (inter-frame video in a timestamped container): '
                            'pip install -r requirements.txt' % path) from None
        self.path = path
        self.container = av.open(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = 'SLICE'
        self.stream.codec_context.thread_count = 1
        packets = [(p.pts, p.is_keyframe) for p in self.container.demux(self.stream) if p.pts is not None]
        self.pts = sorted(pts for pts, _ in packets)
        self.index = {pts: i for i, pts in enumerate(self.pts)}
        self.key_pts = sorted(pts for pts, key in packets if key)
        self.packets, self.position = None, None

    def _restart_at(self, pts):
        """Go to the keyframe at or before ``pts``."""
        key = max([k for k in self.key_pts if k <= pts] or [self.pts[0]])
        self.container.seek(key, backward=True, any_frame=False, stream=self.stream)
        self.stream.codec_context.flush_buffers()
        self.packets, self.position = self.container.demux(self.stream), -1

    def frames(self, indices):
        """BGR frames of the sorted unique 0-based ``indices``."""
        targets = {self.pts[i]: i for i in indices}
        first = self.pts[indices[0]]
        passes_key = any(self.position is not None and self.position < self.index.get(k, 0) <= indices[0]
                         for k in self.key_pts)
        if self.packets is None or self.position is None or self.position >= indices[0] or passes_key:
            self._restart_at(first)
        found = self._decode_until(targets, indices[-1])
        if len(found) < len(targets):
            # A seek landed after the first wanted frame: decode from the very start.
            self._restart_at(self.pts[0])
            found = self._decode_until(targets, indices[-1])
        missing = sorted(set(targets.values()) - set(found))
        if missing:
            raise BadSample(self.path, 'frame %d cannot be decoded' % (missing[0] + 1))
        return [found[i] for i in indices]

    def _decode_until(self, targets, last):
        ctx, found = self.stream.codec_context, {}
        for packet in self.packets:
            # The last packet demux yields is empty: it makes the decoder give up the frames it holds.
            ctx.skip_frame = 'DEFAULT' if packet.pts in targets or packet.pts is None else 'NONREF'
            for frame in ctx.decode(packet):
                self._take(frame, targets, found)
            if len(found) == len(targets) or self.position >= last:
                break
        return found

    def _take(self, frame, targets, found):
        index = self.index.get(frame.pts)
        if index is None:
            return
        self.position = max(self.position, index)
        if frame.pts in targets:
            found[targets[frame.pts]] = frame.to_ndarray(format='bgr24')
