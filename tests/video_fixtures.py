"""Tiny real videos for the data-preparation tests: a few 64x48 frames in each container the
scripts accept, plus the broken kinds real datasets hold (empty, garbage, truncated, lying header)."""
import os
import struct

import cv2
import numpy as np

from recognizer.synthetic import render_clip

WIDTH, HEIGHT = 64, 48
# The codec OpenCV's FFmpeg writes in each container here.
FOURCC = {'.avi': 'MJPG', '.mkv': 'MJPG', '.mp4': 'mp4v', '.mov': 'mp4v', '.webm': 'VP80'}


def write_video(path, num_frames=5, seed=0, class_index=0):
    """Write a ``num_frames`` video whose codec follows the extension; return ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ext = os.path.splitext(path)[1].lower()
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC[ext]), 25, (WIDTH, HEIGHT))
    assert writer.isOpened(), path
    for img in render_clip(class_index % 8, np.random.default_rng(seed), num_frames, WIDTH, HEIGHT):
        writer.write(img)
    writer.release()
    return path


def write_garbage(path, size=2000):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(b'not a video at all ' * (size // 19))
    return path


def write_empty(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'wb').close()
    return path


def truncate(path, fraction):
    """Cut a video file short, as an interrupted download does: the header still promises all frames."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])
    return path


def set_avi_frame_count(path, claimed):
    """Make an AVI's headers (avih total frames, strh length) claim ``claimed`` frames."""
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    for tag, offset in ((b'avih', 16), (b'strh', 32)):
        struct.pack_into('<I', data, data.index(tag) + 8 + offset, claimed)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def decoded_frames(path):
    """Frames OpenCV decodes from ``path`` (the truth the scripts' counts are checked against)."""
    cap = cv2.VideoCapture(path)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def read_rows(path):
    """List lines as (path, frames, label), split the way recognizer.data reads them."""
    with open(path, encoding='utf-8') as f:
        rows = [line.rstrip('\n').rsplit(' ', 2) for line in f]
    return [(p, int(n), int(label)) for p, n, label in rows]
