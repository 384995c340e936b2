"""Inputs of the inference tools (inference.py, feat_extract.py): video files or frame folders.

They come from the command line or from a GluonCV-style data list (``--data-list``): one
input per line, the path first, optionally followed by the frame count and label of GluonCV's
list format (ignored); ``--need-root`` puts ``--data-dir`` in front of each path. The name of
an input (for ``<name>_feat.npy``, ``<name>_logits.npy``) is its file or folder name without
the video extension.
"""
import glob
import os

from . import data
from .errors import UserError

VIDEO_EXTENSIONS = ('.avi', '.mp4', '.mkv', '.webm', '.mov', '.mpg', '.mpeg', '.m4v', '.flv', '.wmv')


def add_data_list_args(p):
    """GluonCV's flags for inputs listed in a file."""
    p.add_argument('--data-list', type=str, default='',
                   help='file with one video (or frame folder) per line; extra fields after the path are ignored.')
    p.add_argument('--data-dir', type=str, default='', help='root of the --data-list paths (with --need-root).')
    p.add_argument('--need-root', action='store_true', help='--data-list paths are relative to --data-dir.')
    p.add_argument('--video-loader', action='store_true', help='accepted: videos and frame folders are told apart '
                                                               'by what the path is.')
    p.add_argument('--use-decord', action='store_true', help='accepted: videos are always read with decord.')


def _list_entry(line):
    """The path of a data-list line: the whole line, or all but GluonCV's trailing "<frames> <label>"."""
    fields = line.split()
    if len(fields) >= 3 and all(f.lstrip('-').isdigit() for f in fields[-2:]):
        fields = fields[:-2]
    return ' '.join(fields)


def read_data_list(path, data_dir='', need_root=False):
    """Input paths named by a data list, in order."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise UserError('--data-list %s does not exist; pass a file with one video or frame folder per line' % path)
    inputs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                entry = _list_entry(line)
                inputs.append(os.path.join(os.path.expanduser(data_dir), entry) if need_root else entry)
    if not inputs:
        raise UserError('--data-list %s is empty; it needs one video or frame folder per line' % path)
    return inputs


def collect_inputs(opt):
    """The positional inputs, then those of --data-list; a UserError when there are none."""
    inputs = list(getattr(opt, 'inputs', []) or [])
    if opt.data_list:
        inputs += read_data_list(opt.data_list, opt.data_dir, opt.need_root)
    if not inputs:
        raise UserError('no input: name videos or frame folders, or pass --data-list FILE')
    return inputs


def input_name(path):
    """``v_Archery_g01_c01`` for ``.../v_Archery_g01_c01.avi`` and for the frame folder ``.../v_Archery_g01_c01/``."""
    base = os.path.basename(os.path.normpath(path))
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in VIDEO_EXTENSIONS else base


def unique_names(paths):
    """{path: name}; a UserError when two inputs would write the same output files."""
    seen = {}
    for path in paths:
        name = input_name(path)
        if name in seen and seen[name] != path:
            raise UserError('%s and %s both have the name %s, so their output files would collide; rename one or '
                            'run them separately' % (seen[name], path, name))
        seen[name] = path
    return {path: name for name, path in seen.items()}


def as_clip(path):
    """(Clip, is_video) for an input path; data.BadSample when there is nothing to read."""
    if os.path.isdir(path):
        count = len(glob.glob(os.path.join(glob.escape(path), 'img_*.jpg')))
        if count == 0:
            raise data.BadSample(path, 'is a folder without img_00001.jpg-style frames')
        return data.Clip(path, count, -1, 0), False
    if not os.path.exists(path):
        raise data.BadSample(path, 'does not exist')
    return data.Clip(path, 0, -1, 0), True


def load_views(path, opt):
    """The test-protocol views (evaluation.ViewDataset) of one input; BadSample/UserError when unreadable."""
    from .evaluation import ViewDataset
    clip, video = as_clip(path)
    opt.video_loader = video
    return ViewDataset([clip], opt).load(0, None)
