"""Let a CUDA build of MXNet (mxnet-cu112) use the CUDA 11 libraries installed as pip wheels.

The nvidia-*-cu11 wheels (requirements-gpu.txt) put libcudart.so.11.0, libcublas.so.11, libcudnn.so.8, ...
in site-packages/nvidia/<part>/lib, where the dynamic loader never looks, so `import mxnet` fails on a
host without a system CUDA 11 toolkit. Opening the ones libmxnet.so needs first, with RTLD_GLOBAL and each
one after the libraries it needs, registers their sonames in the process: when mxnet then opens libmxnet.so, the
loader matches its DT_NEEDED entries against the copies already loaded. No root, no LD_LIBRARY_PATH.

`import recognizer` calls preload() once, so anything importing recognizer before mxnet gets it. On a host
without nvidia wheels it only looks for a few directories (a fraction of a millisecond). Set
RECOGNIZER_NO_CUDA_PRELOAD=1 to switch it off. The ELF reader here is also what scripts/check_env.py
uses to list the libraries libmxnet.so needs without importing mxnet.
"""
import os
import struct
import sys

DISABLE_ENV = 'RECOGNIZER_NO_CUDA_PRELOAD'

# What preload() did in this process: soname -> path, and soname -> error text.
LOADED = {}
FAILED = {}

_DT_NEEDED, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 14, 15, 29
_SHT_DYNAMIC = 6


def nvidia_lib_dirs(paths=None):
    """The site-packages/nvidia/*/lib directories reachable from ``paths`` (default sys.path), in order."""
    found = []
    for entry in sys.path if paths is None else paths:
        root = os.path.join(entry or '.', 'nvidia')
        if os.path.isdir(root):
            for part in sorted(os.listdir(root)):
                lib_dir = os.path.join(root, part, 'lib')
                if os.path.isdir(lib_dir) and lib_dir not in found:
                    found.append(lib_dir)
    return found


def shared_libraries(lib_dirs):
    """{file name: path} of the shared libraries in ``lib_dirs``; the first directory wins a name clash."""
    libs = {}
    for lib_dir in lib_dirs:
        for name in sorted(os.listdir(lib_dir)):
            path = os.path.join(lib_dir, name)
            if (name.startswith('lib') and '.so' in name and name not in libs
                    and os.path.isfile(path) and not os.path.islink(path)):
                libs[name] = path
    return libs


def load_order(needs):
    """Names of ``needs`` ({name: [names it needs]}) ordered so that every name comes after the ones it
    needs; needs outside the mapping are ignored, ties go alphabetically, and a cycle is broken
    rather than refused (the loader would still open such a set)."""
    order, done, active = [], set(), set()

    def visit(name):
        if name in done or name in active:
            return
        active.add(name)
        for dep in sorted(needs.get(name, ())):
            if dep in needs:
                visit(dep)
        active.discard(name)
        done.add(name)
        order.append(name)

    for name in sorted(needs):
        visit(name)
    return order


def find_libmxnet():
    """Path of the libmxnet.so `import mxnet` would load, found without importing mxnet (None if absent)."""
    import importlib.util
    env = os.environ.get('MXNET_LIBRARY_PATH')
    if env and os.path.isfile(env):
        return env
    spec = importlib.util.find_spec('mxnet')
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, 'libmxnet.so')
        if os.path.isfile(path):
            return path
    return None


def needed_closure(roots, libs, read=None):
    """{name: [needed names]} for the names of ``libs`` that ``roots`` need directly or through each other.

    Only these are loaded: the wheels also hold libraries that must never be preloaded globally
    (libnvblas and libcufftw would interpose the BLAS/FFTW symbols of everything loaded after them).
    """
    read = read or (lambda path: read_dynamic(path)['needed'])
    needs, todo = {}, [n for n in roots if n in libs]
    while todo:
        name = todo.pop()
        if name in needs:
            continue
        try:
            needs[name] = read(libs[name])
        except (OSError, ValueError):
            needs[name] = []     # not an ELF we can read: let dlopen say what is wrong
        todo.extend(n for n in needs[name] if n in libs and n not in needs)
    return needs


def preload(paths=None):
    """Open the pip CUDA libraries libmxnet.so needs, with RTLD_GLOBAL, in dependency order; returns LOADED.

    Failures are recorded in FAILED and never raised: `import mxnet` then reports what is missing,
    and scripts/check_env.py explains it.
    """
    if LOADED or os.environ.get(DISABLE_ENV, '') not in ('', '0'):
        return LOADED
    lib_dirs = nvidia_lib_dirs(paths)
    libmxnet = find_libmxnet() if lib_dirs else None
    if not libmxnet:
        return LOADED
    import ctypes   # only here: keeps `import recognizer` cheap on hosts without the wheels
    libs = shared_libraries(lib_dirs)
    try:
        roots = read_dynamic(libmxnet)['needed']
    except (OSError, ValueError):
        return LOADED
    for name in load_order(needed_closure(roots, libs)):
        try:
            ctypes.CDLL(libs[name], mode=ctypes.RTLD_GLOBAL)
            LOADED[name] = libs[name]
        except OSError as err:
            FAILED[name] = str(err)
    return LOADED


# --------------------------------------------------------------- ELF dynamic section

def _header(f):
    ident = f.read(16)
    if len(ident) < 16 or ident[:4] != b'\x7fELF':
        raise ValueError('not an ELF file')
    is64, endian = ident[4] == 2, '<' if ident[5] == 1 else '>'
    f.seek(0)
    raw = f.read(64 if is64 else 52)
    if is64:
        shoff, shentsize, shnum = struct.unpack(endian + '40xQ10xHH2x', raw)
    else:
        shoff, shentsize, shnum = struct.unpack(endian + '32xI10xHH2x', raw)
    return is64, endian, shoff, shentsize, shnum


def _sections(f, is64, endian, shoff, shentsize, shnum):
    """(type, offset, size, link) of every section."""
    fmt = endian + ('4xI16xQQI' if is64 else '4xI8xIII')
    out = []
    for i in range(shnum):
        f.seek(shoff + i * shentsize)
        out.append(struct.unpack(fmt, f.read(struct.calcsize(fmt))))
    return out


def read_dynamic(path):
    """DT_NEEDED, DT_SONAME, DT_RPATH and DT_RUNPATH of the ELF shared object at ``path``.

    Returns {'needed': [...], 'soname': str or None, 'rpath': [...], 'runpath': [...], 'elf64': bool};
    raises ValueError for a file that is not ELF.
    """
    with open(path, 'rb') as f:
        is64, endian, shoff, shentsize, shnum = _header(f)
        sections = _sections(f, is64, endian, shoff, shentsize, shnum)
        entries, strtab = [], b''
        for kind, offset, size, link in sections:
            if kind == _SHT_DYNAMIC:
                f.seek(offset)
                raw = f.read(size)
                entry = endian + ('qQ' if is64 else 'iI')
                entries = list(struct.iter_unpack(entry, raw[:len(raw) - len(raw) % struct.calcsize(entry)]))
                _, str_offset, str_size, _ = sections[link]
                f.seek(str_offset)
                strtab = f.read(str_size)
                break

    def text(index):
        return strtab[index:strtab.index(b'\0', index)].decode('utf-8', 'replace')

    result = {'needed': [], 'soname': None, 'rpath': [], 'runpath': [], 'elf64': is64}
    for tag, value in entries:
        if tag == _DT_NEEDED:
            result['needed'].append(text(value))
        elif tag == _DT_SONAME:
            result['soname'] = text(value)
        elif tag in (_DT_RPATH, _DT_RUNPATH):
            result['rpath' if tag == _DT_RPATH else 'runpath'].extend(p for p in text(value).split(':') if p)
    return result
