"""Checkpoints, metrics.csv and the training-curve plot, all written atomically.

A resumable checkpoint is three files, ``resume/epoch-EEE-iter-IIIII.{params,states,json}``;
the JSON is written last, so a checkpoint counts as complete only when its JSON exists
and names the sizes of the other two. A kill at any moment leaves the previous one intact.
"""
import csv
import errno
import io
import json
import os
import pickle
import shutil

from .errors import UserError

METRIC_COLUMNS = ['epoch', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_top1', 'val_top5',
                  'samples_per_sec', 'epoch_time', 'bad_samples']


class DiskFull(UserError):
    """A write failed because the filesystem is full; the temporary file is already gone."""

    def __init__(self, path, needed):
        folder = os.path.dirname(os.path.abspath(path))
        free = shutil.disk_usage(folder).free
        need = 'about %s needed' % human_bytes(needed) if needed else 'more needed'
        super().__init__('the filesystem of %s is full while writing %s (%s free, %s); free space there or '
                         'choose another --save-dir' % (folder, os.path.basename(path), human_bytes(free), need))


def human_bytes(n):
    for unit in ('B', 'KB', 'MB', 'GB'):
        if n < 1024 or unit == 'GB':
            return '%.1f %s' % (n, unit) if unit != 'B' else '%d B' % n
        n /= 1024.0


def _is_disk_full(err):
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    # MXNet's own writers (save_parameters, save_states) report a short write this way.
    return 'FileStream.Write incomplete' in str(err) or 'No space left' in str(err)


def atomic_write(path, write, needed=None):
    """Call ``write(tmp_path)``, fsync, then rename over ``path``; DiskFull when the disk fills up.

    ``needed`` (bytes, if known) goes into the DiskFull message.
    """
    tmp = '%s.tmp-%d' % (path, os.getpid())
    try:
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as err:
        if not _is_disk_full(err):
            raise
        if os.path.exists(tmp):
            os.remove(tmp)
        raise DiskFull(path, needed) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    atomic_write(path, write, needed=len(data))


class Snapshot(object):
    """Weights and optimizer state copied to host memory at one moment, to be written later.

    The files it writes are byte for byte what ``net.save_parameters`` and ``trainer.save_states``
    write (the same host copies, the same pickle), so resuming from them stays exact. Taking it only
    queues copies on MXNet's engine (about 10 ms for vgg16 at 224 px); the serialising, which is
    what costs seconds, happens in ``write``, off the training thread.
    """

    def __init__(self, net, trainer):
        # As Block.save_parameters: every parameter reduced to one host copy, by structural name.
        self.params = {key: param._reduce() for key, param in net._collect_params_with_prefix().items()}
        # As Trainer.save_states with update_on_kvstore=False (the only way this trainer runs).
        if not trainer._kv_initialized:
            trainer._init_kvstore()
        if trainer._params_to_init:
            trainer._init_params()
        updater = trainer._updaters[0]
        self.states = _host_copy(updater.states)
        self.optimizer = pickle.loads(pickle.dumps(updater.optimizer))   # its update counts, as of now
        self.size = sum(a.size * a.dtype(0).itemsize for a in self.params.values())

    def write(self, prefix):
        """``prefix.params`` + ``prefix.states``, each atomically."""
        from mxnet import nd
        atomic_write(prefix + '.params', lambda tmp: nd.save(tmp, self.params), needed=self.size)
        # Updater.get_states(dump_optimizer=True) is exactly this pickle.
        atomic_write_bytes(prefix + '.states', pickle.dumps((self.states, self.optimizer)))


def _host_copy(value):
    """NDArrays (in dicts, tuples, lists) copied to the CPU; anything else as it is."""
    import mxnet as mx
    if isinstance(value, mx.nd.NDArray):
        return value.copyto(mx.cpu())
    if isinstance(value, dict):
        return {key: _host_copy(v) for key, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_host_copy(v) for v in value)
    return value


def save_params_and_states(prefix, net, trainer):
    """GluonCV-style ``prefix.params`` + ``prefix.states``, each atomically."""
    Snapshot(net, trainer).write(prefix)


def link_or_copy(source, target):
    """``target`` as another name of ``source`` (a hard link; a copy where links are impossible), atomically."""
    def write(tmp):
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
    atomic_write(target, write, needed=os.path.getsize(source))


def write_checkpoints(snapshot, prefixes, save_dir, meta=None, keep=2):
    """One snapshot under every prefix: written once, the other names hard-linked to it.

    With ``meta`` the first prefix is a resume point: its .json (sizes included) is written once
    its .params and .states are complete, then all but the ``keep`` newest resume points are removed.
    """
    first = prefixes[0]
    os.makedirs(os.path.dirname(first), exist_ok=True)
    snapshot.write(first)
    if meta is not None:
        meta = dict(meta, params_size=os.path.getsize(first + '.params'),
                    states_size=os.path.getsize(first + '.states'))
        atomic_write_bytes(first + '.json', json.dumps(meta, indent=1).encode())
        prune_resume_points(save_dir, keep)
    for prefix in prefixes[1:]:
        for ext in ('.params', '.states'):
            link_or_copy(first + ext, prefix + ext)


def resume_prefix(save_dir, epoch, iteration):
    return os.path.join(save_dir, 'resume', 'epoch-%03d-iter-%05d' % (epoch, iteration))


class BackgroundWriter(object):
    """Runs one write at a time in a thread, so that training goes on meanwhile.

    ``submit`` waits for the write in flight first; ``wait`` returns when nothing is in flight and
    raises what the last write raised (a full disk, say) in the caller's thread. The thread is not
    a daemon: an ending process finishes the write first, so a checkpoint on disk is never partial.
    """

    def __init__(self):
        self.thread, self.error = None, None

    def submit(self, job):
        import threading
        self.wait()
        self.thread = threading.Thread(target=self._run, args=(job,), name='checkpoint-writer')
        self.thread.start()

    def _run(self, job):
        try:
            job()
        except BaseException as err:  # handed to the training thread by wait()
            self.error = err

    def wait(self):
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def estimate_checkpoint_bytes(net, input_shape, with_momentum=True):
    """Bytes of one .params + .states pair, from the network's graph (no forward pass, no initialisation).

    ``input_shape`` is the shape of one network input batch; momentum SGD keeps one state per
    weight, so the .states file is about as large as the trainable weights.
    """
    import mxnet as mx
    import numpy as np
    out = net(mx.sym.var('data'))
    arg_shapes, _, aux_shapes = out.infer_shape(data=input_shape)
    arg_names = out.list_arguments()
    weights = sum(int(np.prod(s)) for n, s in zip(arg_names, arg_shapes) if n != 'data')
    aux = sum(int(np.prod(s)) for s in aux_shapes)
    return 4 * (weights + aux + (weights if with_momentum else 0))


def save_resume_point(save_dir, net, trainer, meta, keep=2):
    """A complete resumable checkpoint, written now; see write_checkpoints."""
    prefix = resume_prefix(save_dir, meta['epoch'], meta['iteration'])
    write_checkpoints(Snapshot(net, trainer), [prefix], save_dir, meta, keep)
    return prefix


def prune_resume_points(save_dir, keep=2):
    """Remove all but the ``keep`` newest complete resume points, and anything incomplete in resume/.

    Two are kept so that a newest one damaged later (a disk or copy error) still leaves one to
    resume from.
    """
    kept = set(list_resume_points(save_dir)[-keep:])
    for old in resume_point_prefixes(save_dir):
        if old not in kept:
            for ext in RESUME_FILES:
                if os.path.exists(old + ext):
                    os.remove(old + ext)


RESUME_FILES = ('.json', '.params', '.states')


def resume_point_prefixes(save_dir):
    """Every resume point in resume/, complete or not, oldest first (temporary files are not points)."""
    folder = os.path.join(save_dir, 'resume')
    if not os.path.isdir(folder):
        return []
    return sorted({os.path.join(folder, os.path.splitext(n)[0]) for n in os.listdir(folder)
                   if n.startswith('epoch-') and os.path.splitext(n)[1] in RESUME_FILES})


def resume_point_damage(prefix):
    """None for a complete resume point; otherwise why it cannot be used."""
    try:
        with open(prefix + '.json') as f:
            meta = json.load(f)
    except FileNotFoundError:
        return 'its .json is missing (the write was interrupted)'
    except (OSError, ValueError) as err:
        return 'its .json cannot be read (%s)' % err
    for ext, key in (('.params', 'params_size'), ('.states', 'states_size')):
        try:
            size = os.path.getsize(prefix + ext)
        except OSError:
            return 'its %s is missing' % ext
        if size != meta.get(key):
            return 'its %s has %d bytes, the .json says %s (truncated or overwritten)' % (ext, size, meta.get(key))
    return None


def list_resume_points(save_dir):
    """Prefixes of complete resumable checkpoints, oldest first."""
    return [p for p in resume_point_prefixes(save_dir) if resume_point_damage(p) is None]


def remove_stale_temporaries(save_dir):
    """Bytes freed by removing the temporary files of writes a killed run left (call with the lock held)."""
    freed = 0
    for folder in (save_dir, os.path.join(save_dir, 'resume')):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if '.tmp-' in name and os.path.isfile(path):
                freed += os.path.getsize(path)
                os.remove(path)
    return freed


def load_resume_meta(prefix):
    with open(prefix + '.json') as f:
        return json.load(f)


def read_param_file(path):
    """{parameter name: NDArray} of a .params file, or a UserError saying what the file is not."""
    from mxnet import nd
    try:
        loaded = nd.load(path)
    except Exception:  # MXNetError for anything that is not an NDArray file
        raise UserError('%s is not an MXNet parameter file (nd.load cannot read it); pass a .params file saved '
                        'by train_recognizer.py or net.save_parameters, not a .states or other file' % path) from None
    if not isinstance(loaded, dict):
        raise UserError('%s holds unnamed arrays, not gluon parameters; pass a .params file saved by '
                        'train_recognizer.py' % path)
    return {name.split(':', 1)[-1]: arr for name, arr in loaded.items()}


def _param_shapes(path):
    return {name: arr.shape for name, arr in read_param_file(path).items()}


def has_batch_norm(path):
    """Whether a .params file holds BatchNorm statistics (a VGG16-BN checkpoint, for vgg16_* models)."""
    return any(name.endswith('running_mean') for name in read_param_file(path))


def load_matching_params(net, path, min_fraction=0.5):
    """Copy every parameter of ``path`` whose name and shape fit ``net`` (fine-tuning to another class count).

    Returns (loaded names, names left as initialised). The network's shapes must be known (run a
    forward pass first). A UserError when fewer than ``min_fraction`` of the parameters fit: the
    file was then trained as another model.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise UserError('--finetune-from %s does not exist; pass a .params file or a model-zoo name' % path)
    arrays = read_param_file(path)
    params = net._collect_params_with_prefix()
    loaded, fresh = [], []
    for name, param in params.items():
        array = arrays.get(name)
        if array is not None and array.shape == param.shape:
            param.set_data(array)
            loaded.append(name)
        else:
            fresh.append(name)
    if len(loaded) < min_fraction * len(params):
        raise UserError('--finetune-from %s: only %d of the %d parameters of this network fit it (e.g. %s differ '
                        'or are missing); it was trained as another model: pass the --model (and --batch-norm) it '
                        'was trained with' % (path, len(loaded), len(params), ', '.join(fresh[:3])))
    return loaded, fresh


def _mismatch_hints(net_shapes, file_shapes, model, num_classes):
    hints = []
    file_bn = any(name.endswith('running_mean') for name in file_shapes)
    net_bn = any(name.endswith('running_mean') for name in net_shapes)
    if file_bn != net_bn and model.startswith('vgg16'):
        hints.append('the checkpoint was trained %s --batch-norm' % ('with' if file_bn else 'without'))
    out = file_shapes.get('output.weight')
    if out is not None and out[0] != num_classes:
        hints.append('its output layer has %d classes: pass --num-classes %d' % (out[0], out[0]))
    return hints


def _check_params_fit(net, path, model, num_classes, batch_norm, flag):
    """UserError naming what differs when the file's parameters cannot belong to ``net``."""
    if not os.path.isfile(path):
        raise UserError('%s %s does not exist; pass a .params file from the training --save-dir' % (flag, path))
    file_shapes = _param_shapes(path)
    net_shapes = {name: p.shape for name, p in net._collect_params_with_prefix().items()}
    missing = sorted(set(net_shapes) - set(file_shapes))
    extra = sorted(set(file_shapes) - set(net_shapes))
    wrong = sorted(name for name in set(net_shapes) & set(file_shapes)
                   if len(net_shapes[name]) != len(file_shapes[name]) or
                   any(a and a != b for a, b in zip(net_shapes[name], file_shapes[name])))
    if not (missing or extra or wrong):
        return
    details = []
    for what, names in (('missing', missing), ('unexpected', extra)):
        if names:
            details.append('%d %s parameters (e.g. %s)' % (len(names), what, ', '.join(names[:3])))
    for name in wrong[:3]:
        details.append('%s is %s in the file but %s in the network' % (name, file_shapes[name], net_shapes[name]))
    hints = _mismatch_hints(net_shapes, file_shapes, model, num_classes)
    raise UserError('%s does not fit --model %s with --num-classes %d%s: %s%s. Pass the flags the checkpoint was '
                    'trained with' % (path, model, num_classes, ' --batch-norm' if batch_norm else '',
                                      '; '.join(details), ''.join('; ' + h for h in hints)))


def load_params(net, path, ctx, model, num_classes, batch_norm=False, flag='--resume-params'):
    """Load a .params file into ``net``, or a UserError saying why it does not fit (never a traceback)."""
    from mxnet import base
    path = os.path.expanduser(path)
    _check_params_fit(net, path, model, num_classes, batch_norm, flag)
    try:
        net.load_parameters(path, ctx=ctx)
    except (base.MXNetError, AssertionError, ValueError) as err:
        raise UserError('%s does not fit --model %s with --num-classes %d (%s)'
                        % (path, model, num_classes, error_reason(err))) from None


def error_reason(err):
    """One line saying why ``err`` happened: MXNet errors start with a traceback banner."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(('Traceback', 'File ', '[bt]', 'Stack trace'))]
    return (useful or lines or [type(err).__name__])[-1][:200]


# ---------------------------------------------------------------- metrics and plot

def read_metrics(path):
    """The rows write_metrics wrote (none if the file does not exist), with numbers parsed."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [{k: (int(v) if k in ('epoch', 'bad_samples') else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def write_metrics(path, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ('%.6g' % v if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_bytes(path, buf.getvalue().encode())


def plot_history(path, rows, title):
    """Accuracy and loss curves per epoch, like GluonCV's TrainingHistory.plot."""
    # Figure + Agg canvas, not pyplot: this runs in the checkpoint writer's thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    epochs = [r['epoch'] for r in rows]
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax_acc, ax_loss = fig.subplots(1, 2)
    for key, label in (('train_acc', 'train-acc'), ('val_top1', 'val-top1'), ('val_top5', 'val-top5')):
        values = [r.get(key) for r in rows]
        if any(v is not None and v == v for v in values):
            ax_acc.plot(epochs, values, marker='o', label=label)
    for key, label in (('train_loss', 'train-loss'), ('val_loss', 'val-loss')):
        values = [r.get(key) for r in rows]
        if any(v is not None and v == v for v in values):
            ax_loss.plot(epochs, values, marker='o', label=label)
    ax_acc.set(xlabel='epoch', ylabel='accuracy', ylim=(0, 1), title=title)
    ax_loss.set(xlabel='epoch', ylabel='loss')
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=90))
