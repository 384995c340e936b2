"""Checkpoints, metrics.csv and the training-curve plot, all written atomically.

A resumable checkpoint is three files, ``resume/epoch-EEE-iter-IIIII.{params,states,json}``;
the JSON is written last, so a checkpoint counts as complete only when its JSON exists
and names the sizes of the other two. A kill at any moment leaves the previous one intact.
"""
import csv
import io
import json
import os

METRIC_COLUMNS = ['epoch', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_top1', 'val_top5',
                  'samples_per_sec', 'epoch_time', 'bad_samples']


def atomic_write(path, write):
    """Call ``write(tmp_path)``, fsync, then rename over ``path``."""
    tmp = '%s.tmp-%d' % (path, os.getpid())
    try:
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    atomic_write(path, write)


def save_params_and_states(prefix, net, trainer):
    """GluonCV-style ``prefix.params`` + ``prefix.states``, each atomically."""
    atomic_write(prefix + '.params', net.save_parameters)
    atomic_write(prefix + '.states', trainer.save_states)


def save_resume_point(save_dir, net, trainer, meta, keep=1):
    """A complete resumable checkpoint; older ones beyond ``keep`` are removed."""
    folder = os.path.join(save_dir, 'resume')
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, 'epoch-%03d-iter-%05d' % (meta['epoch'], meta['iteration']))
    save_params_and_states(prefix, net, trainer)
    meta = dict(meta, params_size=os.path.getsize(prefix + '.params'),
                states_size=os.path.getsize(prefix + '.states'))
    atomic_write_bytes(prefix + '.json', json.dumps(meta, indent=1).encode())
    for old in list_resume_points(save_dir)[:-keep]:
        for ext in ('.json', '.params', '.states'):
            if os.path.exists(old + ext):
                os.remove(old + ext)
    return prefix


def _complete(prefix):
    try:
        with open(prefix + '.json') as f:
            meta = json.load(f)
        return (os.path.getsize(prefix + '.params') == meta['params_size']
                and os.path.getsize(prefix + '.states') == meta['states_size'])
    except (OSError, ValueError, KeyError):
        return False


def list_resume_points(save_dir):
    """Prefixes of complete resumable checkpoints, oldest first."""
    folder = os.path.join(save_dir, 'resume')
    if not os.path.isdir(folder):
        return []
    prefixes = sorted(os.path.join(folder, n[:-5]) for n in os.listdir(folder)
                      if n.startswith('epoch-') and n.endswith('.json'))
    return [p for p in prefixes if _complete(p)]


def load_resume_meta(prefix):
    with open(prefix + '.json') as f:
        return json.load(f)


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
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    epochs = [r['epoch'] for r in rows]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
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
    plt.close(fig)
