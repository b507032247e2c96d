# Copyright: (c) 2026, claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the production app (systemd unit claude-code-production) on lab hosts.

    python3 app.py --app-dir /opt/claude-code-production --port 8080 --log /var/log/claude-code/application.log

GET /health opens <app-dir>/.swarm/memory.db read-only, runs PRAGMA quick_check and a select on
sqlite_master: 200 {"status": "ok", ...} when both pass, 503 with the error otherwise (missing
file, not a database, corrupt pages, or no tables at all: an empty/truncated file is no app DB).
Like a real app it keeps its DB connection open between requests (so the file shows up in
/proc/<pid>/fd and a restore must stop the service first); it reopens when the file at the path
is a different inode (swapped by a restore) and lets go when the file is gone.
GET /metrics gives Prometheus text. Log lines: `2026-11-28T07:03:32Z LEVEL component message`.
SIGTERM/SIGINT: stop serving and exit 0. Standard library only.
"""

import argparse
import datetime
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AppLog(object):
    """Appends one line per event; reopens the file each time so logrotate/truncation just work."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, level, component, message):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        line = '%s %s %s %s\n' % (stamp, level, component, ' '.join(str(message).split()))
        with self.lock:
            if self.path:
                with open(self.path, 'a', encoding='utf-8') as handle:
                    handle.write(line)
            else:
                sys.stdout.write(line)
                sys.stdout.flush()


class DatabaseProbe(object):
    """One long-lived read-only connection to memory.db, checked on every /health."""

    def __init__(self, app_dir):
        self.app_dir = app_dir
        self.path = os.path.join(app_dir, '.swarm', 'memory.db')
        self.lock = threading.Lock()
        self.conn = None
        self.identity = None  # (st_dev, st_ino) of the file the connection was opened on
        self.checks = 0
        self.failures = 0

    def release(self):
        return os.path.basename(os.path.realpath(self.app_dir))

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn, self.identity = None, None

    def _connection(self):
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            self.close()  # nothing to hold: let go of a deleted file
            raise RuntimeError('database file missing: %s (%s)' % (self.path, exc.strerror))
        identity = (stat.st_dev, stat.st_ino)
        if self.conn is not None and identity != self.identity:
            self.close()  # the file was replaced (restore): drop the old inode
        if self.conn is None:
            uri = 'file:%s?mode=ro' % urllib.parse.quote(os.path.abspath(self.path))
            self.conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
            self.identity = identity
        return self.conn

    def check(self):
        """Returns (ok, detail). Keeps the connection open even when the content is bad, like an app would."""
        with self.lock:
            self.checks += 1
            try:
                conn = self._connection()
                result = conn.execute('PRAGMA quick_check').fetchall()
                if [row[0] for row in result] != ['ok']:
                    raise RuntimeError('quick_check: %s' % '; '.join(str(row[0]) for row in result[:5]))
                tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if tables == 0:
                    raise RuntimeError('database has no tables (empty or truncated file)')
                return True, {'tables': tables}
            except (sqlite3.Error, RuntimeError) as exc:
                self.failures += 1
                return False, {'error': '%s: %s' % (type(exc).__name__, exc)}


class Handler(BaseHTTPRequestHandler):
    server_version = 'claude-code-production-standin/1.0'

    def do_GET(self):  # noqa: N802 (http.server naming)
        started = time.monotonic()
        route = self.path.split('?', 1)[0]
        if route == '/health':
            status, body = self.health()
            self.send(status, 'application/json', json.dumps(body) + '\n')
        elif route == '/metrics':
            self.send(200, 'text/plain; version=0.0.4', self.metrics())
            status = 200
        else:
            status = 404
            self.send(status, 'application/json', json.dumps({'error': 'not found', 'path': route}) + '\n')
        self.server.log.write('INFO', 'http', '%s GET %s %d %.1fms' % (
            self.client_address[0], route, status, (time.monotonic() - started) * 1000))

    def health(self):
        probe = self.server.probe
        ok, detail = probe.check()
        body = {'status': 'ok' if ok else 'error', 'db': 'ok' if ok else 'error',
                'release': probe.release(), 'pid': os.getpid()}
        body.update(detail)
        if not ok:
            self.server.log.write('ERROR', 'health', 'database check failed for %s: %s' % (probe.path, detail['error']))
        return (200 if ok else 503), body

    def metrics(self):
        probe = self.server.probe
        try:
            size = os.path.getsize(probe.path)
        except OSError:
            size = -1
        return ('app_up 1\n'
                'app_health_checks_total %d\n'
                'app_health_failures_total %d\n'
                'app_db_size_bytes %d\n'
                'app_uptime_seconds %.0f\n' % (probe.checks, probe.failures, size, time.time() - self.server.started))

    def send(self, status, content_type, text):
        payload = text.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # requests are logged in do_GET, in the app's own format


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Production app stand-in: /health checks the app DB.')
    parser.add_argument('--app-dir', required=True, help='release dir or symlink holding .swarm/memory.db')
    parser.add_argument('--port', type=int, default=8080, help='0 picks a free port (logged at start)')
    parser.add_argument('--bind', default='0.0.0.0', help='listen address')
    parser.add_argument('--log', default='', help='application log file (default: stdout)')
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    log = AppLog(args.log)
    try:
        server = ThreadingHTTPServer((args.bind, args.port), Handler)
    except OSError as exc:
        log.write('ERROR', 'app', 'cannot listen on %s:%d: %s' % (args.bind, args.port, exc))
        sys.stderr.write('app: cannot listen on %s:%d: %s (choose another --port or stop the other listener)\n'
                         % (args.bind, args.port, exc))
        return 1
    server.daemon_threads = True
    server.log = log
    server.probe = DatabaseProbe(args.app_dir)
    server.started = time.time()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop.set())
    worker = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.2}, daemon=True)
    worker.start()
    host, port = server.server_address[:2]
    log.write('INFO', 'app', 'listening on %s:%d pid=%d app_dir=%s release=%s' % (
        host, port, os.getpid(), args.app_dir, server.probe.release()))
    ok, detail = server.probe.check()  # open the DB at start, as the real app does
    if not ok:
        log.write('ERROR', 'app', 'database not usable at start: %s' % detail['error'])

    while not stop.wait(1.0):
        pass
    log.write('INFO', 'app', 'stopping on signal')
    server.shutdown()
    server.server_close()
    server.probe.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
