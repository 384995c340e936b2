"""Writing what the dataset-preparation scripts produce: list files, ``classInd.txt``, and the
report of the videos left out of the lists.

A list line is ``<path> <frames> <0-based label>``. recognizer.data reads the last two fields as
the numbers and everything before them as the path, so a path may hold spaces and tabs; it only
must not start or end with whitespace or hold a line break.
"""
import os

from .errors import UserError

REPORT_LIMIT = 20


def read_lines(path, what, fix):
    """[(line number, stripped line)] of a text annotation file, blank lines left out.

    ``what`` names the file in the error when it is missing and ``fix`` says what to do.
    """
    if not os.path.isfile(path):
        raise UserError('%s: %s not found; %s' % (path, what, fix))
    with open(path, encoding='utf-8-sig') as f:
        # Official files may have CRLF line ends and end with blank lines.
        return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]


def write_if_changed(path, lines):
    """Write ``lines``; leave the file untouched (same mtime) when it already matches."""
    text = ''.join(line + '\n' for line in lines)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return False
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def unlistable(path):
    """Why ``path`` cannot be written as the path of a list line, or None."""
    try:
        path.encode('utf-8')
    except UnicodeEncodeError:
        return 'the name is not valid UTF-8; rename it'
    if '\n' in path or '\r' in path:
        return 'the name holds a line break; rename it'
    if path != path.strip():
        return 'the name starts or ends with whitespace, which a list line cannot keep; rename it'
    return None


def shown(path):
    """``path`` printable on any terminal (names that are not UTF-8 get U+FFFD)."""
    return path.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')


def write_class_ind(path, names):
    """UCF101's ``classInd.txt``: ``<1-based index> <name>`` per line; True when (re)written."""
    return write_if_changed(path, ['%d %s' % (i + 1, name) for i, name in enumerate(names)])


def split_list_files(dataset, splits):
    """(rawframes name, videos name, entries) of GluonCV's ``<dataset>_{train,val}_split_<k>_*.txt``
    for ``splits`` {(k, 'train'|'val'): entries}."""
    return [('%s_%s_split_%d_rawframes.txt' % (dataset, subset, k), '%s_%s_split_%d_videos.txt' % (dataset, subset, k),
             entries) for (k, subset), entries in sorted(splits.items())]


def write_lists(lists, frames, out_list_path, frame_dir):
    """Write list files; return (names written, names unchanged, {video: [refs]} missing).

    ``lists`` holds (rawframes file name or None, videos file name or None, entries) with entries
    (video, label, where it is named); ``frames`` {video: frame count} holds the videos that can be
    listed and ``frame_dir(video)`` gives a video's frame folder.
    """
    os.makedirs(out_list_path, exist_ok=True)
    written, unchanged, missing = [], [], {}
    for raw_name, video_name, entries in lists:
        raw, vid = [], []
        for video, label, ref in entries:
            if video not in frames:
                missing.setdefault(video, []).append(ref)
                continue
            raw.append('%s %d %d' % (frame_dir(video), frames[video], label))
            vid.append('%s %d %d' % (video, frames[video], label))
        for name, lines in ((raw_name, raw), (video_name, vid)):
            if name:
                changed = write_if_changed(os.path.join(out_list_path, name), lines)
                (written if changed else unchanged).append(name)
    return written, unchanged, missing


def check_some_readable(frames, errors, src_dir):
    """Refuse to write lists when no video could be read (after saying which and why)."""
    if not frames:
        report_left_out(errors, {}, src_dir)
        raise UserError('%s: none of the %d videos could be decoded; check the files and that OpenCV '
                        'can read their codec' % (src_dir, len(errors)))


def write_and_report(lists, frames, errors, out_list_path, frame_dir, src_dir, report_name, missing=None):
    """write_lists, a line saying what was written, then the report of left-out videos (those
    write_lists finds missing and ``missing`` {video: [refs]})."""
    written, unchanged, not_found = write_lists(lists, frames, out_list_path, frame_dir)
    for video, refs in (missing or {}).items():
        not_found.setdefault(video, []).extend(refs)
    missing = not_found
    print('list files in %s: %d written, %d unchanged' % (out_list_path, len(written), len(unchanged)))
    report_left_out(errors, missing, src_dir, os.path.join(out_list_path, report_name))
    return missing


def report_left_out(errors, missing, src_dir, report_path=None):
    """Print every unreadable or missing video once, after the progress output.

    Beyond REPORT_LIMIT lines the rest go only to ``report_path`` (which always gets them all;
    a report of an earlier run is removed when nothing is left out).
    """
    absent = sorted(v for v in missing if v not in errors)
    lines = ['%s: %s' % (shown(os.path.join(src_dir, v)), errors[v]) for v in sorted(errors)]
    for video in absent:
        refs = missing[video]
        more = ' and %d more' % (len(refs) - 1) if len(refs) > 1 else ''
        lines.append('%s: not found (named in %s%s)' % (shown(os.path.join(src_dir, video)), refs[0], more))
    if report_path and lines:
        write_if_changed(report_path, lines)
    elif report_path and os.path.isfile(report_path):
        os.remove(report_path)
    if not lines:
        return
    print('%d video(s) left out of the lists:' % len(lines))
    for line in lines[:REPORT_LIMIT]:
        print('  ' + line)
    if len(lines) > REPORT_LIMIT:
        print('  ... and %d more' % (len(lines) - REPORT_LIMIT))
    if report_path:
        print('the full list is in %s' % report_path)
