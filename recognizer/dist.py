"""Helpers for distributed (``--kvstore dist_*``) training: per-worker data shards
and a parameter checksum that shows every worker holds the same weights.

Nothing here imports mxnet, so the helpers are cheap to test and to use from
scripts; NDArrays are accepted through their ``asnumpy()`` method.
"""
import hashlib
import json
import os

import numpy as np

from recognizer.errors import UserError

# What scripts/launch_dist.py (or MXNet's tools/launch.py) sets for every process.
LAUNCHER_ENV = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER', 'DMLC_NUM_WORKER')
# Debug aid: a folder where every worker writes the clip indices it trains on, per epoch.
SHARD_DUMP_ENV = 'RECOGNIZER_SHARD_DUMP'


def require_launcher_env(kvstore, environ=None):
    """Raise a UserError if a ``dist_*`` kvstore is asked for outside a launcher.

    Without these variables mxnet 1.9.1 fails inside ``kv.create`` with an
    MXNetError about DMLC_NUM_WORKER; this says what to do instead.
    """
    environ = os.environ if environ is None else environ
    if 'dist' not in kvstore:
        return
    missing = [name for name in LAUNCHER_ENV if not environ.get(name)]
    if missing:
        raise UserError('--kvstore %s needs the environment set by the launcher (missing %s); run '
                        'python scripts/launch_dist.py -n WORKERS -s SERVERS '
                        'python train_recognizer.py ... --kvstore %s'
                        % (kvstore, ', '.join(missing), kvstore))


def epoch_permutation(num_items, epoch, seed):
    """The same permutation of range(num_items) on every worker for a given (seed, epoch)."""
    # SeedSequence mixes seed and epoch so (seed, epoch+1) and (seed+1, epoch) differ;
    # RandomState keeps its stream stable across numpy versions.
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(4)
    return np.random.RandomState(state).permutation(num_items)


def sharded_indices(num_items, epoch, seed, rank, num_workers):
    """This worker's share of the epoch's shuffled item indices, as a list of ints.

    All workers must pass the same ``num_items``, ``epoch`` and ``seed``: they
    then compute the same permutation and worker ``rank`` takes every
    ``num_workers``-th element starting at ``rank``.  When ``num_items`` is
    divisible by ``num_workers`` the shards are disjoint and together cover
    every item exactly once.  Otherwise the permutation is padded by wrapping
    around to its start, so every worker gets ``ceil(num_items / num_workers)``
    items (equal step counts keep dist_sync workers in lockstep) and the first
    ``pad`` items of the permutation are seen twice that epoch.
    """
    if num_workers < 1:
        raise ValueError('num_workers must be >= 1, got %d' % num_workers)
    if not 0 <= rank < num_workers:
        raise ValueError('rank must be in [0, %d), got %d' % (num_workers, rank))
    if num_items < 0:
        raise ValueError('num_items must be >= 0, got %d' % num_items)
    if num_items == 0:
        return []
    per_worker = -(-num_items // num_workers)
    padded = np.resize(epoch_permutation(num_items, epoch, seed), per_worker * num_workers)
    return [int(i) for i in padded[rank::num_workers]]


def dump_shard(indices, rank, epoch, environ=None):
    """With RECOGNIZER_SHARD_DUMP=DIR set, write ``indices`` to DIR/shard-rank<r>-epoch<eee>.json.

    The indices are 0-based line numbers of the training list (blank lines not
    counted), so the files of all workers show which clips each one read in an
    epoch and whether together they cover the list once.  Unset: does nothing.
    """
    environ = os.environ if environ is None else environ
    folder = environ.get(SHARD_DUMP_ENV)
    if not folder:
        return None
    path = os.path.join(folder, 'shard-rank%d-epoch%03d.json' % (rank, epoch))
    with open(path, 'w') as handle:
        json.dump({'rank': rank, 'epoch': epoch, 'indices': [int(i) for i in indices]}, handle)
    return path


def _as_numpy(value):
    # gluon Parameter -> its first copy (all device copies are equal after a step).
    if hasattr(value, 'list_data'):
        value = value.list_data()[0]
    if hasattr(value, 'asnumpy'):
        value = value.asnumpy()
    return np.asarray(value)


def param_checksum(params, trainable_only=False):
    """Hex sha256 of all parameter values, for the ``param checksum: <hex>`` log line.

    ``params`` maps names to gluon Parameters, NDArrays or numpy arrays (e.g.
    ``net.collect_params()`` or ``nd.load(path)``).  Arrays are hashed in
    sorted-name order as little-endian float32 C-order bytes; names and shapes
    are not hashed, so the digest only depends on the values and their order.

    With ``trainable_only`` gluon Parameters whose ``grad_req`` is ``'null'``
    are skipped.  Use it to compare workers of a dist_sync job: the kvstore
    keeps weights identical, but BatchNorm running mean/var are never pushed,
    so they drift apart on each worker's own data.
    """
    digest = hashlib.sha256()
    for name in sorted(params.keys()):
        value = params[name]
        if trainable_only and getattr(value, 'grad_req', None) == 'null':
            continue
        array = np.ascontiguousarray(_as_numpy(value), dtype='<f4')
        digest.update(array.tobytes())
    return digest.hexdigest()
