"""One run per save dir: an exclusive lock held for the whole life of the writing process.

The lock is ``fcntl.flock`` on ``<save dir>/.run.lock``, a file that records the holder (pid, host,
start time). The kernel drops a flock when its process dies, however it dies, so a lock left by a
killed run never blocks the next one. On filesystems where flock does not work (some NFS setups
answer ENOLCK), the recorded holder is checked instead: a live process with that pid on this host
blocks; a holder on another host cannot be checked, so the run goes on with a warning.
"""
import datetime
import errno
import fcntl
import json
import logging
import os
import socket

from .errors import UserError

LOCK_NAME = '.run.lock'
logger = logging.getLogger('train_recognizer')


def _holder_text(path):
    try:
        with open(path) as f:
            holder = json.load(f)
        return 'pid %s on %s since %s' % (holder['pid'], holder['host'], holder['since'])
    except (OSError, ValueError, KeyError, TypeError):
        return 'a process that has not written its name yet'


def _refuse(save_dir, path):
    raise UserError('--save-dir %s is in use by another run (%s; lock file %s); wait for it to finish or stop it, '
                    'or choose another --save-dir' % (save_dir, _holder_text(path), path))


def _recorded_holder_alive(path):
    """Without working flock: is the recorded holder a live process on this host?"""
    try:
        with open(path) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        return False
    if holder.get('host') != socket.gethostname():
        logger.warning('cannot lock %s (the filesystem has no working flock) and it names a run on %s; '
                       'make sure that run has ended', path, holder.get('host'))
        return False
    try:
        os.kill(int(holder['pid']), 0)
    except (OSError, KeyError, ValueError):
        return False
    return int(holder['pid']) != os.getpid()


def _locks_unsupported(err):
    return err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def check_not_in_use(save_dir):
    """Refuse at start if a live run holds the save dir, without creating or changing anything."""
    path = os.path.join(save_dir, LOCK_NAME)
    if not os.path.exists(path):
        return
    with open(path) as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            _refuse(save_dir, path)
        except OSError as err:
            if not _locks_unsupported(err):
                raise
            if _recorded_holder_alive(path):
                _refuse(save_dir, path)


class SaveDirLock(object):
    """Holds the save dir's lock until the process ends (or ``release``)."""

    def __init__(self, save_dir):
        self.save_dir = save_dir
        self.path = os.path.join(save_dir, LOCK_NAME)
        self.file = None

    def acquire(self):
        handle = open(self.path, 'a+')
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            _refuse(self.save_dir, self.path)
        except OSError as err:
            if not _locks_unsupported(err):
                handle.close()
                raise
            if _recorded_holder_alive(self.path):
                handle.close()
                _refuse(self.save_dir, self.path)
        holder = {'pid': os.getpid(), 'host': socket.gethostname(),
                  'since': datetime.datetime.now().isoformat(timespec='seconds')}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder) + '\n')
        handle.flush()
        self.file = handle
        return self

    def release(self):
        if self.file is not None:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
            self.file.close()
            self.file = None
