"""Code shared by train_recognizer.py and the scripts: data lists, sampling,
transforms, model construction, checkpoints, and user-facing errors."""

from .cuda_libs import preload as _preload_pip_cuda_libraries

_preload_pip_cuda_libraries()  # before anyone imports mxnet: a no-op without nvidia-*-cu11 wheels
