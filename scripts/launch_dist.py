"""Launch an MXNet parameter-server job: one scheduler, S servers and N workers.

Follows the conventions of MXNet's tools/launch.py and the dmlc tracker: every
process runs the same COMMAND and learns its part from DMLC_ROLE,
DMLC_PS_ROOT_URI/PORT and DMLC_NUM_SERVER/WORKER.  In mxnet 1.9.1 a process
whose DMLC_ROLE is ``server`` or ``scheduler`` serves inside ``import mxnet``
and exits there when the workers finish, so the training script needs no
special case for those roles.

    python scripts/launch_dist.py -n 2 -s 1 python train_recognizer.py --kvstore dist_sync ...
    python scripts/launch_dist.py -n 4 -s 2 -H hosts --launcher ssh python train_recognizer.py ...

Each process's output is relayed line by line, prefixed with ``[worker 0]``,
``[server 1]`` or ``[scheduler]``.  Worker numbers are launch order (also
exported as LAUNCH_WORKER_INDEX); the kvstore rank is assigned by the scheduler
and may differ, so training code must use ``kv.rank``.

If any process fails, all others are stopped (SIGTERM to each process group,
SIGKILL after --grace seconds) and the launcher exits non-zero.  SIGINT/SIGTERM
to the launcher stop everything the same way.
"""
import argparse
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from recognizer.errors import UserError, run_cli  # noqa: E402

# The dmlc tracker's default port; only used for ssh, where we cannot probe the first host.
DEFAULT_SSH_PORT = 9091
# Forwarded to remote hosts when set here, because ssh does not carry the environment.
PASSTHROUGH_PREFIXES = ('PS_', 'MXNET_', 'DMLC_PS_VAN_TYPE', 'DMLC_PS_WATER_MARK')
PASSTHROUGH_NAMES = ('OMP_NUM_THREADS',)
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors become one-line UserErrors (exit 2, no usage dump)."""

    def error(self, message):
        raise UserError('%s (see --help)' % message)


def build_parser():
    parser = _Parser(description=__doc__.split('\n')[0],
                     usage='%(prog)s -n WORKERS [-s SERVERS] [options] COMMAND ...')
    parser.add_argument('-n', '--num-workers', type=int, required=True, help='number of workers')
    parser.add_argument('-s', '--num-servers', type=int, default=None,
                        help='number of servers (default: same as --num-workers, as in MXNet)')
    parser.add_argument('-H', '--hostfile', help='ssh launcher: one host per line, optionally host:slots')
    parser.add_argument('--launcher', choices=['local', 'ssh'], default=None,
                        help='default: ssh if --hostfile is given, else local')
    parser.add_argument('--port', type=int, default=None,
                        help='scheduler port (default: a free port for local, %d for ssh)' % DEFAULT_SSH_PORT)
    parser.add_argument('--interface', help='network interface ps-lite binds to (sets DMLC_INTERFACE)')
    parser.add_argument('--env', action='append', default=[], metavar='KEY=VAL',
                        help='extra environment variable for every process (repeatable)')
    parser.add_argument('--grace', type=float, default=5.0,
                        help='seconds between SIGTERM and SIGKILL when stopping (default 5)')
    parser.add_argument('--server-timeout', type=float, default=30.0,
                        help='seconds servers/scheduler get to exit after all workers succeeded (default 30)')
    parser.add_argument('--timeout', type=float, default=0.0,
                        help='stop everything and fail after this many seconds (default 0: no limit)')
    parser.add_argument('command', nargs=argparse.REMAINDER, help='command every process runs')
    return parser


def parse_args(argv):
    args = build_parser().parse_args(argv)
    if args.command and args.command[0] == '--':
        args.command = args.command[1:]
    if not args.command:
        raise UserError('no COMMAND given; usage: launch_dist.py -n 2 -s 1 python train.py ...')
    if args.num_workers < 1:
        raise UserError('-n/--num-workers must be at least 1, got %d' % args.num_workers)
    if args.num_servers is None:
        args.num_servers = args.num_workers
    if args.num_servers < 1:
        raise UserError('-s/--num-servers must be at least 1 (the dist kvstore needs a server), got %d'
                        % args.num_servers)
    if args.port is not None and not 0 < args.port < 65536:
        raise UserError('--port must be in 1..65535, got %d' % args.port)
    if args.grace < 0 or args.server_timeout < 0 or args.timeout < 0:
        raise UserError('--grace, --server-timeout and --timeout must not be negative')
    if args.launcher is None:
        args.launcher = 'ssh' if args.hostfile else 'local'
    if args.launcher == 'ssh' and not args.hostfile:
        raise UserError('--launcher ssh needs -H/--hostfile')
    if args.launcher == 'local' and args.hostfile:
        raise UserError('-H/--hostfile is only used by --launcher ssh')
    args.env = parse_env_pairs(args.env)
    return args


def parse_env_pairs(pairs):
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key or not key.replace('_', 'a').isalnum() or key[0].isdigit():
            raise UserError('--env %r: expected KEY=VALUE with KEY made of letters, digits and _' % pair)
        env[key] = value
    return env


def read_hostfile(path):
    """Return [(host, slots)] from a hostfile; '#' starts a comment, blank lines are skipped.

    Unlike the dmlc tracker, the number after ':' is a slot count (workers per
    host before wrapping around), not an ssh port; put ssh ports in ~/.ssh/config.
    """
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise UserError('cannot read hostfile %s: %s' % (path, err.strerror))
    hosts = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        host, sep, slots = line.partition(':')
        # A leading '-' would be read by ssh as an option.
        bad_host = not host or host.startswith('-') or any(c.isspace() or c in '\'"`$;&|' for c in host)
        if bad_host or (sep and not slots.isdigit()) or (sep and int(slots) < 1):
            raise UserError('%s:%d: %r is not "host" or "host:slots" (slots a positive integer)'
                            % (path, lineno, raw.strip()))
        hosts.append((host, int(slots) if sep else 1))
    if not hosts:
        raise UserError('hostfile %s lists no hosts' % path)
    return hosts


def free_local_port():
    """A port that is free on 127.0.0.1 right now (the scheduler binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Node:
    """One process of the job: its role, index, host and DMLC environment."""

    def __init__(self, role, index, host, env):
        self.role, self.index, self.host, self.env = role, index, host, env
        self.proc = None
        self.label = role if role == 'scheduler' else '%s %d' % (role, index)


def plan_nodes(args):
    """Decide where each process runs and the environment it gets."""
    if args.launcher == 'local':
        hosts = [('127.0.0.1', 1)]
        port = args.port or free_local_port()
    else:
        hosts = read_hostfile(args.hostfile)
        port = args.port or DEFAULT_SSH_PORT
    root = hosts[0][0]
    common = {'DMLC_PS_ROOT_URI': root, 'DMLC_PS_ROOT_PORT': str(port),
              'DMLC_NUM_SERVER': str(args.num_servers), 'DMLC_NUM_WORKER': str(args.num_workers)}
    if args.interface:
        common['DMLC_INTERFACE'] = args.interface
    worker_hosts = [host for host, slots in hosts for _ in range(slots)]
    placement = [('scheduler', 0, root)]
    placement += [('server', j, hosts[j % len(hosts)][0]) for j in range(args.num_servers)]
    placement += [('worker', i, worker_hosts[i % len(worker_hosts)]) for i in range(args.num_workers)]
    nodes = []
    for role, index, host in placement:
        env = dict(common, DMLC_ROLE=role)
        # Without DMLC_NODE_HOST ps-lite advertises the first non-loopback address it finds,
        # which may be the wrong network (or, locally, not loopback at all).
        if not args.interface:
            env['DMLC_NODE_HOST'] = host
        if role == 'worker':
            env['LAUNCH_WORKER_INDEX'] = str(index)
        env.update(args.env)
        nodes.append(Node(role, index, host, env))
    return nodes


def passthrough_env():
    return {key: value for key, value in os.environ.items()
            if key.startswith(PASSTHROUGH_PREFIXES) or key in PASSTHROUGH_NAMES}


def ssh_argv(node, command, cwd):
    """The ssh command line that runs ``command`` on node.host with the node's environment."""
    env = dict(passthrough_env(), **node.env)
    assignments = ' '.join(shlex.quote('%s=%s' % item) for item in sorted(env.items()))
    remote = 'cd %s && env %s %s' % (shlex.quote(cwd), assignments, ' '.join(map(shlex.quote, command)))
    return ['ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'BatchMode=yes', node.host, remote]


def check_executable(args):
    program = 'ssh' if args.launcher == 'ssh' else args.command[0]
    if shutil.which(program) is None:
        raise UserError('command not found: %s' % program)


def _die_with_parent():
    # Runs in the child between fork and exec: if the launcher is SIGKILLed the
    # direct child still gets SIGTERM instead of becoming an orphan.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start_node(node, args, cwd):
    if args.launcher == 'ssh':
        argv, env = ssh_argv(node, args.command, cwd), None
    else:
        argv, env = args.command, dict(os.environ, **node.env)
    # Own session = own process group, so stopping a node also stops what it spawned.
    node.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True, preexec_fn=_die_with_parent)


class Relay:
    """Copies children's output lines to our stdout/stderr with a role prefix."""

    def __init__(self):
        self.lock = threading.Lock()
        self.threads = []

    def start(self, node):
        for src, dst in ((node.proc.stdout, sys.stdout), (node.proc.stderr, sys.stderr)):
            thread = threading.Thread(target=self._copy, args=(src, dst, node.label), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _copy(self, src, dst, label):
        prefix = ('[%s] ' % label).encode()
        out = getattr(dst, 'buffer', None)
        for line in iter(src.readline, b''):
            if not line.endswith(b'\n'):
                line += b'\n'
            try:
                self._write(dst, out, prefix + line)
            except (OSError, ValueError):
                # Our own output is gone (closed pipe): keep draining so the child never blocks.
                dst = out = None
        src.close()

    def _write(self, dst, out, data):
        if dst is None:
            return
        with self.lock:
            if out is not None:
                dst.flush()
                out.write(data)
                out.flush()
            else:
                dst.write(data.decode(errors='replace'))
                dst.flush()

    def join(self, timeout):
        # A grandchild that escaped its process group could hold a pipe open forever.
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def say(message):
    print('[launcher] %s' % message, file=sys.stderr, flush=True)


def signal_group(node, sig):
    try:
        os.killpg(node.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_nodes(nodes, grace):
    """SIGTERM every process group, SIGKILL what is left after ``grace`` seconds, reap all."""
    for node in nodes:
        signal_group(node, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(n.proc.poll() is None for n in nodes):
        time.sleep(POLL_SECONDS)
    # Also SIGKILL groups whose leader already exited: its children may still be there.
    for node in nodes:
        signal_group(node, signal.SIGKILL)
    for node in nodes:
        node.proc.wait()


def describe_exit(node):
    code = node.proc.returncode
    if code < 0:
        return '%s was killed by signal %d' % (node.label, -code)
    return '%s exited with status %d' % (node.label, code)


def exit_code_of(node):
    code = node.proc.returncode
    return 128 - code if code < 0 else code


class StopRequest:
    """Records a SIGINT/SIGTERM/SIGHUP so the supervision loop can shut down cleanly."""

    def __init__(self):
        self.signum = None
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.signum = signum


def supervise(nodes, stop, timeout):
    """Wait until all workers succeed (return 0) or something fails (return a non-zero code)."""
    workers = [n for n in nodes if n.role == 'worker']
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        if stop.signum is not None:
            say('received signal %d; stopping all processes' % stop.signum)
            return 128 + stop.signum
        failed = [n for n in nodes if n.proc.poll() not in (None, 0)]
        if failed:
            say('%s; stopping all processes' % describe_exit(failed[0]))
            return exit_code_of(failed[0])
        if all(w.proc.returncode == 0 for w in workers):
            return 0
        if deadline is not None and time.monotonic() > deadline:
            say('--timeout of %gs reached; stopping all processes' % timeout)
            return 124
        time.sleep(POLL_SECONDS)


def wait_for_servers(nodes, timeout, stop):
    """After the workers succeed, servers and scheduler should exit on their own; bound that wait."""
    others = [n for n in nodes if n.role != 'worker']
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and stop.signum is None:
        if all(n.proc.poll() is not None for n in others):
            break
        time.sleep(POLL_SECONDS)
    failed = [n for n in others if n.proc.poll() not in (None, 0)]
    if failed:
        say('all workers succeeded but %s' % describe_exit(failed[0]))
        return 1
    left = [n.label for n in others if n.proc.poll() is None]
    if left:
        say('all workers succeeded; stopping %s, still running after %gs' % (', '.join(left), timeout))
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    check_executable(args)
    nodes = plan_nodes(args)
    cwd = os.getcwd()
    stop = StopRequest()
    say('%s launcher: scheduler at %s:%s, %d server(s), %d worker(s)'
        % (args.launcher, nodes[0].env['DMLC_PS_ROOT_URI'], nodes[0].env['DMLC_PS_ROOT_PORT'],
           args.num_servers, args.num_workers))
    relay = Relay()
    started = []
    try:
        # Start every process before any relay thread exists: preexec_fn is only safe without threads.
        for node in nodes:
            try:
                start_node(node, args, cwd)
            except OSError as err:
                raise UserError('cannot start %s: %s' % (' '.join(args.command), err))
            started.append(node)
        for node in started:
            relay.start(node)
        code = supervise(nodes, stop, args.timeout)
        if code == 0:
            code = wait_for_servers(nodes, args.server_timeout, stop)
    finally:
        stop_nodes(started, args.grace)
        relay.join(timeout=5.0)
    return code


if __name__ == '__main__':
    sys.exit(run_cli(main))
