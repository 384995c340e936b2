"""scripts/check_env.py on this CPU host, and train_recognizer.py's GPU-only flags on a CPU."""
import os
import struct
import subprocess
import sys
from types import SimpleNamespace

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import check_env  # noqa: E402

CPU_FLAGS = ['--num-gpus', '0', '--no-pretrained-base']


@pytest.fixture
def doctor(tmp_path, monkeypatch, capsys):
    """Run the doctor in this process with MXNET_HOME on an empty folder; returns (exit status, output)."""
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxnet_home'))
    dirs = ['--data-dir', str(tmp_path), '--save-dir', str(tmp_path / 'run'), '--min-free-gb', '0']

    def run(*flags):
        status = check_env.main(list(flags) + dirs)
        return status, capsys.readouterr().out
    return run


def problems(output):
    return [line[2:] for line in output.split('problem(s):')[-1].splitlines() if line.startswith('- ')]


def test_cpu_build_reported_and_cpu_flags_pass(doctor):
    status, out = doctor(*CPU_FLAGS)
    assert status == 0, out
    build = next(line for line in out.splitlines() if line.startswith('build '))
    assert build.split(None, 1)[1] == 'CUDA off, CUDNN off, NCCL off, MKLDNN on, DIST_KVSTORE on'
    assert 'CPU build (no CUDA libraries), all resolve' in out
    assert 'mxnet 1.9.1  ok' in out and 'numpy          1.23.5  ok' in out
    assert out.rstrip().endswith('OK: this host can train with these flags')


def test_num_gpus_on_the_cpu_build_is_one_problem(doctor):
    status, out = doctor('--num-gpus', '1', '--no-pretrained-base')
    assert status == 1
    assert problems(out) == ['--num-gpus 1 with the CPU build of mxnet: pip uninstall -y mxnet, then pip install '
                             '-r requirements-gpu.txt in a fresh virtualenv; or train with --num-gpus 0']


@pytest.mark.parametrize('flags, wanted', [
    (['--dtype', 'float16'], '--dtype float16 needs a GPU'),
    (['--use-amp', '--amp-dtype', 'float16'], '--use-amp --amp-dtype float16 needs a GPU'),
])
def test_half_precision_on_cpu_is_a_problem(doctor, flags, wanted):
    status, out = doctor(*(CPU_FLAGS + flags))
    assert status == 1
    assert [p for p in problems(out) if p.startswith(wanted)], out


def test_missing_base_weights_are_named(doctor, tmp_path):
    status, out = doctor('--model', 'vgg16_ucf101')
    models = os.path.join(str(tmp_path / 'mxnet_home'), 'models')
    assert status == 1
    assert problems(out) == [
        '--model vgg16_ucf101 needs vgg16-e660d456.params (ImageNet-pretrained base weights) in %s and the training '
        'host has no internet: copy the file there (or set MXNET_HOME to a folder whose models/ has it), or add '
        '--no-pretrained-base' % models]
    os.makedirs(models)
    open(os.path.join(models, 'vgg16-e660d456.params'), 'wb').close()
    status, out = doctor('--model', 'vgg16_ucf101')
    assert status == 0 and os.path.join(models, 'vgg16-e660d456.params') + ' present' in out


def test_batch_norm_and_pretrained_weights_names(doctor):
    out = doctor('--model', 'vgg16_ucf101', '--batch-norm')[1]
    assert 'vgg16_bn-7f01cf05.params (ImageNet-pretrained base weights)' in out
    out = doctor('--model', 'vgg16_ucf101', '--use-pretrained')[1]
    assert 'vgg16_ucf101-d6dc1bba.params (pretrained weights)' in out


@pytest.mark.parametrize('model, batch_norm, name', [
    ('vgg16_ucf101', False, 'vgg16'), ('vgg16_kinetics400', True, 'vgg16_bn'),
    ('inceptionv3_ucf101', False, 'inceptionv3'), ('i3d_resnet50_v1_ucf101', False, 'resnet50_v1b'),
    ('resnet101_v1b_kinetics400', False, 'resnet101_v1b'), ('c3d_kinetics400', False, None),
])
def test_base_weights_name(model, batch_norm, name):
    assert check_env.base_weights_name(model, batch_norm) == name


def test_needed_weights_follow_the_flags():
    opt = SimpleNamespace(model='inceptionv3_ucf101', batch_norm=False, use_pretrained=False, hashtag='',
                          no_pretrained_base=False)
    assert check_env.needed_weights(opt) == ('inceptionv3', None, 'ImageNet-pretrained base weights')
    opt.no_pretrained_base = True
    assert check_env.needed_weights(opt) is None
    opt.use_pretrained, opt.hashtag = True, 'abcd1234'
    assert check_env.needed_weights(opt) == ('inceptionv3_ucf101', 'abcd1234', 'pretrained weights')


def test_loader_search_order(monkeypatch):
    monkeypatch.setenv('LD_LIBRARY_PATH', '/env/a::/env/b')
    with_rpath = {'rpath': ['$ORIGIN', '${ORIGIN}/../x'], 'runpath': []}
    assert check_env.loader_dirs(with_rpath, '/o') == [
        ('/o', 'rpath'), ('/o/../x', 'rpath'), ('/env/a', 'LD_LIBRARY_PATH'), ('/env/b', 'LD_LIBRARY_PATH')]
    # DT_RPATH is ignored when DT_RUNPATH is present, and DT_RUNPATH comes after LD_LIBRARY_PATH.
    with_runpath = {'rpath': ['/ignored'], 'runpath': ['$ORIGIN/../../cublas/lib']}
    assert check_env.loader_dirs(with_runpath, '/o') == [
        ('/env/a', 'LD_LIBRARY_PATH'), ('/env/b', 'LD_LIBRARY_PATH'), ('/o/../../cublas/lib', 'runpath')]


def test_library_report_of_the_cpu_build():
    report = check_env.library_report(check_env.cuda_libs.find_libmxnet())
    assert report['missing'] == {}
    path, how = report['resolved']['libopenblas.so.0']
    assert how == 'rpath' and path.endswith(os.path.join('mxnet', 'libopenblas.so.0'))
    assert 'libc.so.6' in report['resolved'] and 'libquadmath.so.0' in report['resolved']  # via libgfortran


def test_an_unresolvable_library_is_missing(tmp_path):
    info = {'needed': ['libcudart.so.11.0'], 'rpath': [], 'runpath': [str(tmp_path)], 'elf64': True}
    assert check_env.resolve('libcudart.so.11.0', info, str(tmp_path), {}) is None
    assert 'requirements-gpu.txt' in check_env.where_missing_comes_from('libcudart.so.11.0')
    assert 'NVIDIA driver' in check_env.where_missing_comes_from('libcuda.so.1')


def run_script(args, timeout=120):
    return subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_doctor_command_line_exit_status(tmp_path):
    out = run_script(['scripts/check_env.py', '--num-gpus', '1', '--no-pretrained-base', '--save-dir', str(tmp_path)])
    assert out.returncode == 1, out.stderr
    assert '1 problem(s):\n- --num-gpus 1 with the CPU build of mxnet' in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize('flags, wanted', [
    (['--num-gpus', '1'], 'scripts/check_env.py'),
    (['--dtype', 'float16'], 'a GPU'),
    (['--use-amp', '--amp-dtype', 'float16'], 'a GPU'),
    (['--amp-dtype', 'bfloat16'], 'add --use-amp'),
])
def test_trainer_refuses_gpu_flags_on_cpu(tmp_path, flags, wanted):
    """check_args stops before any data is read: a dummy --data-dir is enough."""
    out = run_script(['train_recognizer.py', '--model', 'vgg16_ucf101', '--data-dir', str(tmp_path / 'none'),
                      '--save-dir', str(tmp_path / 'run')] + flags)
    assert out.returncode == 2
    assert 'Traceback' not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and wanted in lines[0], out.stderr
    assert not (tmp_path / 'run').exists()


def fatbin(entries):
    """A CUDA fat binary as check_env.kernel_archs reads it: [(kind, arch)] -> bytes."""
    body = b''.join(struct.pack('<HHIQ12xI32x', kind, 0x101, 64, 8, arch) + b'\0' * 8 for kind, arch in entries)
    return struct.pack('<IHHQ', 0xBA55ED50, 1, 16, len(body)) + body


def test_kernel_archs_and_which_gpus_they_run_on(tmp_path):
    lib = tmp_path / 'libfake.so'
    lib.write_bytes(b'junk' * 10 + fatbin([(2, 50), (2, 86)]) + b'pad' + fatbin([(2, 70), (1, 80)]) + b'end')
    archs = check_env.kernel_archs(str(lib))
    assert archs == {'sm': [50, 70, 86], 'ptx': [80]}
    assert check_env.describe_archs(archs) == 'sm_50 sm_70 sm_86; PTX compute_80'
    mxnet_cu112 = {'sm': [50, 60, 70, 80, 86], 'ptx': []}   # what verify_gpu_wheels.sh found in the wheel
    fits = {cc: check_env.runs_on(cc, mxnet_cu112) for cc in ('3.7', '5.2', '6.1', '7.5', '8.9', '9.0', '12.0')}
    assert fits == {'3.7': False, '5.2': True, '6.1': True, '7.5': True, '8.9': True, '9.0': False, '12.0': False}
    assert check_env.runs_on('9.0', {'sm': [86], 'ptx': [80]})   # PTX: the driver compiles it for newer GPUs
