# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The notification receiver of a molecule scenario: a real HTTP server on the controller's loopback
(tests/lab_tests/receiver.py) that records the Slack, PagerDuty and webhook payloads the playbooks
send. create.yml starts it, destroy.yml stops it.

    notify_receiver.py start DIR     listen on a free port, detach, write DIR/notify.json, return
    notify_receiver.py stop DIR      stop the receiver recorded in DIR/notify.json (its pid only)

DIR/notify.json holds the endpoints, the port, the pid and the secret token that is part of the
Slack URL, the webhook URL and the PagerDuty routing key: the verifier greps every output for it.
The token is MOLECULE_NOTIFY_SECRET when set (tests/ci/molecule.sh sets it, to grep molecule's own
output too), else a random one. Every request is appended to DIR/payloads.jsonl.
"""

import json
import os
import secrets
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'lab_tests'))

from receiver import Receiver  # noqa: E402  (tests/lab_tests is not a package)

STATE = 'notify.json'
PAYLOADS = 'payloads.jsonl'


def start(directory):
    os.makedirs(directory, exist_ok=True)
    token = os.environ.get('MOLECULE_NOTIFY_SECRET') or secrets.token_hex(16)
    out = open(os.path.join(directory, PAYLOADS), 'a')
    receiver = Receiver(port=0, out=out)   # bound now: the port is known before detaching
    pid = os.fork()
    if pid:
        base = 'http://127.0.0.1:%d' % receiver.port
        state = {'pid': pid, 'port': receiver.port, 'secret': token,
                 'slack_url': '%s/slack/T0LAB/B0LAB/%s' % (base, token),
                 'webhook_url': '%s/webhook/%s' % (base, token),
                 'pagerduty_url': '%s/pagerduty/v2/enqueue' % base,
                 'routing_key': token}
        tmp = os.path.join(directory, STATE + '.tmp')
        with open(tmp, 'w') as handle:
            json.dump(state, handle, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, os.path.join(directory, STATE))
        print(json.dumps({'pid': pid, 'port': receiver.port}))
        return 0
    # the child: its own session, no terminal, serves until SIGTERM
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGTERM, lambda *_: receiver._server.shutdown())
    receiver.start()
    receiver._thread.join()
    os._exit(0)


def stop(directory):
    path = os.path.join(directory, STATE)
    try:
        with open(path) as handle:
            pid = json.load(handle)['pid']
    except (OSError, ValueError, KeyError):
        print(json.dumps({'stopped': False, 'reason': 'no receiver recorded in %s' % path}))
        return 0
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            cmdline = handle.read()
    except OSError:
        cmdline = b''
    # only the process this script started (a reused pid would run something else)
    if b'notify_receiver.py' not in cmdline:
        print(json.dumps({'stopped': False, 'reason': 'receiver pid %d is gone' % pid}))
        return 0
    os.kill(pid, signal.SIGTERM)
    for _attempt in range(50):
        if not os.path.exists('/proc/%d' % pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    print(json.dumps({'stopped': True, 'pid': pid}))
    return 0


def main(argv):
    if len(argv) != 2 or argv[0] not in ('start', 'stop'):
        sys.stderr.write('usage: notify_receiver.py start|stop DIR\n')
        return 2
    return start(argv[1]) if argv[0] == 'start' else stop(argv[1])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
