"""Pooled features before the classifier, for scripts/feat_extract.py.

A forward pre-hook on the classifier (the network's last Dense layer) records what goes into
it while the test-protocol Predictor scores a clip's views; the clip's feature is the mean over
its views. That is the vector GluonCV's ``feat_ext=True`` networks return (they average the
same activations over segments and crops before the classifier): 4096 values for vgg16_*,
2048 for inceptionv3_* and the I3D ResNets, 1024 for inceptionv1_*. Hooks only run on an
imperative network, so the network is not hybridized here.
"""
import numpy as np

from .errors import UserError


def classifier(net):
    """The last Dense layer of ``net`` in registration order: the one producing the class scores."""
    from mxnet import gluon
    found = []
    net.apply(lambda block: found.append(block) if isinstance(block, gluon.nn.Dense) else None)
    if not found:
        raise UserError('the network has no Dense classifier whose input could be taken as features')
    return found[-1]


class FeatureRecorder(object):
    """Collects the classifier inputs (one row per view) of every forward pass while attached."""

    def __init__(self, net):
        self.rows = []
        self._handle = classifier(net).register_forward_pre_hook(self._record)

    def _record(self, block, inputs):
        x = inputs[0]
        self.rows.append(x.reshape((x.shape[0], -1)).astype('float32').asnumpy())

    def pooled(self):
        """Mean of the recorded rows, then forget them: (feature_dim,) float32."""
        if not self.rows:
            raise RuntimeError('no forward pass was recorded')
        feature = np.concatenate(self.rows).mean(axis=0).astype(np.float32)
        self.rows = []
        return feature

    def detach(self):
        self._handle.detach()


def clip_feature(predictor, recorder, views):
    """Pooled feature of one clip's views (runs the network through the Predictor's chunking)."""
    predictor.view_logits(views)
    return recorder.pooled()
