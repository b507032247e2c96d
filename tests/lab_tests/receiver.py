#!/usr/bin/env python
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HTTP receiver on loopback that records Slack, PagerDuty and webhook payloads.

The playbooks send notifications from the controller (delegate_to: localhost), so the tests point
claude_flow_slack_webhook_url, claude_flow_pagerduty_events_url and claude_flow_webhook_url here
and then assert on what arrived. It answers like the real services do:
  /slack/...      200 "ok"                       (Slack incoming webhooks)
  /pagerduty/...  202 {"status": "success", ...}  (PagerDuty Events API v2 /v2/enqueue)
  anything else   200 {"ok": true}
A path containing /fail/ answers 500, to test undelivered notifications.

Library: r = Receiver().start(); r.url('/slack/hook'); r.received(); r.stop()
CLI:     python3 receiver.py [--port 8099] [--out payloads.jsonl]   (prints one JSON line per request)
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server_version = 'cf-receiver/1'

    def do_POST(self):  # noqa: N802 (http.server naming)
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode('utf-8'))
        except ValueError:
            body = None
        record = {'time': time.time(), 'path': self.path, 'headers': dict(self.headers.items()),
                  'raw': raw.decode('utf-8', 'replace'), 'json': body}
        self.server.record(record)
        if '/fail/' in self.path:
            self._reply(500, b'{"error": "receiver told to fail"}', 'application/json')
        elif self.path.startswith('/slack'):
            self._reply(200, b'ok', 'text/plain')
        elif self.path.startswith('/pagerduty'):
            dedup = (body or {}).get('dedup_key', '') if isinstance(body, dict) else ''
            self._reply(202, json.dumps({'status': 'success', 'message': 'Event processed',
                                         'dedup_key': dedup}).encode('utf-8'), 'application/json')
        else:
            self._reply(200, b'{"ok": true}', 'application/json')

    def _reply(self, status, payload, ctype):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt, *args):  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, sink):
        ThreadingHTTPServer.__init__(self, addr, _Handler)
        self.sink = sink

    def record(self, record):
        self.sink(record)


class Receiver(object):
    def __init__(self, host='127.0.0.1', port=0, out=None):
        self._lock = threading.Lock()
        self._records = []
        self._out = out
        self._server = _Server((host, port), self._add)
        self._thread = None

    def _add(self, record):
        with self._lock:
            self._records.append(record)
            if self._out:
                self._out.write(json.dumps(record, sort_keys=True) + '\n')
                self._out.flush()

    @property
    def port(self):
        return self._server.server_address[1]

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name='cf-receiver', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def received(self, prefix=''):
        with self._lock:
            return [r for r in self._records if r['path'].startswith(prefix)]

    def clear(self):
        with self._lock:
            del self._records[:]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=8099)
    parser.add_argument('--out', help='append every request as a JSON line to this file')
    args = parser.parse_args()
    out = open(args.out, 'a') if args.out else sys.stdout
    receiver = Receiver(port=args.port, out=out)
    print('listening on http://127.0.0.1:%d (/slack, /pagerduty, /webhook)' % receiver.port, file=sys.stderr)
    try:
        receiver._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
