"""Unit tests for recognizer.dist: per-epoch data shards and the parameter checksum."""
import collections

import numpy as np
import pytest

from recognizer.dist import param_checksum, require_launcher_env, sharded_indices
from recognizer.errors import UserError


def all_shards(num_items, epoch, seed, num_workers):
    return [sharded_indices(num_items, epoch, seed, rank, num_workers) for rank in range(num_workers)]


@pytest.mark.parametrize('num_items,num_workers', [(12, 3), (10, 1), (8, 8)])
def test_divisible_shards_are_disjoint_and_cover_everything(num_items, num_workers):
    shards = all_shards(num_items, epoch=0, seed=7, num_workers=num_workers)
    assert all(len(s) == num_items // num_workers for s in shards)
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(num_items))


@pytest.mark.parametrize('num_items,num_workers', [(10, 3), (5, 4), (2, 3)])
def test_uneven_shards_wrap_to_equal_length_and_cover_everything(num_items, num_workers):
    shards = all_shards(num_items, epoch=2, seed=1, num_workers=num_workers)
    per_worker = -(-num_items // num_workers)
    assert [len(s) for s in shards] == [per_worker] * num_workers
    counts = collections.Counter(i for s in shards for i in s)
    assert set(counts) == set(range(num_items))
    # Exactly the padding is duplicated: the first items of the permutation, once more each.
    pad = per_worker * num_workers - num_items
    assert sum(counts.values()) - num_items == pad
    assert all(len(set(shard)) == len(shard) for shard in shards)


def test_same_seed_and_epoch_give_same_shards_and_epochs_reshuffle():
    first = all_shards(50, epoch=3, seed=11, num_workers=2)
    assert first == all_shards(50, epoch=3, seed=11, num_workers=2)
    assert first != all_shards(50, epoch=4, seed=11, num_workers=2)
    assert first != all_shards(50, epoch=3, seed=12, num_workers=2)
    # A reshuffle, not just a rotation of the identity.
    assert first[0] + first[1] != list(range(50))
    assert all(isinstance(i, int) for i in first[0])


def test_empty_dataset_and_bad_rank():
    assert sharded_indices(0, 0, 0, 0, 2) == []
    with pytest.raises(ValueError):
        sharded_indices(10, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        sharded_indices(10, 0, 0, 0, 0)


def test_checksum_depends_on_values_and_name_order_not_insertion_order():
    a = {'b_weight': np.arange(6, dtype='float32').reshape(2, 3), 'a_bias': np.ones(3, dtype='float32')}
    same = {'a_bias': np.ones(3), 'b_weight': np.arange(6, dtype='float64').reshape(2, 3)}
    assert param_checksum(a) == param_checksum(same)
    changed = dict(a, a_bias=np.array([1, 1, 1.0001], dtype='float32'))
    assert param_checksum(changed) != param_checksum(a)
    swapped = {'a_bias': a['b_weight'], 'b_weight': a['a_bias']}
    assert param_checksum(swapped) != param_checksum(a)
    digest = param_checksum(a)
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_checksum_accepts_gluon_parameters_and_ndarrays():
    mx = pytest.importorskip('mxnet')
    net = mx.gluon.nn.Dense(4, in_units=3)
    net.initialize(mx.init.Uniform(), ctx=mx.cpu())
    params = net.collect_params()
    as_nd = {name: p.data() for name, p in params.items()}
    as_np = {name: p.data().asnumpy() for name, p in params.items()}
    assert param_checksum(params) == param_checksum(as_nd) == param_checksum(as_np)
    net.weight.set_data(net.weight.data() + 1)
    assert param_checksum(params) != param_checksum(as_np)


def test_checksum_can_skip_parameters_without_gradient():
    mx = pytest.importorskip('mxnet')
    net = mx.gluon.nn.BatchNorm(in_channels=2)
    net.initialize(ctx=mx.cpu())
    params = net.collect_params()
    before_all, before_trainable = param_checksum(params), param_checksum(params, trainable_only=True)
    # What a training forward pass does to the running statistics on one worker only.
    net.running_mean.set_data(mx.nd.full((2,), 0.5))
    assert param_checksum(params) != before_all
    assert param_checksum(params, trainable_only=True) == before_trainable
    trainable = {n: p.data() for n, p in params.items() if p.grad_req != 'null'}
    assert param_checksum(trainable) == before_trainable


def test_dist_kvstore_outside_launcher_is_a_user_error():
    env = {'DMLC_ROLE': 'worker', 'DMLC_PS_ROOT_URI': '127.0.0.1', 'DMLC_PS_ROOT_PORT': '9091',
           'DMLC_NUM_SERVER': '1', 'DMLC_NUM_WORKER': '2'}
    require_launcher_env('dist_sync', env)
    require_launcher_env('device', {})
    with pytest.raises(UserError, match='DMLC_NUM_WORKER.*launch_dist.py'):
        require_launcher_env('dist_sync', dict(env, DMLC_NUM_WORKER=''))
