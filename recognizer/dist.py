"""Helpers for distributed (``--kvstore dist_*``) training: per-worker data shards
and a parameter checksum that shows every worker holds the same weights.

Nothing here imports mxnet, so the helpers are cheap to test and to use from
scripts; NDArrays are accepted through their ``asnumpy()`` method.
"""
import hashlib

import numpy as np


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


def _as_numpy(value):
    # gluon Parameter -> its first copy (all device copies are equal after a step).
    if hasattr(value, 'list_data'):
        value = value.list_data()[0]
    if hasattr(value, 'asnumpy'):
        value = value.asnumpy()
    return np.asarray(value)


def param_checksum(params):
    """Hex sha256 of all parameter values, for the ``param checksum: <hex>`` log line.

    ``params`` maps names to gluon Parameters, NDArrays or numpy arrays (e.g.
    ``net.collect_params()`` or ``nd.load(path)``).  Arrays are hashed in
    sorted-name order as little-endian float32 C-order bytes; names and shapes
    are not hashed, so the digest only depends on the values and their order.
    """
    digest = hashlib.sha256()
    for name in sorted(params.keys()):
        array = np.ascontiguousarray(_as_numpy(params[name]), dtype='<f4')
        digest.update(array.tobytes())
    return digest.hexdigest()
