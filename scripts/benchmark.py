"""Benchmark the data pipeline and the training loop against GluonCV and the compute bound.

Generates UCF101-shaped data (340x256 JPEG frames), then measures, each stage in a fresh
child process so that memory figures are its own:

(a) data pipeline: clips/s and frames/s per worker of our loader (train transform,
    through to normalised float32 network input on the device) and of gluoncv.data.UCF101 with
    GluonCV's VideoGroupTrainTransform and a gluon DataLoader with the same settings. Our
    workers are threads of the main process (GluonCV's are processes): "per worker" is per loader
    thread there, and its CPU-seconds are the whole process's, main thread included;
(a2) (a) for training from videos (--video-loader --use-decord against GluonCV's
    UCF101(video_loader=True, use_decord=True)), on generated 320x240 25 fps 7 s videos in each of
    --video-codecs: H.264 and MPEG-4 part 2 (XviD, UCF101's own) with B-frames, and MJPG. The
    peak RSS at the start and the end of each timed loop shows whether memory grows;
(b) training loop: samples/s of train_recognizer.py's own epochs (run as a program, its
    metrics.csv) against the compute bound (recognizer.training.train_step on a batch already in
    memory), measured before and after it;
(c) peak memory of each: RSS of the main process and PSS summed over it and its loader workers.

Every figure is the best of ``--rounds`` (the least disturbed run). The last lines are
``loader_speedup: X``, ``video_loader_speedup: V`` (the lowest over the codecs) and
``loop_efficiency: Y``.

    python scripts/benchmark.py                # full run, a few minutes on 2 cores
    python scripts/benchmark.py --quick        # smoke run, about two minutes on 2 cores
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from recognizer.errors import UserError, run_cli  # noqa: E402
from recognizer.runtime import amp_problem, cpu_flags  # noqa: E402

FRAME_W, FRAME_H = 340, 256
SCALE_RATIOS = [1.0, 0.875, 0.75, 0.66]
NUM_SEGMENTS = 3
DISTINCT_FRAMES = 48
LIST_LINES = 6000
# UCF101's videos: 320x240 at 25 fps, 7 s on average.
VIDEO_W, VIDEO_H, VIDEO_FRAMES = 320, 240, 175
VIDEO_CODECS = ('h264', 'mpeg4', 'mjpg')    # keys of recognizer.videocodecs.CODECS


# =============================================================== arguments

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--input-size', type=int, default=224, help='crop side for the data-pipeline comparison (a).')
    p.add_argument('--loop-input-size', type=int, default=112, help='network input side for the training loop (b).')
    p.add_argument('--batch-size', type=int, default=4, help='clips per batch, for (a) and (b).')
    p.add_argument('--workers', type=int, default=2,
                   help='loader workers: threads for ours, processes for GluonCV (0: load in the main thread).')
    p.add_argument('--loader-seconds', type=float, default=8.0, help='timed seconds per loader run.')
    p.add_argument('--loop-iters', type=int, default=10, help='timed iterations per loop round.')
    p.add_argument('--rounds', type=int, default=3, help='repetitions of every measurement; the best counts.')
    p.add_argument('--mode', type=str, default='hybrid', help='network mode, as train_recognizer.py --mode.')
    p.add_argument('--quick', action='store_true',
                   help='short run (about two minutes on 2 idle cores): 1 round, 1.5 s loader runs, 2 loop '
                        'iterations, 6 videos per codec.')
    p.add_argument('--work-dir', type=str, default=None, help='where to write the data (default: a temp dir).')
    p.add_argument('--keep', action='store_true', help='keep the generated data (a named --work-dir is always kept).')
    p.add_argument('--cpu-step', action='store_true',
                   help='instead: time one TSN train step at --input-size under each CPU setting (fp32 imperative, '
                        'fp32 hybrid, bf16 AMP hybrid when the CPU has avx512_bf16) and print where the time goes.')
    p.add_argument('--checkpoint-cost', action='store_true',
                   help='instead: the time an epoch\'s checkpoints take off training, at --input-size, written '
                        'synchronously (resume point + best + last, each .params + .states, fsynced) against '
                        'the snapshot the background writer needs (and how long the writer then works).')
    p.add_argument('--step-clips', type=int, default=2, help='clips per step for --cpu-step.')
    p.add_argument('--step-iters', type=int, default=3, help='timed steps per setting for --cpu-step.')
    p.add_argument('--video-codecs', type=str, default='h264,mpeg4,mjpg',
                   help='codecs of the video loader comparison (a2), comma-separated, from: %s; '
                        'empty: no video comparison.' % ', '.join(VIDEO_CODECS))
    p.add_argument('--videos', type=int, default=None,
                   help='distinct videos per codec for (a2) (default 24, 6 with --quick).')
    p.add_argument('--stage', type=str, default=None, help=argparse.SUPPRESS)  # child-process entry
    p.add_argument('--video-codec', type=str, default=None, help=argparse.SUPPRESS)
    p.add_argument('--data-dir', type=str, default=None, help=argparse.SUPPRESS)
    opt = p.parse_args(argv)
    if opt.quick:
        opt.rounds, opt.loader_seconds, opt.loop_iters = 1, 1.5, 2
    if opt.videos is None:
        opt.videos = 6 if opt.quick else 24
    opt.video_codecs = [c.strip() for c in opt.video_codecs.split(',') if c.strip()]
    unknown = [c for c in opt.video_codecs if c not in VIDEO_CODECS]
    if unknown:
        raise UserError('--video-codecs: unknown codec(s) %s; choose from %s'
                        % (', '.join(unknown), ', '.join(VIDEO_CODECS)))
    for flag, value, low in (('--input-size', opt.input_size, 16), ('--loop-input-size', opt.loop_input_size, 32),
                             ('--batch-size', opt.batch_size, 1), ('--workers', opt.workers, 0),
                             ('--rounds', opt.rounds, 1), ('--loop-iters', opt.loop_iters, 1),
                             ('--videos', opt.videos, 1)):
        if value < low:
            raise UserError('%s must be at least %d, got %d' % (flag, low, value))
    if max(opt.input_size, opt.loop_input_size) > FRAME_H:
        raise UserError('input sizes must fit the %dx%d frames; lower --input-size/--loop-input-size'
                        % (FRAME_W, FRAME_H))
    return opt


# =============================================================== data

def textured_frame(rng, width=FRAME_W, height=FRAME_H, noise=5):
    """A BGR frame with smooth colour regions, edges and sensor-like noise.

    Compresses like real video frames (about 20 KB at 340x256 and JPEG quality 90); flat or
    pure-noise images would make JPEG decoding unrealistically fast or slow.
    """
    import cv2
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.circle(img, centre, int(rng.integers(10, 60)), colour, -1)
    return np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)


def write_dataset(root, num_clips, num_frames=30, seed=0):
    """Clip folders of 340x256 JPEG frames and a GluonCV list file; returns the list path.

    Frames are drawn from a pool of DISTINCT_FRAMES encoded images (writing is then fast);
    every clip folder holds its own files, as in a real dataset.
    """
    import cv2
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(DISTINCT_FRAMES):
        ok, buf = cv2.imencode('.jpg', textured_frame(rng), [cv2.IMWRITE_JPEG_QUALITY, 90])
        pool.append(buf.tobytes())
    lines = []
    for c in range(num_clips):
        folder = os.path.join(root, 'Class%02d' % (c % 10), 'v_clip_%04d' % c)
        os.makedirs(folder, exist_ok=True)
        for f in range(num_frames):
            with open(os.path.join(folder, 'img_%05d.jpg' % (f + 1)), 'wb') as out:
                out.write(pool[(c * 7 + f) % DISTINCT_FRAMES])
        lines.append('Class%02d/v_clip_%04d %d %d\n' % (c % 10, c, num_frames, c % 10))
    return write_list(root, lines), float(np.mean([len(b) for b in pool]))


def write_list(root, lines):
    """``root``/train_list.txt holding ``lines`` many times over, so that no loader runs out of
    batches within its timed seconds."""
    list_path = os.path.join(root, 'train_list.txt')
    with open(list_path, 'w') as f:
        f.writelines(lines * -(-LIST_LINES // len(lines)))
    return list_path


def video_frames(rng, noise_planes):
    """VIDEO_FRAMES BGR frames of VIDEO_WxVIDEO_H: a camera pan over a textured scene, objects
    crossing it and sensor noise that changes every frame, so that inter-frame coding has to
    work as on real footage (a still or noiseless scene would decode unrealistically fast)."""
    import cv2
    scene = textured_frame(rng, VIDEO_W * 3 // 2, VIDEO_H * 3 // 2, noise=0)
    pan = rng.uniform(-0.9, 0.9, 2) * [VIDEO_W / 4, VIDEO_H / 4] / VIDEO_FRAMES
    objects = [(rng.uniform(0, VIDEO_W, 2), rng.uniform(-3, 3, 2), int(rng.integers(8, 30)),
                tuple(int(c) for c in rng.integers(0, 256, 3))) for _ in range(4)]
    frames = []
    for t in range(VIDEO_FRAMES):
        x, y = (np.array([VIDEO_W / 4, VIDEO_H / 4]) + pan * t).astype(int)
        img = scene[y:y + VIDEO_H, x:x + VIDEO_W].copy()
        for start, speed, radius, colour in objects:
            cx, cy = (start + speed * t) % [VIDEO_W, VIDEO_H]
            cv2.circle(img, (int(cx), int(cy)), radius, colour, -1)
        noisy = img.astype(np.int16) + noise_planes[t % len(noise_planes)]
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


def write_videos(root, codecs, num_videos, seed=0):
    """``num_videos`` distinct VIDEO_WxVIDEO_H videos of VIDEO_FRAMES frames in every codec, each in
    ``root``/videos_<codec>/ with its GluonCV list file; returns {codec: (folder, mean KB per video)}."""
    from recognizer import videocodecs
    rng = np.random.default_rng(seed)
    noise_planes = [rng.normal(0, 3, (VIDEO_H, VIDEO_W, 3)).astype(np.int16) for _ in range(7)]
    sizes = {codec: [] for codec in codecs}
    lines = []
    for v in range(num_videos):
        frames = video_frames(rng, noise_planes)
        for codec in codecs:
            name = 'Class%02d/v_clip_%04d%s' % (v % 10, v, videocodecs.extension(codec))
            path = videocodecs.write_video(os.path.join(root, 'videos_' + codec, name), frames, codec)
            sizes[codec].append(os.path.getsize(path))
        lines.append('Class%02d/v_clip_%04d%%s %d %d\n' % (v % 10, v, VIDEO_FRAMES, v % 10))
    found = {}
    for codec in codecs:
        folder = os.path.join(root, 'videos_' + codec)
        write_list(folder, [line % videocodecs.extension(codec) for line in lines])
        found[codec] = (folder, np.mean(sizes[codec]) / 1024)
    return found


# =============================================================== memory

def _pss_kib(pid):
    """Proportional set size (shared pages split between sharers), falling back to RSS."""
    for name, key in (('smaps_rollup', 'Pss:'), ('status', 'VmRSS:')):
        try:
            with open('/proc/%d/%s' % (pid, name)) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def _children(pid):
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


class MemoryPeak(object):
    """Samples PSS of a process (default: this one) plus its children (loader workers) every 0.2 s."""

    def __init__(self, pid=None):
        self.pid = pid or os.getpid()
        self.peak_kib = 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def sample(self):
        total = _pss_kib(self.pid) + sum(_pss_kib(c) for c in _children(self.pid))
        self.peak_kib = max(self.peak_kib, total)
        return total

    def loop(self):
        while self.running:
            self.sample()
            time.sleep(0.2)

    def stop(self):
        self.running = False
        self.sample()
        return self.peak_kib / 1024.0


def loader_cpu_seconds(workers, threads=False):
    """CPU seconds used so far by the loader: its worker processes, or this whole process when it
    loads in its own threads (the main thread's share is counted too: it cannot be told apart)."""
    if workers == 0 or threads:
        return time.process_time()
    total = 0
    for pid in _children(os.getpid()):
        try:
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])    # utime + stime, in clock ticks
    return total / float(os.sysconf('SC_CLK_TCK'))


def main_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# =============================================================== (a) data pipeline

def trainer_args(opt, data_dir, list_path, size, extra=()):
    """train_recognizer.py's flags for the published vgg16 TSN recipe on the benchmark data."""
    return ['--model', 'vgg16_ucf101', '--num-segments', str(NUM_SEGMENTS), '--use-tsn', '--num-classes', '10',
            '--new-height', str(FRAME_H), '--new-width', str(FRAME_W), '--input-size', str(size),
            '--batch-size', str(opt.batch_size), '-j', str(opt.workers), '--data-dir', data_dir,
            '--train-list', list_path, '--val-list', list_path, '--no-pretrained-base', '--train-only',
            '--lr', '0.001', '--log-interval', '10', '--mode', opt.mode] + list(extra)


def trainer_opt(opt, data_dir, list_path, size, extra=()):
    """The parsed options train_recognizer.py would run with (its parser lives in recognizer.options)."""
    from recognizer import options
    return options.training_parser().parse_args(trainer_args(opt, data_dir, list_path, size, extra))


def our_loader(opt, data_dir, list_path, video=False):
    """The trainer's train loader (``video``: with --video-loader --use-decord); a batch is done when
    its uint8 clips are NDArrays on the device (normalising there is part of the network step, and so
    of the compute bound in (b))."""
    import mxnet as mx
    from recognizer import data
    from recognizer.training import load_batch
    t = trainer_opt(opt, data_dir, list_path, opt.input_size, ['--video-loader', '--use-decord'] if video else [])
    clips = data.read_clip_list(list_path, data_dir, t.num_classes, video=video)
    train_set, _ = data.training_datasets(t, clips, [])
    sampler = data.EpochBatchSampler(len(train_set), opt.batch_size, shuffle=True, last_batch='discard')
    loader = data.make_loader(train_set, sampler, t.num_workers, t.prefetch_ratio)

    def finish(batch):
        parts, labels, _ = load_batch(batch, [mx.cpu()])
        parts[0].wait_to_read()
        return parts[0].shape
    return loader, finish


def gluoncv_loader(opt, data_dir, list_path, video=False):
    """GluonCV's train_recognizer.py data path: UCF101 + VideoGroupTrainTransform + DataLoader
    (``video``: UCF101(video_loader=True, use_decord=True), its --video-loader --use-decord)."""
    from gluoncv.data import UCF101
    from gluoncv.data.transforms.video import VideoGroupTrainTransform
    import mxnet as mx
    from mxnet import gluon
    size = opt.input_size
    transform = VideoGroupTrainTransform(size=(size, size), scale_ratios=SCALE_RATIOS,
                                         mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    dataset = UCF101(root=data_dir, setting=list_path, train=True, num_segments=NUM_SEGMENTS,
                     new_width=FRAME_W, new_height=FRAME_H, target_width=size, target_height=size,
                     transform=transform, video_loader=video, use_decord=video)
    prefetch = 2 * opt.workers if opt.workers else None
    loader = gluon.data.DataLoader(dataset, batch_size=opt.batch_size, shuffle=True, num_workers=opt.workers,
                                   prefetch=prefetch, last_batch='discard')

    def finish(batch):
        # GluonCV's train_recognizer.py: split_and_load(batch[0], ctx_list=context, batch_axis=0)
        parts = gluon.utils.split_and_load(batch[0], ctx_list=[mx.cpu()], batch_axis=0)
        parts[0].wait_to_read()
        return parts[0].shape
    return loader, finish


def loader_stage(opt, which):
    """Batches/s of one loader in steady state (workers started, prefetch queue drained)."""
    root = os.path.join(opt.data_dir, 'videos_' + opt.video_codec) if opt.video_codec else opt.data_dir
    memory = MemoryPeak()
    make = our_loader if which == 'ours' else gluoncv_loader
    loader, finish = make(opt, root, os.path.join(root, 'train_list.txt'), video=bool(opt.video_codec))
    batches = iter(loader)
    shape, tic = finish(next(batches)), time.time()
    # Warm-up: drain the batches prefetched while the workers started, or short runs over-report.
    while time.time() - tic < min(2.0, opt.loader_seconds / 2):
        finish(next(batches))
    # Peak RSS when the loop starts and when it ends: a loader that keeps decoded frames or
    # readers alive grows between the two over the many passes through the videos.
    rss_start = main_rss_mib()
    threads = bool(getattr(loader, '_thread_pool', False)) and opt.workers > 0
    count, tic, cpu = 0, time.time(), loader_cpu_seconds(opt.workers, threads)
    for batch in batches:
        finish(batch)
        count += 1
        if time.time() - tic >= opt.loader_seconds:
            break
    seconds = time.time() - tic
    cpu = loader_cpu_seconds(opt.workers, threads) - cpu
    clips_per_s = count * opt.batch_size / seconds
    workers = max(opt.workers, 1)
    return {'clips_per_s': clips_per_s, 'frames_per_s': clips_per_s * NUM_SEGMENTS,
            'clips_per_s_worker': clips_per_s / workers, 'frames_per_s_worker': clips_per_s * NUM_SEGMENTS / workers,
            'frames_per_worker_cpu_s': count * opt.batch_size * NUM_SEGMENTS / max(cpu, 1e-3),
            'batches': count, 'output_shape': list(shape), 'peak_pss_mib': memory.stop(),
            'main_rss_mib': main_rss_mib(), 'rss_start_mib': rss_start, 'seconds': seconds,
            'workers_are': 'threads' if threads else 'processes'}


# =============================================================== (b) training loop

def build_step(t):
    """Network and Trainer as train_recognizer.py builds them for the options ``t``."""
    import mxnet as mx
    from recognizer.models import build_network
    from recognizer.training import build_trainer
    net = build_network(t.model, t.num_classes, [mx.cpu()], num_segments=t.num_segments, pretrained_base=False,
                        use_tsn=t.use_tsn)
    if t.mode == 'hybrid':
        net.hybridize(static_alloc=True, static_shape=True)
    return net, build_trainer(t, net, None)


def compute_bound(t, net, trainer, batch, iters):
    """Samples/s of forward, backward and update on one batch that is already on the device."""
    import mxnet as mx
    from mxnet import nd
    from recognizer import transforms
    from recognizer.training import Objective, load_batch, train_step
    ctx = [mx.cpu()]
    loss_fn = Objective(t.num_classes)
    data_parts, label_parts, _ = load_batch(batch, ctx)
    loss_sum = nd.zeros((1,), ctx=ctx[0])
    nd.waitall()
    tic = time.time()
    for _ in range(iters):
        stats = train_step(net, trainer, loss_fn, data_parts, label_parts,
                           lambda x: transforms.network_input(x, t.new_length, t.input_5d, t.dtype), t.batch_size)
        loss_sum = loss_sum + sum(s[0] for s in stats)
    loss_sum.asscalar()
    return iters * t.batch_size / (time.time() - tic)


def end_to_end(opt, list_path, epochs):
    """Samples/s of each epoch of train_recognizer.py itself (a child process), epoch 0 being the warm-up.

    The trainer's own figure: clips over the seconds of its train loop (loader start-up, every batch,
    the final sync), checkpoints excluded. Memory: PSS of the trainer and its loader workers.
    """
    import csv
    save_dir = tempfile.mkdtemp(prefix='loop-', dir=opt.data_dir)
    argv = [sys.executable, os.path.join(REPO, 'train_recognizer.py')] + trainer_args(
        opt, opt.data_dir, list_path, opt.loop_input_size, ['--num-epochs', str(epochs), '--save-dir', save_dir])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    memory = MemoryPeak(proc.pid)
    out, err = proc.communicate()
    peak = memory.stop()
    if proc.returncode != 0:
        raise UserError('train_recognizer.py failed in the loop benchmark (exit %d):\n%s'
                        % (proc.returncode, err[-3000:]))
    with open(os.path.join(save_dir, 'metrics.csv')) as f:
        speeds = [float(row['samples_per_sec']) for row in csv.DictReader(f)]
    shutil.rmtree(save_dir, ignore_errors=True)
    return speeds[1:], peak


def loop_stage(opt):
    """Compute bound (in this process) and end-to-end speed (the trainer as a program) on the same clips."""
    from recognizer import data
    list_path = os.path.join(opt.data_dir, 'train_list.txt')
    loop_list = os.path.join(opt.data_dir, 'loop_list.txt')
    with open(list_path) as f:
        lines = f.readlines()[:opt.batch_size * opt.loop_iters]
    with open(loop_list, 'w') as f:
        f.writelines(lines)
    memory = MemoryPeak()
    t = trainer_opt(opt, opt.data_dir, loop_list, opt.loop_input_size)
    train_set, _ = data.training_datasets(t, data.read_clip_list(loop_list, opt.data_dir, t.num_classes), [])
    net, trainer = build_step(t)
    batch = data.batchify([train_set[(i, 0)] for i in range(opt.batch_size)])
    compute_bound(t, net, trainer, batch, 2)    # warm-up: shapes, memory, oneDNN primitives
    bounds = [compute_bound(t, net, trainer, batch, opt.loop_iters)]
    bound_pss = memory.stop()
    speeds, e2e_pss = end_to_end(opt, loop_list, opt.rounds + 1)
    bounds.append(compute_bound(t, net, trainer, batch, opt.loop_iters))
    return {'bound': bounds, 'end_to_end': speeds, 'bound_pss_mib': bound_pss,
            'e2e_pss_mib': e2e_pss, 'main_rss_mib': main_rss_mib(), 'input_size': t.input_size,
            'iters': len(lines) // opt.batch_size}


# =============================================================== CPU step settings

def top_operators(profile_text, count=8):
    """The ``count`` operators with the most total time, from MXNet's aggregate profile table."""
    rows, in_ops = [], False
    for line in profile_text.splitlines():
        if line.strip() == 'operator':
            in_ops = True
        elif in_ops and line.strip() and not line.startswith(('=', 'Name', '-')):
            fields = line.split()
            if len(fields) < 6:
                break
            rows.append((float(fields[-4]), fields[0]))
        elif in_ops and rows and not line.strip():
            break
    total = sum(t for t, _ in rows) or 1.0
    # Hybridized graphs report fused segments named after all their operators: keep the first two.
    short = [(t, name if ',' not in name else '[%s...]' % ','.join(name.split(',')[:2])) for t, name in rows]
    return ['%s %.0f%%' % (name, 100 * t / total) for t, name in sorted(short, reverse=True)[:count]]


def step_stage(opt, variant):
    """Clips/s of train_step at --input-size with one setting; profiles one extra step."""
    import mxnet as mx
    if variant == 'bf16':
        from mxnet.contrib import amp
        amp.init(target_dtype='bfloat16')
    mode = 'imperative' if variant == 'imperative' else 'hybrid'
    t = trainer_opt(opt, opt.data_dir, os.path.join(opt.data_dir, 'train_list.txt'), opt.input_size,
                    ['--mode', mode, '--batch-size', str(opt.step_clips)])
    net, trainer = build_step(t)
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (opt.step_clips, NUM_SEGMENTS, opt.input_size, opt.input_size, 3), dtype=np.uint8)
    batch = (clips, np.arange(opt.step_clips, dtype=np.int32) % t.num_classes, 0)
    compute_bound(t, net, trainer, batch, 1)
    cpu = time.process_time()
    speed = compute_bound(t, net, trainer, batch, opt.step_iters)
    cpu_per_clip = (time.process_time() - cpu) / (opt.step_iters * opt.step_clips)
    mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                           filename=os.path.join(opt.data_dir, 'profile-%s.json' % variant))
    mx.profiler.set_state('run')
    compute_bound(t, net, trainer, batch, 1)
    mx.profiler.set_state('stop')
    return {'clips_per_s': speed, 'cpu_s_per_clip': cpu_per_clip, 'main_rss_mib': main_rss_mib(),
            'top': top_operators(mx.profiler.dumps(reset=True))}


def checkpoint_cost_main(opt):
    """Seconds an epoch's checkpoints cost the training thread: synchronous writes vs a snapshot."""
    import mxnet as mx
    from recognizer import checkpoint
    t = trainer_opt(opt, opt.data_dir, os.path.join(opt.data_dir, 'train_list.txt'), opt.input_size)
    net, trainer = build_step(t)
    batch = (np.zeros((1, NUM_SEGMENTS, opt.input_size, opt.input_size, 3), np.uint8), np.zeros(1, np.int32), 0)
    compute_bound(t, net, trainer, batch, 1)    # weights and momentum exist
    mx.nd.waitall()
    folder = tempfile.mkdtemp(prefix='ckpt-', dir=opt.work_dir or None)
    prefixes = [os.path.join(folder, name) for name in ('resume', 'best', 'last')]
    tic = time.time()
    for prefix in prefixes:
        checkpoint.save_params_and_states(prefix, net, trainer)
    synchronous = time.time() - tic
    size = sum(os.path.getsize(p + ext) for p in prefixes for ext in ('.params', '.states'))
    tic = time.time()
    snapshot = checkpoint.Snapshot(net, trainer)
    on_training_path = time.time() - tic
    tic = time.time()
    checkpoint.write_checkpoints(snapshot, [p + '-2' for p in prefixes], folder)
    writer = time.time() - tic
    shutil.rmtree(folder, ignore_errors=True)
    print('vgg16_ucf101 TSN at %d px: one checkpoint is %.0f MB (.params + .states)' % (opt.input_size, size / 3e6))
    print('  before: resume point + best + last written and fsynced in the training thread: %.2f s (%.0f MB)'
          % (synchronous, size / 1e6))
    print('  now:    snapshot to host memory in the training thread: %.2f s; the writer thread then writes '
          'once and hard-links twice: %.2f s' % (on_training_path, writer))
    print('checkpoint_seconds_on_training_path: %.2f -> %.2f' % (synchronous, on_training_path))
    return 0


def cpu_step_main(opt):
    bf16 = amp_problem('bfloat16', 0, cpu_flags())
    variants = ['imperative', 'hybrid'] + ([] if bf16 else ['bf16'])
    print('vgg16_ucf101 TSN train step on the CPU: %d clips x %d segments at %d px, %d timed steps each; '
          'OMP_NUM_THREADS=%s' % (opt.step_clips, NUM_SEGMENTS, opt.input_size, opt.step_iters,
                                  os.environ.get('OMP_NUM_THREADS', 'unset')))
    results = {}
    for variant in variants:
        results[variant] = r = run_child(opt, 'step-' + variant)
        print('  %-10s %.3f clips/s  %.2f CPU-s/clip  peak RSS %.0f MiB  time: %s'
              % (variant, r['clips_per_s'], r['cpu_s_per_clip'], r['main_rss_mib'], ', '.join(r['top'])))
    if bf16:
        print('  bf16       not run: %s' % bf16)
    base = results['imperative']['clips_per_s']
    for variant in variants[1:]:
        print('%s_over_imperative: %.2f' % (variant, results[variant]['clips_per_s'] / base))
    return 0


# =============================================================== driver

def run_child(opt, stage, video_codec=None):
    """Run one stage in a fresh interpreter; returns its JSON result."""
    argv = [sys.executable, os.path.abspath(__file__), '--stage', stage, '--data-dir', opt.data_dir,
            '--video-codec', video_codec or '',
            '--input-size', str(opt.input_size), '--loop-input-size', str(opt.loop_input_size),
            '--batch-size', str(opt.batch_size), '--workers', str(opt.workers),
            '--loader-seconds', str(opt.loader_seconds), '--loop-iters', str(opt.loop_iters),
            '--rounds', str(opt.rounds), '--mode', opt.mode, '--step-clips', str(opt.step_clips),
            '--step-iters', str(opt.step_iters)]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    results = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    if proc.returncode != 0 or not results:
        raise UserError('benchmark stage %s failed (exit %d):\n%s' % (stage, proc.returncode, proc.stderr[-3000:]))
    return json.loads(results[-1][len('RESULT '):])


def child_main(opt):
    if opt.stage == 'loop':
        result = loop_stage(opt)
    elif opt.stage.startswith('step-'):
        result = step_stage(opt, opt.stage[len('step-'):])
    else:
        result = loader_stage(opt, opt.stage)
    print('RESULT ' + json.dumps(result), flush=True)
    return 0


def compare_loaders(opt, video_codec=None):
    """Results of ``--rounds`` runs of each loader, ours and GluonCV's alternating so that outside
    load affects both alike."""
    ours, gluon = [], []
    for _ in range(opt.rounds):
        ours.append(run_child(opt, 'ours', video_codec))
        gluon.append(run_child(opt, 'gluoncv', video_codec))
    return ours, gluon


def print_loaders(opt, ours_rounds, gluon_rounds, source, label='(a)'):
    """The table of one loader comparison (best rounds, with every round's figure); returns the
    speed-up in frames/s per worker."""
    ours, gluon = best(ours_rounds, 'frames_per_s_worker'), best(gluon_rounds, 'frames_per_s_worker')
    print('%s data pipeline: %s, %d segments, %d px train crop, batch %d, %d workers'
          % (label, source, NUM_SEGMENTS, opt.input_size, opt.batch_size, opt.workers))
    header = ('loader', 'clips/s', 'frames/s', 'clips/s/worker', 'frames/s/worker', 'frames/worker-CPU-s',
              'main RSS MiB', 'total PSS MiB')
    print('    %-10s %10s %12s %16s %17s %21s %13s %14s' % header)
    for name, r in (('ours', ours), ('gluoncv', gluon)):
        print('    %-10s %10.1f %12.1f %16.1f %17.1f %21.1f %13.0f %14.0f'
              % (name, r['clips_per_s'], r['frames_per_s'], r['clips_per_s_worker'], r['frames_per_s_worker'],
                 r['frames_per_worker_cpu_s'], r['main_rss_mib'], r['peak_pss_mib']))
    print('    frames/s/worker of every round: ours %s; gluoncv %s'
          % (' '.join('%.1f' % r['frames_per_s_worker'] for r in ours_rounds),
             ' '.join('%.1f' % r['frames_per_s_worker'] for r in gluon_rounds)))
    print('    peak RSS of the main process at the start -> end of the timed loop: ours %.0f -> %.0f MiB '
          '(%d clips in %.0f s), gluoncv %.0f -> %.0f MiB'
          % (ours['rss_start_mib'], ours['main_rss_mib'], ours['batches'] * opt.batch_size, ours['seconds'],
             gluon['rss_start_mib'], gluon['main_rss_mib']))
    print('    workers: ours %d %s, gluoncv %d %s; frames/worker-CPU-s of threads counts the whole process'
          % (opt.workers, ours['workers_are'], opt.workers, gluon['workers_are']))
    print('    on the device: ours %s uint8 (normalised by the network step), gluoncv %s float32'
          % (ours['output_shape'], gluon['output_shape']))
    return ours['frames_per_s_worker'] / gluon['frames_per_s_worker']


def video_comparisons(opt, work):
    """(a) again for training from videos, once per codec that can be written here; {codec: speed-up}."""
    from recognizer import videocodecs
    available = videocodecs.available_codecs()
    for codec in opt.video_codecs:
        if available[codec]:
            print('video codec %s left out: %s' % (codec, available[codec]))
    codecs = [c for c in opt.video_codecs if not available[c]]
    if not codecs:
        return {}
    tic = time.time()
    written = write_videos(work, codecs, opt.videos)
    print('videos: %d per codec, %dx%d, %d fps, %d frames (%.1f s), in %.1f s'
          % (opt.videos, VIDEO_W, VIDEO_H, videocodecs.FPS, VIDEO_FRAMES, VIDEO_FRAMES / videocodecs.FPS,
             time.time() - tic))
    speedups = {}
    for codec in codecs:
        folder, kib = written[codec]
        types, keys = videocodecs.frame_types(os.path.join(folder, 'Class00', 'v_clip_0000' +
                                                           videocodecs.extension(codec)))
        print('  %s: %.0f KB per video; first video: %d keyframe(s) in %d frames, %d B-frames'
              % (videocodecs.describe(codec), kib, sum(keys), len(types), types.count('B')))
    for codec in codecs:
        ours, gluon = compare_loaders(opt, codec)
        source = '%s videos %dx%d decoded to %dx%d' % (codec, VIDEO_W, VIDEO_H, FRAME_W, FRAME_H)
        speedups[codec] = print_loaders(opt, ours, gluon, source, '(a2)')
    return speedups


def print_loop(opt, loop):
    bound, e2e = max(loop['bound']), max(loop['end_to_end'])
    print('(b) training loop: vgg16_ucf101 TSN, %d px input, batch %d, %d workers, mode %s, %d iterations/epoch'
          % (loop['input_size'], opt.batch_size, opt.workers, opt.mode, loop['iters']))
    print('    compute bound (train_step on a batch in memory): %.3f samples/s  rounds %s'
          % (bound, ' '.join('%.3f' % v for v in loop['bound'])))
    print('    end to end (train_recognizer.py, per epoch):        %.3f samples/s  rounds %s'
          % (e2e, ' '.join('%.3f' % v for v in loop['end_to_end'])))
    print('(c) peak memory: compute bound %.0f MiB PSS; end to end %.0f MiB PSS (main + workers), main RSS %.0f MiB'
          % (loop['bound_pss_mib'], loop['e2e_pss_mib'], loop['main_rss_mib']))
    return e2e / bound


def best(results, key):
    return max(results, key=lambda r: r[key])


def driver_main(opt):
    work = opt.work_dir or tempfile.mkdtemp(prefix='tsn-benchmark-')
    remove = not opt.keep and not opt.work_dir   # never delete a folder the user named
    try:
        tic = time.time()
        loader_clips = 64 if opt.quick else 256
        list_path, jpeg_bytes = write_dataset(work, 4 if opt.cpu_step or opt.checkpoint_cost else loader_clips)
        opt.data_dir = work
        if opt.cpu_step:
            return cpu_step_main(opt)
        if opt.checkpoint_cost:
            return checkpoint_cost_main(opt)
        print('data: %d clips of 30 frames %dx%d, mean JPEG %.1f KB, in %s (%.1f s)'
              % (loader_clips, FRAME_W, FRAME_H, jpeg_bytes / 1024, work, time.time() - tic))
        ours, gluon = compare_loaders(opt)
        speedup = print_loaders(opt, ours, gluon, '%dx%d JPEG frames' % (FRAME_W, FRAME_H))
        video_speedups = video_comparisons(opt, work)
        efficiency = print_loop(opt, run_child(opt, 'loop'))
        print('total benchmark time %.0f s' % (time.time() - tic))
        print('loader_speedup: %.2f' % speedup)
        if video_speedups:
            print('video_loader_speedup per codec: %s'
                  % ', '.join('%s %.2f' % item for item in video_speedups.items()))
            print('video_loader_speedup: %.2f' % min(video_speedups.values()))
        print('loop_efficiency: %.3f' % efficiency)
    finally:
        if remove:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv=None):
    opt = parse_args(argv)
    return child_main(opt) if opt.stage else driver_main(opt)


if __name__ == '__main__':
    sys.exit(run_cli(main))
