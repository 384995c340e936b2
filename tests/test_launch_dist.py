"""Tests for scripts/launch_dist.py: real dist_sync jobs on 127.0.0.1, failure and
signal handling (nothing may be left running), the ssh command lines built for a
hostfile (through a fake ``ssh`` that runs locally), and one-line user errors."""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = os.path.join(REPO_ROOT, 'scripts', 'launch_dist.py')
HARD_TIMEOUT = 60

# Workers sum rank+1 through one server; each writes what it pulled.
KV_SCRIPT = '''
import json, os, sys
import mxnet as mx
kv = mx.kv.create('dist_sync')
kv.init(3, mx.nd.zeros((4,)))
kv.push(3, mx.nd.ones((4,)) * (kv.rank + 1))
out = mx.nd.zeros((4,))
kv.pull(3, out=out)
path = os.path.join(sys.argv[1], 'out-%s.json' % os.environ['LAUNCH_WORKER_INDEX'])
with open(path, 'w') as f:
    json.dump({'pulled': out.asnumpy().tolist(), 'rank': kv.rank, 'num_workers': kv.num_workers,
               'env': {k: v for k, v in os.environ.items() if k.startswith(('DMLC_', 'LAUNCH_', 'MY_'))}}, f)
print('worker done rank', kv.rank, flush=True)
'''

# Worker 1 fails; worker 0 ignores SIGTERM (forcing SIGKILL) and has a child of its own.
FAILING_SCRIPT = '''
import os, signal, subprocess, sys, time
if os.environ['DMLC_ROLE'] != 'worker':
    import mxnet  # serves until killed: worker 1 never registers
elif os.environ['LAUNCH_WORKER_INDEX'] == '1':
    time.sleep(1.0)
    sys.exit(3)
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', sys.argv[0]])
    import mxnet as mx
    mx.kv.create('dist_sync')
'''

# No mxnet: everyone reports ready, then workers and servers sleep or exit as asked.
SLEEPY_SCRIPT = '''
import os, sys, time
role = os.environ['DMLC_ROLE']
name = role + os.environ.get('LAUNCH_WORKER_INDEX', '')
open(os.path.join(sys.argv[1], 'ready-' + name + '-' + str(os.getpid())), 'w').close()
print('ready', flush=True)
if role == 'worker' and sys.argv[2] == 'workers-exit':
    sys.exit(0)
time.sleep(120)
'''

FAKE_SSH = '''#!{python}
"""Stand-in for ssh: records its arguments, then runs the remote command here."""
import json, os, sys
with open(os.environ['FAKE_SSH_LOG'], 'a') as log:
    log.write(json.dumps(sys.argv[1:]) + '\\n')
os.execv('/bin/sh', ['/bin/sh', '-c', sys.argv[-1]])
'''


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launch(args, env=None, timeout=HARD_TIMEOUT):
    start = time.monotonic()
    result = subprocess.run([sys.executable, LAUNCHER] + args, cwd=REPO_ROOT, env=env, timeout=timeout,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return result, time.monotonic() - start


def processes_mentioning(marker):
    """PIDs of live processes whose command line contains ``marker`` (a tmp path of this test)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().decode(errors='replace')
        except OSError:
            continue
        if marker in cmdline and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def assert_nothing_left(marker, wait=3.0):
    # SIGKILLed processes may need a moment to vanish from /proc.
    deadline = time.monotonic() + wait
    while processes_mentioning(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(marker) == []


def test_two_workers_one_server_sum_through_dist_sync(tmp_path):
    script = write(tmp_path / 'kv_job.py', KV_SCRIPT)
    result, elapsed = launch(['-n', '2', '-s', '1', '--', sys.executable, script, str(tmp_path)])
    assert result.returncode == 0, result.stderr
    outs = [json.loads((tmp_path / ('out-%d.json' % i)).read_text()) for i in range(2)]
    assert [o['pulled'] for o in outs] == [[3.0] * 4] * 2
    assert sorted(o['rank'] for o in outs) == [0, 1]
    assert [o['num_workers'] for o in outs] == [2, 2]
    env = outs[0]['env']
    assert env['DMLC_ROLE'] == 'worker' and env['DMLC_PS_ROOT_URI'] == '127.0.0.1'
    assert env['DMLC_NODE_HOST'] == '127.0.0.1'
    assert (env['DMLC_NUM_WORKER'], env['DMLC_NUM_SERVER']) == ('2', '1')
    lines = result.stdout.splitlines()
    assert {line.split(']')[0] for line in lines} == {'[worker 0', '[worker 1'}
    assert elapsed < 40
    assert_nothing_left(str(tmp_path))


def test_failing_worker_stops_everyone_and_fails(tmp_path):
    script = write(tmp_path / 'failing_job.py', FAILING_SCRIPT)
    result, elapsed = launch(['-n', '2', '-s', '1', '--grace', '1', sys.executable, script])
    assert result.returncode == 3, result.stderr
    assert 'worker 1 exited with status 3' in result.stderr
    assert 'Traceback' not in result.stderr
    assert elapsed < 30
    assert_nothing_left(str(tmp_path))


def wait_for_files(folder, pattern, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while len(list(folder.glob(pattern))) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return len(list(folder.glob(pattern)))


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_to_launcher_stops_everything(tmp_path, sig):
    script = write(tmp_path / 'sleepy_job.py', SLEEPY_SCRIPT)
    cmd = [sys.executable, LAUNCHER, '-n', '2', '-s', '2', '--grace', '2',
           sys.executable, script, str(tmp_path), 'workers-sleep']
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for_files(tmp_path, 'ready-*', 5) == 5
        start = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        assert time.monotonic() - start < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig
    assert b'received signal' in err
    assert_nothing_left(str(tmp_path))


def test_servers_that_never_exit_are_stopped_after_workers_succeed(tmp_path):
    script = write(tmp_path / 'sleepy_job.py', SLEEPY_SCRIPT)
    result, elapsed = launch(['-n', '2', '-s', '1', '--server-timeout', '1', '--grace', '1',
                              sys.executable, script, str(tmp_path), 'workers-exit'])
    assert result.returncode == 0, result.stderr
    assert 'stopping scheduler, server 0, still running' in result.stderr
    assert result.stdout.count('ready') == 4
    assert elapsed < 20
    assert_nothing_left(str(tmp_path))


def test_ssh_launcher_builds_command_lines_from_hostfile(tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    fake = bindir / 'ssh'
    fake.write_text(FAKE_SSH.format(python=sys.executable))
    fake.chmod(0o755)
    # 127.0.0.2 is loopback too on Linux: two "hosts" without leaving this machine.
    hostfile = write(tmp_path / 'hosts', '# two hosts\n127.0.0.1\n\n127.0.0.2:2\n')
    script = write(tmp_path / 'kv_job.py', KV_SCRIPT)
    log = tmp_path / 'ssh.log'
    env = dict(os.environ, PATH='%s:%s' % (bindir, os.environ['PATH']), FAKE_SSH_LOG=str(log),
               PS_VERBOSE='0')
    port = free_port()
    result, _ = launch(['-n', '2', '-s', '2', '-H', hostfile, '--port', str(port), '--env', 'MY_FLAG=a b',
                        sys.executable, script, str(tmp_path)], env=env)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    by_role = {}
    for argv in calls:
        assert argv[:4] == ['-o', 'StrictHostKeyChecking=no', '-o', 'BatchMode=yes']
        remote = argv[5]
        role = remote.split('DMLC_ROLE=')[1].split()[0]
        by_role.setdefault(role, []).append((argv[4], remote))
    assert sorted((r, len(v)) for r, v in by_role.items()) == [('scheduler', 1), ('server', 2), ('worker', 2)]
    assert by_role['scheduler'][0][0] == '127.0.0.1'
    assert sorted(h for h, _ in by_role['server']) == ['127.0.0.1', '127.0.0.2']
    assert sorted(h for h, _ in by_role['worker']) == ['127.0.0.1', '127.0.0.2']
    for host, remote in [c for v in by_role.values() for c in v]:
        assert remote.startswith('cd %s && env ' % REPO_ROOT)
        words = shlex.split(remote)
        for part in ['DMLC_PS_ROOT_URI=127.0.0.1', 'DMLC_PS_ROOT_PORT=%d' % port, 'DMLC_NUM_SERVER=2',
                     'DMLC_NUM_WORKER=2', 'DMLC_NODE_HOST=%s' % host, 'PS_VERBOSE=0', 'MY_FLAG=a b']:
            assert part in words, (part, remote)
        assert remote.endswith(' '.join([sys.executable, script, str(tmp_path)]))
    outs = [json.loads((tmp_path / ('out-%d.json' % i)).read_text()) for i in range(2)]
    assert [o['pulled'] for o in outs] == [[3.0] * 4] * 2
    assert [o['env']['MY_FLAG'] for o in outs] == ['a b', 'a b']
    assert_nothing_left(str(tmp_path))


def bad_hostfile(tmp_path, text):
    return write(tmp_path / 'hosts', text)


@pytest.mark.parametrize('make_args', [
    lambda t: ['-n', '0', 'true'],
    lambda t: ['-n', 'two', 'true'],
    lambda t: ['-n', '1'],
    lambda t: ['-n', '1', '-s', '0', 'true'],
    lambda t: ['-n', '1', 'no-such-program-for-launch-test'],
    lambda t: ['-n', '1', '--env', 'NO_EQUALS_SIGN', 'true'],
    lambda t: ['-n', '1', '--launcher', 'ssh', 'true'],
    lambda t: ['-n', '1', '-H', str(t / 'missing-hosts'), 'true'],
    lambda t: ['-n', '1', '-H', bad_hostfile(t, 'node1:zero\n'), 'true'],
    lambda t: ['-n', '1', '-H', bad_hostfile(t, '# nothing\n\n'), 'true'],
    lambda t: ['-n', '1', '-H', bad_hostfile(t, '-oProxyCommand=x\n'), 'true'],
], ids=['n0', 'n-not-int', 'no-command', 's0', 'unknown-program', 'env-format', 'ssh-no-hostfile',
        'missing-hostfile', 'bad-slots', 'empty-hostfile', 'option-as-host'])
def test_bad_arguments_are_one_line_user_errors(tmp_path, make_args):
    result, _ = launch(make_args(tmp_path), timeout=20)
    assert result.returncode == 2
    assert result.stdout == ''
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
    assert 'Traceback' not in result.stderr
