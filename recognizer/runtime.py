"""Process set-up shared by the entry points: the devices to run on, mixed precision, the log handlers."""
import logging
import logging.handlers
import os

from .errors import UserError


def contexts(num_gpus, cpu_contexts=1):
    """``num_gpus`` GPUs, or ``cpu_contexts`` CPU contexts (several exercise the multi-device path)."""
    import mxnet as mx
    if num_gpus > 0:
        seen = mx.context.num_gpus()
        if seen < num_gpus:
            raise UserError('--num-gpus %d, but this MXNet sees %d GPUs (CPU build of mxnet, or no working NVIDIA '
                            'driver); run python scripts/check_env.py --num-gpus %d to see why, or use --num-gpus 0'
                            % (num_gpus, seen, num_gpus))
        return [mx.gpu(i) for i in range(num_gpus)]
    return [mx.cpu(i) for i in range(cpu_contexts)]


# MXNet 1.9's oneDNN runs bfloat16 at full speed only with these CPU instructions; without them it
# has no bfloat16 kernels at all (AVX2) or emulates them slower than float32 (plain AVX-512).
BF16_CPU_FEATURES = ('avx512_bf16', 'amx_bf16')


def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty where the file is missing)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def amp_dtype(use_amp, amp_dtype, num_gpus):
    """The low-precision type of --use-amp: --amp-dtype if given, else float16 on GPUs, bfloat16 on CPUs."""
    if not use_amp:
        return None
    return amp_dtype or ('float16' if num_gpus > 0 else 'bfloat16')


def amp_problem(dtype, num_gpus, flags):
    """Why mixed precision in ``dtype`` cannot run here (None if it can); ``flags`` from cpu_flags()."""
    if dtype == 'float16' and num_gpus == 0:
        return ('--use-amp --amp-dtype float16 needs a GPU (mxnet-cu112, see python scripts/check_env.py); '
                'on a CPU, --use-amp trains in bfloat16')
    if dtype == 'bfloat16' and num_gpus > 0:
        return ('--amp-dtype bfloat16: MXNet 1.9 runs bfloat16 mixed precision on CPUs only; on GPUs use '
                '--use-amp (float16)')
    if dtype == 'bfloat16' and not flags & set(BF16_CPU_FEATURES):
        has = sorted(flags & {'avx2', 'avx512f', 'avx512_core', 'avx512bw'})
        return ('--use-amp on the CPU trains in bfloat16, which needs a CPU with %s; this one has neither '
                '(its vector instructions: %s). Train in float32 without --use-amp, or with --num-gpus N '
                'on a GPU host' % (' or '.join(BF16_CPU_FEATURES), ', '.join(has) or 'none found'))
    return None


def setup_logging(logger, rank=0, log_file=None, keep_for_file=False):
    """Console lines (prefixed with the rank on workers other than 0); with ``log_file``, also that file.

    A record logged with ``extra={'console': False}`` goes to the file only (the progress bar owns
    the console). Calling it again replaces the file handler (several runs in one process).
    ``keep_for_file`` holds the lines logged until a later call names the file, which then starts
    with them: the file is only created once the input has been checked.
    """
    fmt = logging.Formatter('%(message)s' if rank == 0 else '[rank %d] %%(message)s' % rank)
    if not any(getattr(h, 'is_console', False) for h in logger.handlers):
        console = logging.StreamHandler()
        console.is_console = True
        console.setFormatter(fmt)
        console.addFilter(lambda record: getattr(record, 'console', True))
        logger.addHandler(console)
        logger.setLevel(logging.INFO)
    held = [h for h in logger.handlers if isinstance(h, logging.handlers.MemoryHandler)]
    if keep_for_file and not held:
        logger.addHandler(logging.handlers.MemoryHandler(capacity=10000, flushLevel=logging.CRITICAL + 1))
    if log_file:
        for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(old)
            old.close()
        handler = logging.FileHandler(os.path.expanduser(log_file))
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
        for buffer in held:
            buffer.setTarget(handler)
            buffer.flush()
            logger.removeHandler(buffer)
        logger.addHandler(handler)
    return logger
