#!/usr/bin/env python
"""Environment doctor: can this host train with these train_recognizer.py flags?

Checks Python and package versions, the MXNet build (CPU or CUDA) and, for a CUDA build, every shared
library libmxnet.so needs and where the loader would find it -- read from the ELF file before
`import mxnet` is tried, because a CUDA wheel without its libraries cannot even be imported -- then
the GPUs the driver and MXNet see, the pretrained weights the flags need, and free disk.
Ends with one line per problem and what to do; exit status 0 when the host can train, 1 otherwise.

    python scripts/check_env.py --model vgg16_ucf101 --num-gpus 1 --dtype float16
"""
import argparse
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import sysconfig

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognizer import cuda_libs  # noqa: E402  (importing recognizer preloads pip CUDA libraries)
from recognizer.errors import run_cli  # noqa: E402
from recognizer.runtime import amp_dtype, amp_problem, cpu_flags  # noqa: E402

GPU_INSTALL = 'pip install -r requirements-gpu.txt in a fresh virtualenv'
CPU_INSTALL = 'pip install -r requirements.txt'
DRIVER_LIB = 'libcuda.so.1'
BUILD_FEATURES = ('CUDA', 'CUDNN', 'NCCL', 'MKLDNN', 'DIST_KVSTORE')
# Which library in DT_NEEDED reveals a feature when mxnet cannot be imported.
FEATURE_LIBS = {'CUDA': 'libcudart.so', 'CUDNN': 'libcudnn.so', 'NCCL': 'libnccl.so'}


class Report:
    """Rows to print and problems (each with what to do)."""

    def __init__(self):
        self.problems = []

    def row(self, what, text):
        print('%-14s %s' % (what, text))

    def problem(self, text):
        self.problems.append(text)


# --------------------------------------------------------------- arguments

def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Check that this host can run train_recognizer.py with these flags.')
    p.add_argument('--model', type=str, default=None, help='model-zoo name, e.g. vgg16_ucf101 (checks its weights).')
    p.add_argument('--num-gpus', type=int, default=0, help='GPUs the training will use.')
    p.add_argument('--dtype', type=str, default='float32', help='training data type.')
    p.add_argument('--use-amp', action='store_true', help='automatic mixed precision.')
    p.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default=None,
                   help='the type of --use-amp (default: float16 on GPUs, bfloat16 on CPUs).')
    p.add_argument('--batch-norm', action='store_true', help='VGG16-BN backbone for vgg16_* models.')
    p.add_argument('--use-pretrained', action='store_true', help='start from the model zoo\'s weights.')
    p.add_argument('--hashtag', type=str, default='', help='hashtag of the pretrained weights.')
    p.add_argument('--no-pretrained-base', action='store_true', help='train the backbone from scratch.')
    p.add_argument('--data-dir', type=str, default='~/.mxnet/datasets/ucf101/rawframes', help='data root.')
    p.add_argument('--save-dir', type=str, default='params', help='output folder of the training.')
    p.add_argument('--min-free-gb', type=float, default=5.0,
                   help='free space needed at --save-dir (a vgg16 checkpoint with its states is ~1.1 GB).')
    return p.parse_args(argv)


# --------------------------------------------------------------- versions

def distribution_version(name):
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def mxnet_distributions():
    """{distribution name: version} of every installed mxnet* wheel (mxnet, mxnet-cu112, ...)."""
    from importlib import metadata
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata['Name'] or '').lower()
        if name == 'mxnet' or name.startswith('mxnet-'):
            found[name] = dist.version
    return found


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r'\d+', text or '')[:3])


def check_python(rep):
    version = '%d.%d.%d' % sys.version_info[:3]
    ok = (3, 8) <= sys.version_info[:2] <= (3, 11)
    rep.row('Python', '%s  %s' % (version, 'ok' if ok else 'NOT SUPPORTED (3.8-3.11)'))
    if not ok:
        rep.problem('Python %s: mxnet 1.9.1 needs numpy<1.24, which has no wheels past Python 3.11; create the '
                    'virtualenv with Python 3.8-3.11' % version)


def check_versions(rep):
    numpy = distribution_version('numpy')
    numpy_ok = numpy is not None and version_tuple(numpy) < (1, 24)
    rep.row('numpy', '%s  %s' % (numpy, 'ok' if numpy_ok else 'NEED numpy<1.24'))
    if not numpy_ok:
        rep.problem('numpy %s: mxnet 1.9.1 needs numpy<1.24 (it uses np.bool); pip install "numpy<1.24"' % numpy)
    dists = mxnet_distributions()
    mx_text = ', '.join('%s %s' % kv for kv in sorted(dists.items())) or 'not installed'
    mx_ok = len(dists) == 1 and list(dists.values())[0] == '1.9.1'
    rep.row('mxnet', '%s  %s' % (mx_text, 'ok' if mx_ok else 'NEED exactly one of mxnet/mxnet-cu112 1.9.1'))
    if len(dists) > 1:
        rep.problem('%s are installed together and overwrite each other\'s files; pip uninstall -y %s, then %s'
                    % (mx_text, ' '.join(sorted(dists)), GPU_INSTALL + ' (GPU) or ' + CPU_INSTALL + ' (CPU)'))
    elif not mx_ok:
        rep.problem('mxnet: %s; %s (CPU) or %s (GPU)' % (mx_text, CPU_INSTALL, GPU_INSTALL))
    gluoncv = distribution_version('gluoncv')
    rep.row('gluoncv', '%s  %s' % (gluoncv, 'ok' if gluoncv == '0.10.5.post0' else 'NEED 0.10.5.post0'))
    if gluoncv != '0.10.5.post0':
        rep.problem('gluoncv %s: pip install gluoncv==0.10.5.post0' % gluoncv)
    return dists


def check_module(rep, module, pip_name):
    try:
        mod = __import__(module)
        rep.row(module, '%s  ok' % getattr(mod, '__version__', '?'))
    except Exception as err:  # ImportError or a missing shared library (OSError)
        rep.row(module, 'CANNOT IMPORT: %s' % one_line(err))
        rep.problem('import %s failed (%s); pip install %s' % (module, one_line(err), pip_name))


def one_line(err):
    lines = [x.strip() for x in str(err).strip().splitlines() if x.strip()]
    return '%s: %s' % (type(err).__name__, lines[-1] if lines else '')[:300]


# --------------------------------------------------------------- libmxnet.so and its libraries

def is_elf64(path):
    with open(path, 'rb') as f:
        return f.read(5)[4:5] == b'\x02'


def expand_origin(dirs, origin):
    return [d.replace('${ORIGIN}', origin).replace('$ORIGIN', origin) for d in dirs]


def loader_dirs(info, origin):
    """[(directory, how)] in the order ld.so searches for a DT_NEEDED name of the object ``info`` describes:
    DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH; the cache and the default
    directories come after these (see resolve)."""
    dirs = []
    if not info['runpath']:
        dirs += [(d, 'rpath') for d in expand_origin(info['rpath'], origin)]
    dirs += [(d, 'LD_LIBRARY_PATH') for d in os.environ.get('LD_LIBRARY_PATH', '').split(':') if d]
    dirs += [(d, 'runpath') for d in expand_origin(info['runpath'], origin)]
    return dirs


def default_dirs():
    arch = sysconfig.get_config_var('MULTIARCH') or ''
    dirs = ['/lib64', '/usr/lib64', '/lib', '/usr/lib']
    if arch:
        dirs = ['/lib/' + arch, '/usr/lib/' + arch] + dirs
    return [(d, 'default dir') for d in dirs]


def ld_cache():
    """{soname: [paths]} from `ldconfig -p`, the loader's cache (empty when ldconfig is not there)."""
    exe = shutil.which('ldconfig') or next((p for p in ('/sbin/ldconfig', '/usr/sbin/ldconfig')
                                           if os.path.exists(p)), None)
    if not exe:
        return {}
    try:
        out = subprocess.run([exe, '-p'], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    cache = {}
    for match in re.finditer(r'^\s*(\S+) \(([^)]*)\) => (\S+)$', out, re.M):
        cache.setdefault(match.group(1), []).append(match.group(3))
    return cache


def resolve(name, info, origin, cache):
    """(path, how) where the loader finds ``name`` for this object, or None; the pip CUDA libraries
    count when recognizer.cuda_libs preloaded them, as the loader then reuses the loaded copy."""
    if '/' in name:
        return (name, 'path') if os.path.isfile(name) else None
    if name in cuda_libs.LOADED:
        return cuda_libs.LOADED[name], 'pip wheel, preloaded'
    wanted = info['elf64']
    candidates = [(os.path.join(d, name), how) for d, how in loader_dirs(info, origin)]
    candidates += [(p, 'ld.so.cache') for p in cache.get(name, [])]
    candidates += [(os.path.join(d, name), how) for d, how in default_dirs()]
    for path, how in candidates:
        if os.path.isfile(path) and is_elf64(path) == wanted:
            return path, how
    return None


def library_report(libmxnet):
    """Every shared library libmxnet.so needs, directly or through another one:
    {'needed': libmxnet's own DT_NEEDED, 'resolved': {name: (path, how)}, 'missing': {name: [needed by]}}."""
    cache = ld_cache()
    resolved, missing = {}, {}
    top = cuda_libs.read_dynamic(libmxnet)
    queue, seen = [(libmxnet, top)], {os.path.realpath(libmxnet)}
    while queue:
        path, info = queue.pop(0)
        for name in info['needed']:
            if name in resolved:
                continue
            hit = resolve(name, info, os.path.dirname(path), cache)
            if hit is None:
                missing.setdefault(name, []).append(os.path.basename(path))
                continue
            resolved[name] = hit
            missing.pop(name, None)
            if os.path.realpath(hit[0]) not in seen:
                seen.add(os.path.realpath(hit[0]))
                try:
                    queue.append((hit[0], cuda_libs.read_dynamic(hit[0])))
                except (OSError, ValueError):
                    pass
    return {'needed': top['needed'], 'resolved': resolved, 'missing': missing}


def where_missing_comes_from(name):
    if name == DRIVER_LIB:
        return 'it comes with the NVIDIA driver: install the driver (no GPU on this host?)'
    pip_copy = cuda_libs.shared_libraries(cuda_libs.nvidia_lib_dirs()).get(name)
    if pip_copy:
        reason = cuda_libs.FAILED.get(name, 'preload switched off (%s)' % cuda_libs.DISABLE_ENV)
        return 'a pip wheel has it at %s but preloading failed: %s' % (pip_copy, reason)
    if name.startswith(('libcu', 'libnv', 'libnccl')):
        return 'CUDA 11 runtime library: ' + GPU_INSTALL
    return 'install the system package that provides it'


def check_libraries(rep, libmxnet):
    """Print the libraries libmxnet.so needs; returns the build features they reveal."""
    report = library_report(libmxnet)
    links = {f: any(n.startswith(lib) for n in report['needed']) for f, lib in FEATURE_LIBS.items()}
    rep.row('libmxnet.so', libmxnet)
    if not links['CUDA']:
        rep.row('  libraries', '%d needed, CPU build (no CUDA libraries)%s' % (
            len(report['resolved']) + len(report['missing']), ', all resolve' if not report['missing'] else ''))
    else:
        for name, (path, how) in sorted(report['resolved'].items()):
            if name.startswith(('libcu', 'libnv', 'libnccl')):
                rep.row('', '%-22s %s (%s)' % (name, path, how))
    for name, needers in sorted(report['missing'].items()):
        rep.row('', '%-22s MISSING (needed by %s)' % (name, ', '.join(needers)))
        rep.problem('%s not found: %s' % (name, where_missing_comes_from(name)))
    return links


# --------------------------------------------------------------- GPU kernels inside libmxnet.so

FATBIN_MAGIC = struct.pack('<I', 0xBA55ED50)
FATBIN_CUBIN, FATBIN_PTX = 2, 1


def kernel_archs(path):
    """{'sm': sorted SASS architectures, 'ptx': sorted PTX architectures} of the CUDA fat binaries in ``path``
    (e.g. sm [50, 60, 70, 80, 86]). Each fat binary: a 16-byte header (magic, version, header size, payload
    size) and entries whose own header gives kind (2 = cubin, 1 = PTX), size and, at byte 28, the arch."""
    found = {FATBIN_CUBIN: set(), FATBIN_PTX: set()}
    with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = data.find(FATBIN_MAGIC)
        while pos >= 0 and pos + 16 <= len(data):
            _, version, head, size = struct.unpack_from('<IHHQ', data, pos)
            entry, end = pos + head, min(pos + head + size, len(data))
            while version == 1 and head == 16 and entry + 32 <= end:
                kind, _, entry_head, payload = struct.unpack_from('<HHIQ', data, entry)
                if kind in found:
                    found[kind].add(struct.unpack_from('<I', data, entry + 28)[0])
                if entry_head == 0:
                    break
                entry += entry_head + payload
            pos = data.find(FATBIN_MAGIC, max(end, pos + 4))
    return {'sm': sorted(found[FATBIN_CUBIN]), 'ptx': sorted(found[FATBIN_PTX])}


def runs_on(cc, archs):
    """Whether kernels ``archs`` run on a GPU of compute capability ``cc`` ('8.9'): a cubin for sm_XY runs on
    X.Z for Z >= Y; PTX for compute_XY is compiled by the driver for any newer GPU."""
    major, minor = (int(x) for x in cc.split('.'))
    if any(a // 10 == major and a % 10 <= minor for a in archs['sm']):
        return True
    return any(a <= major * 10 + minor for a in archs['ptx'])


def describe_archs(archs):
    text = ' '.join('sm_%d' % a for a in archs['sm']) or 'no SASS'
    return text + ('; PTX ' + ' '.join('compute_%d' % a for a in archs['ptx']) if archs['ptx'] else '; no PTX')


# --------------------------------------------------------------- import mxnet, build, GPUs

def import_mxnet(rep, links):
    """mxnet module, or None; prints the build's features (from libmxnet's links if import fails)."""
    try:
        import mxnet as mx
    except Exception as err:  # OSError from the loader, MXNetError, numpy incompatibilities
        rep.row('import mxnet', 'FAILED: %s' % one_line(err))
        rep.problem('import mxnet failed (%s); fix the problems above first' % one_line(err))
        shown = ', '.join('%s %s' % (f, 'on' if links.get(f) else '?') for f in FEATURE_LIBS)
        rep.row('build', '%s (from libmxnet.so\'s links; others unknown)' % shown)
        return None
    features = mx.runtime.Features()
    rep.row('build', ', '.join('%s %s' % (f, 'on' if features.is_enabled(f) else 'off') for f in BUILD_FEATURES))
    return mx


def driver_gpus():
    """(driver version, [(name, 'major.minor')] or an error text) from the driver's libcuda.so.1, or None
    without a driver. Independent of mxnet, so it works when `import mxnet` does not."""
    import ctypes
    try:
        cuda = ctypes.CDLL(DRIVER_LIB)
    except OSError:
        return None
    try:
        return query_driver(cuda)
    except AttributeError as err:   # a libcuda.so.1 without the driver API: not a real driver
        return 0, 'not a usable driver (%s)' % one_line(err)


def query_driver(cuda):
    import ctypes
    version, count = ctypes.c_int(), ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(version))
    status = cuda.cuInit(0)
    if status != 0:
        return version.value, 'cuInit failed with CUDA error %d' % status
    cuda.cuDeviceGetCount(ctypes.byref(count))
    gpus = []
    for i in range(count.value):
        dev, major, minor, name = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.create_string_buffer(256)
        cuda.cuDeviceGet(ctypes.byref(dev), i)
        cuda.cuDeviceGetName(name, 256, dev)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)  # ..._MINOR
        gpus.append((name.value.decode(errors='replace'), '%d.%d' % (major.value, minor.value)))
    return version.value, gpus


def mxnet_gpu_count(mx):
    try:
        return mx.context.num_gpus(), None
    except Exception as err:  # MXNetError: CUDA driver/runtime problems
        return 0, one_line(err)


def check_driver(rep, archs):
    """Print the driver's GPUs; a problem for each GPU that libmxnet.so has no kernels for."""
    drv = driver_gpus()
    if drv is None:
        rep.row('driver', 'no %s (no NVIDIA driver)' % DRIVER_LIB)
        return
    version = 'CUDA driver API %d.%d' % (drv[0] // 1000, drv[0] % 1000 // 10)
    if isinstance(drv[1], str):
        rep.row('driver', '%s, %s' % (version, drv[1]))
        rep.problem('the NVIDIA driver does not start (%s): check nvidia-smi and the driver installation' % drv[1])
        return
    rep.row('driver', '%s, %d GPU(s)' % (version, len(drv[1])))
    for i, (name, cc) in enumerate(drv[1]):
        fits = archs is None or runs_on(cc, archs)
        rep.row('', 'gpu(%d) %s, compute capability %s%s' % (i, name, cc, '' if fits else ': NO KERNELS'))
        if not fits:
            rep.problem('gpu(%d) %s has compute capability %s, but this mxnet build has kernels only for %s: '
                        'it cannot train on this GPU (use a GPU of compute capability 5.0-8.x, e.g. V100, T4, '
                        'A100, A10, L4)' % (i, name, cc, describe_archs(archs)))


def check_gpus(rep, mx, archs):
    """Print what the driver and MXNet see; returns the number of GPUs MXNet can use."""
    check_driver(rep, archs)
    if shutil.which('nvidia-smi'):
        smi = subprocess.run(['nvidia-smi', '--query-gpu=index,name,compute_cap,driver_version,memory.total',
                              '--format=csv,noheader'], capture_output=True, text=True, timeout=60)
        for line in (smi.stdout or smi.stderr).strip().splitlines():
            rep.row('nvidia-smi', line.strip())
    count, err = mxnet_gpu_count(mx) if mx is not None else (0, 'mxnet not imported')
    rep.row('mxnet GPUs', '%d%s' % (count, ' (%s)' % err if err else ''))
    return count


def check_flags(rep, opt, gpus, links, mx):
    """The problems of --num-gpus/--dtype/--use-amp on this host."""
    cuda_build = links['CUDA'] or (mx is not None and mx.runtime.Features().is_enabled('CUDA'))
    if opt.dtype not in ('float32', 'float16'):
        rep.problem('--dtype %s: the trainer supports float32 and float16' % opt.dtype)
    if opt.num_gpus > 0 and not cuda_build:
        rep.problem('--num-gpus %d with the CPU build of mxnet: pip uninstall -y mxnet, then %s; or train with '
                    '--num-gpus 0' % (opt.num_gpus, GPU_INSTALL))
    elif opt.num_gpus > gpus:
        rep.problem('--num-gpus %d, but mxnet sees %d GPU(s): fix the driver/library problems above, or use '
                    '--num-gpus %d' % (opt.num_gpus, gpus, gpus))
    if opt.num_gpus == 0 and opt.dtype == 'float16':
        rep.problem('--dtype float16 needs a GPU: on the CPU train with --dtype float32')
    amp = amp_problem(amp_dtype(opt.use_amp, opt.amp_dtype, opt.num_gpus), opt.num_gpus, cpu_flags())
    if amp:
        rep.problem(amp)


# --------------------------------------------------------------- weights and disk

def base_weights_name(model, batch_norm):
    """Name of the ImageNet weights gluoncv loads for ``model``'s backbone, or None if not known here."""
    if model.startswith('vgg16_'):
        return 'vgg16_bn' if batch_norm else 'vgg16'
    if model.startswith('inceptionv3_'):
        return 'inceptionv3'
    match = re.match(r'(?:i3d_)?(resnet\d+)_v1b?_', model)
    return match.group(1) + '_v1b' if match else None


def needed_weights(opt):
    """(model-store name, tag or None, what) the flags need, or None when training from scratch."""
    if opt.use_pretrained:
        return opt.model, opt.hashtag or None, 'pretrained weights'
    if opt.no_pretrained_base:
        return None
    name = base_weights_name(opt.model, opt.batch_norm)
    return (name, None, 'ImageNet-pretrained base weights') if name else ('', None, 'base weights')


def check_weights(rep, opt, mx):
    if not opt.model:
        rep.row('weights', 'not checked (pass --model)')
        return
    need = needed_weights(opt)
    if need is None:
        rep.row('weights', 'none needed (--no-pretrained-base)')
        return
    name, tag, what = need
    if not name:
        rep.row('weights', 'not checked: unknown backbone of --model %s' % opt.model)
        return
    if mx is None:
        rep.row('weights', 'not checked: needs a working `import mxnet` (gluoncv)')
        return
    from recognizer.models import model_cache_dir, weight_file_name
    path = os.path.join(model_cache_dir(), weight_file_name(name, tag))
    found = os.path.isfile(path)
    rep.row('weights', '%s %s' % (path, 'present' if found else 'MISSING'))
    if not found:
        rep.problem('--model %s needs %s (%s) in %s and the training host has no internet: copy the file '
                    'there (or set MXNET_HOME to a folder whose models/ has it), or add --no-pretrained-base'
                    % (opt.model, os.path.basename(path), what, model_cache_dir()))


def existing_parent(path):
    path = os.path.abspath(os.path.expanduser(path))
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_disk(rep, opt):
    for flag, path in (('--data-dir', opt.data_dir), ('--save-dir', opt.save_dir)):
        free_gb = shutil.disk_usage(existing_parent(path)).free / 2 ** 30
        rep.row('disk', '%s %s: %.1f GB free' % (flag, path, free_gb))
        if flag == '--save-dir' and free_gb < opt.min_free_gb:
            rep.problem('--save-dir %s has %.1f GB free, less than --min-free-gb %.1f: free space or save '
                        'elsewhere' % (path, free_gb, opt.min_free_gb))


# --------------------------------------------------------------- main

def main(argv=None):
    opt = parse_args(argv)
    rep = Report()
    check_python(rep)
    check_versions(rep)
    libmxnet = cuda_libs.find_libmxnet()
    links = check_libraries(rep, libmxnet) if libmxnet else dict.fromkeys(FEATURE_LIBS, False)
    mx = import_mxnet(rep, links) if libmxnet else None
    # Only after mxnet: `import decord` first makes a later `import mxnet` abort ("random_device could not be read").
    for module, pip_name in (('decord', 'decord==0.6.0'), ('cv2', 'opencv-python'), ('av', '"av>=12,<17"')):
        check_module(rep, module, pip_name)
    archs = kernel_archs(libmxnet) if links['CUDA'] else None
    if archs is not None:
        rep.row('kernels', describe_archs(archs))
    gpus = check_gpus(rep, mx, archs)
    check_flags(rep, opt, gpus, links, mx)
    check_weights(rep, opt, mx)
    check_disk(rep, opt)
    print()
    if not rep.problems:
        print('OK: this host can train with these flags')
        return 0
    print('%d problem(s):' % len(rep.problems))
    for text in rep.problems:
        print('- ' + text)
    return 1


if __name__ == '__main__':
    sys.exit(run_cli(main))
