"""recognizer.cuda_libs: finding the pip CUDA libraries, their load order, and the ELF reader."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from recognizer import cuda_libs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def touch(path, content=b'not an ELF file'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(content)
    return path


def test_no_nvidia_packages_means_nothing_to_load(tmp_path):
    assert cuda_libs.nvidia_lib_dirs([str(tmp_path)]) == []
    before = dict(cuda_libs.LOADED)
    assert cuda_libs.preload([str(tmp_path)]) == before
    if not cuda_libs.nvidia_lib_dirs():     # the CPU virtualenv: `import recognizer` loaded nothing
        assert cuda_libs.LOADED == {} and cuda_libs.FAILED == {}


def test_lib_dirs_and_libraries_of_a_fake_wheel_tree(tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    touch(str(first / 'nvidia' / 'cublas' / 'lib' / 'libcublas.so.11'))
    touch(str(first / 'nvidia' / 'cublas' / 'lib' / '__init__.py'))
    touch(str(first / 'nvidia' / 'cuda_runtime' / 'lib' / 'libcudart.so.11.0'))
    touch(str(first / 'nvidia' / 'cuda_runtime' / 'include' / 'cuda.h'))
    touch(str(second / 'nvidia' / 'cublas' / 'lib' / 'libcublas.so.11'))
    os.symlink('libcudart.so.11.0', str(first / 'nvidia' / 'cuda_runtime' / 'lib' / 'libcudart.so'))
    dirs = cuda_libs.nvidia_lib_dirs([str(first), str(second), str(first)])
    assert dirs == [str(first / 'nvidia' / 'cublas' / 'lib'), str(first / 'nvidia' / 'cuda_runtime' / 'lib'),
                    str(second / 'nvidia' / 'cublas' / 'lib')]
    libs = cuda_libs.shared_libraries(dirs)
    # The first directory wins a name clash; symlinks and non-libraries are skipped.
    assert libs == {'libcublas.so.11': str(first / 'nvidia' / 'cublas' / 'lib' / 'libcublas.so.11'),
                    'libcudart.so.11.0': str(first / 'nvidia' / 'cuda_runtime' / 'lib' / 'libcudart.so.11.0')}


def test_load_order_puts_dependencies_first():
    needs = {'libcusolver.so.11': ['libcublas.so.11', 'libcublasLt.so.11', 'libc.so.6'],
             'libcublas.so.11': ['libcublasLt.so.11', 'libm.so.6'],
             'libcublasLt.so.11': ['libc.so.6'],
             'libcudnn.so.8': [],
             'libnccl.so.2': ['libpthread.so.0']}
    assert cuda_libs.load_order(needs) == ['libcublasLt.so.11', 'libcublas.so.11', 'libcudnn.so.8',
                                           'libcusolver.so.11', 'libnccl.so.2']


def test_load_order_survives_a_cycle():
    order = cuda_libs.load_order({'a': ['b'], 'b': ['a'], 'c': ['a']})
    assert sorted(order) == ['a', 'b', 'c'] and order.index('a') < order.index('c')


def test_closure_keeps_only_what_libmxnet_needs():
    libs = {n: '/x/' + n for n in ('libcublas.so.11', 'libcublasLt.so.11', 'libnvblas.so.11', 'libcufftw.so.10',
                                   'libcufft.so.10')}
    needed = {'/x/libcublas.so.11': ['libcublasLt.so.11', 'libc.so.6'], '/x/libcublasLt.so.11': [],
              '/x/libcufft.so.10': [], '/x/libnvblas.so.11': ['libcublas.so.11']}
    closure = cuda_libs.needed_closure(['libcublas.so.11', 'libcufft.so.10', 'libcuda.so.1'], libs, needed.get)
    assert closure == {'libcublas.so.11': ['libcublasLt.so.11', 'libc.so.6'], 'libcublasLt.so.11': [],
                       'libcufft.so.10': []}


def test_read_dynamic_of_libmxnet():
    info = cuda_libs.read_dynamic(cuda_libs.find_libmxnet())
    assert info['soname'] == 'libmxnet.so' and info['elf64']
    assert 'libopenblas.so.0' in info['needed'] and 'libc.so.6' in info['needed']
    assert not any(n.startswith('libcudart') for n in info['needed'])   # the CPU build
    assert info['rpath'] == ['${ORIGIN}'] and info['runpath'] == []


def test_read_dynamic_refuses_a_non_elf_file(tmp_path):
    with pytest.raises(ValueError):
        cuda_libs.read_dynamic(touch(str(tmp_path / 'libfake.so.1')))


SYSTEM_QUADMATH = [os.path.join(d, 'libquadmath.so.0')
                   for d in ('/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64')]
PRELOAD_PROBE = r'''
import json, sys
from recognizer import cuda_libs
loaded = dict(cuda_libs.preload([sys.argv[1]]))
maps = open('/proc/self/maps').read()
print(json.dumps({'loaded': loaded, 'failed': cuda_libs.FAILED,
                  'mapped': sorted(p for p in loaded.values() if p in maps)}))
'''


def test_preload_opens_needed_copies_in_order_and_skips_the_rest(tmp_path):
    """A fake wheel tree holding copies of two real libraries libmxnet.so needs (libgfortran.so.3, which
    needs libquadmath.so.0) and a libnvblas that nothing needs: exactly the first two get loaded."""
    system_copy = next((p for p in SYSTEM_QUADMATH if os.path.exists(p)), None)
    if not system_copy:
        pytest.skip('no libquadmath.so.0 on this host')
    site = tmp_path / 'site'
    lib_dir = site / 'nvidia' / 'fake' / 'lib'
    lib_dir.mkdir(parents=True)
    shutil.copy(os.path.join(os.path.dirname(cuda_libs.find_libmxnet()), 'libgfortran.so.3'), str(lib_dir))
    shutil.copy(system_copy, str(lib_dir / 'libquadmath.so.0'))
    touch(str(lib_dir / 'libnvblas.so.11'))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop(cuda_libs.DISABLE_ENV, None)
    out = subprocess.run([sys.executable, '-c', PRELOAD_PROBE, str(site)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert list(result['loaded']) == ['libquadmath.so.0', 'libgfortran.so.3']   # dependency first
    assert result['failed'] == {}
    assert result['mapped'] == sorted(str(lib_dir / n) for n in ('libgfortran.so.3', 'libquadmath.so.0'))


def test_preload_can_be_switched_off(tmp_path):
    lib_dir = tmp_path / 'nvidia' / 'fake' / 'lib'
    touch(str(lib_dir / 'libgfortran.so.3'))     # would be FAILED if preload tried it
    env = dict(os.environ, PYTHONPATH=ROOT, **{cuda_libs.DISABLE_ENV: '1'})
    code = 'import sys; from recognizer import cuda_libs; cuda_libs.preload([sys.argv[1]]); ' \
           'print(len(cuda_libs.LOADED), len(cuda_libs.FAILED))'
    out = subprocess.run([sys.executable, '-c', code, str(tmp_path)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ['0', '0'], out.stderr
