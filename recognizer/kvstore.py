"""MXNet kvstore side of distributed training: creating the store, sums over workers, one model.

The mxnet-free half (shards, checksums, launcher variables) is in ``recognizer/dist.py``.
"""
import mxnet as mx
from mxnet import nd

from . import checkpoint
from .dist import require_launcher_env
from .errors import UserError

KVSTORES = ('local', 'device', 'dist_sync', 'dist_sync_device', 'dist_device_sync', 'dist_async')


def is_dist(kv):
    return kv is not None and 'dist' in kv.type


def create_kvstore(name):
    """The kvstore of --kvstore, or None (gluon's default) when the flag is not given."""
    if name is None:
        return None
    if name not in KVSTORES:
        raise UserError('--kvstore %s: choose local, device, dist_sync, dist_sync_device or dist_async' % name)
    if name == 'dist_async':
        # gluon refuses async with update_on_kvstore=False, and with True the per-iteration LR
        # schedule and the .states checkpoints would not reach the server.
        raise UserError('--kvstore dist_async is not built in this trainer yet (the servers would have to run '
                        'the optimizer, its LR schedule and its checkpoints); use --kvstore dist_sync')
    require_launcher_env(name)
    return mx.kv.create(name)


def rank_and_world_size(kv):
    """(this worker's rank, number of workers): (0, 1) outside distributed training."""
    return (kv.rank, kv.num_workers) if is_dist(kv) else (0, 1)


class Allreduce(object):
    """Sums NDArrays over all workers through the kvstore, one key per array size."""

    # Integer keys above the Trainer's 0..P-1: ps-lite refuses to mix key types.
    KEY_BASE = 1 << 20

    def __init__(self, kv):
        self.kv = kv
        self.keys = set()

    def __call__(self, array):
        key = self.KEY_BASE + array.size
        if key not in self.keys:
            self.kv.init(key, nd.zeros_like(array, ctx=mx.cpu()))
            self.keys.add(key)
        out = nd.zeros_like(array, ctx=mx.cpu())
        self.kv.push(key, array.copyto(mx.cpu()))   # a copy: the dist kvstore keeps what is pushed as its buffer
        self.kv.pull(key, out=out)
        return out


def broadcast_initial_weights(net, trainer, kv, example, ctx):
    """Give every worker rank 0's weights before anything else touches the kvstore.

    gluon's Trainer does this lazily (first step() or load_states()) with one init+pull per
    weight on the weight's own array, which mxnet 1.9.1's dist kvstore then keeps as its
    transfer buffer: on loopback we saw the server abort ("init N first") and workers end
    with different weights.  Here: init from copies, barrier, pull, wait, barrier.
    The forward pass on ``example`` (a network input) ends deferred initialisation, so that
    every weight takes part.
    """
    net(example)
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    params = [(trainer._param2idx[p.name], p) for p in trainer._params_to_init]
    for key, param in params:
        kv.init(key, param.data(ctx[0]).copy())
    mx.nd.waitall()
    kv._barrier()
    for key, param in params:
        kv.pull(key, out=param.list_data())
    mx.nd.waitall()
    kv._barrier()
    trainer._params_to_init = []


def average_running_stats(allreduce, net):
    """Average BatchNorm running mean/var over the workers.

    The kvstore only reduces gradients, so each worker's running statistics follow its own
    shard; averaging them once per epoch makes validation, checkpoints and the checksum
    describe one model.  One allreduce of all statistics concatenated.
    """
    stats = [p for name, p in sorted(net.collect_params().items())
             if name.endswith(('running_mean', 'running_var'))]
    if not stats:
        return
    flat = nd.concat(*[p.data().reshape((-1,)).as_in_context(mx.cpu()) for p in stats], dim=0)
    flat = allreduce(flat) / allreduce.kv.num_workers
    offset = 0
    for p in stats:
        p.set_data(flat[offset:offset + p.data().size].reshape(p.shape))
        offset += p.data().size


def agree_on_resume_point(allreduce, save_dir, points):
    """--auto-resume with a dist kvstore: every worker must resume from the same point.

    All ranks read the newest resume point rank 0 wrote; a rank that sees another one (a
    --save-dir that is not shared between hosts) would train different epochs and hang
    the others, so all ranks stop with the same error instead.
    """
    kv = allreduce.kv
    meta = checkpoint.load_resume_meta(points[-1]) if points else {'epoch': -1, 'iteration': -1}
    mine = nd.zeros(2 * kv.num_workers)
    mine[2 * kv.rank:2 * kv.rank + 2] = nd.array([meta['epoch'], meta['iteration']])
    seen = allreduce(mine).asnumpy().astype(int).reshape((-1, 2)).tolist()
    if any(pair != seen[0] for pair in seen):
        found = ', '.join('rank %d: %s' % (r, 'none' if e < 0 else 'epoch %d iteration %d' % (e, i))
                          for r, (e, i) in enumerate(seen))
        raise UserError('--auto-resume: the workers see different resume points in --save-dir %s (%s); '
                        'in distributed mode --save-dir must be one folder shared by all hosts'
                        % (save_dir, found))
