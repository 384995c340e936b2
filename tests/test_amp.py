"""--use-amp: which type it means where, the refusals, and bfloat16 training on CPUs that have it."""
import numpy as np
import pytest

from conftest import assert_user_error, run_trainer, train_command
from recognizer import checkpoint
from recognizer.runtime import amp_dtype, amp_problem, cpu_flags

AVX2_EPYC = {'fpu', 'sse4_2', 'avx', 'avx2', 'fma', 'f16c'}
SAPPHIRE_RAPIDS = AVX2_EPYC | {'avx512f', 'avx512bw', 'avx512_bf16', 'amx_bf16', 'amx_tile'}
HAS_BF16 = amp_problem('bfloat16', 0, cpu_flags()) is None


def test_use_amp_means_float16_on_gpus_and_bfloat16_on_cpus():
    assert amp_dtype(False, None, 0) is None
    assert amp_dtype(True, None, 2) == 'float16'
    assert amp_dtype(True, None, 0) == 'bfloat16'
    assert amp_dtype(True, 'float16', 0) == 'float16'


def test_bfloat16_needs_avx512_bf16_or_amx():
    problem = amp_problem('bfloat16', 0, AVX2_EPYC)
    assert problem.startswith('--use-amp on the CPU trains in bfloat16, which needs a CPU with avx512_bf16 or '
                              'amx_bf16; this one has neither (its vector instructions: avx2)')
    assert amp_problem('bfloat16', 0, SAPPHIRE_RAPIDS) is None
    assert amp_problem('bfloat16', 0, {'avx2', 'avx512_bf16'}) is None   # Cooper Lake, Zen 4


def test_each_type_runs_only_where_mxnet_has_it():
    assert 'needs a GPU' in amp_problem('float16', 0, SAPPHIRE_RAPIDS)
    assert 'on GPUs use --use-amp (float16)' in amp_problem('bfloat16', 1, SAPPHIRE_RAPIDS)
    assert amp_problem('float16', 1, AVX2_EPYC) is None


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n')
    assert cpu_flags(str(info)) == {'fpu', 'avx2', 'avx512_bf16'}
    assert cpu_flags(str(tmp_path / 'missing')) == set()


@pytest.mark.skipif(HAS_BF16, reason='this CPU has bfloat16: the run is tested below')
def test_trainer_refuses_bfloat16_naming_the_missing_instructions(tiny_set, tmp_path):
    res = run_trainer(train_command(tiny_set, tmp_path / 'run', '--use-amp'))
    assert_user_error(res, 'avx512_bf16 or amx_bf16', 'without --use-amp')
    assert not (tmp_path / 'run').exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BF16, reason='bfloat16 AMP needs a CPU with avx512_bf16 or amx_bf16')
def test_bfloat16_run_trains_and_saves_float32_checkpoints(tiny_set, tmp_path):
    save = tmp_path / 'run'
    res = run_trainer(train_command(tiny_set, save, '--use-amp', '--mode', 'hybrid', '--num-epochs', '3'))
    assert res.returncode == 0, res.stderr
    rows = [line.split(',') for line in (save / 'metrics.csv').read_text().splitlines()]
    losses = [float(row[rows[0].index('train_loss')]) for row in rows[1:]]
    assert len(losses) == 3 and all(np.isfinite(losses))
    params = checkpoint.read_param_file(str(save / 'ucf101-vgg16_ucf101-002.params'))
    assert {v.dtype for v in params.values()} == {np.float32}
    res = run_trainer(train_command(tiny_set, tmp_path / 'eval', '--eval', '--resume-params',
                                    str(save / 'ucf101-vgg16_ucf101-002.params')))
    assert res.returncode == 0, res.stderr
