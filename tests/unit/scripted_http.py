"""A real HTTP receiver on loopback that answers from a script, for the notification tests.

Each path has a list of answers, used one per request (the last one repeats):
    server.script('/flaky', [500, 500, 200])
    server.script('/busy', [(429, {'Retry-After': '1'}), 200])
    server.script('/slow', ['hang'])        # reads the request, then answers nothing for a while
Every request is recorded with its arrival time (time.monotonic()) and its JSON body.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_SECONDS = 5


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server naming)
        raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        try:
            body = json.loads(raw.decode('utf-8'))
        except ValueError:
            body = None
        answer = self.server.owner.answer_for(self.path, {'time': time.monotonic(), 'path': self.path, 'json': body})
        if answer == 'hang':
            time.sleep(HANG_SECONDS)
            return
        status, headers, payload = answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt, *args):  # keep test output quiet
        pass


class ScriptedServer(object):
    def __init__(self):
        self._lock = threading.Lock()
        self._scripts = {}
        self.requests = []
        self._server = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self._server.server_address[1], path)

    def script(self, path, answers):
        with self._lock:
            self._scripts[path] = list(answers)

    def answer_for(self, path, record):
        with self._lock:
            self.requests.append(record)
            answers = self._scripts.get(path, [200])
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == 'hang':
            return answer
        if isinstance(answer, int):
            answer = (answer, {})
        status, headers = answer[0], dict(answer[1])
        payload = answer[2] if len(answer) > 2 else ('{"status": %d}' % status).encode('utf-8')
        headers.setdefault('Content-Type', 'application/json')
        return status, headers, payload

    def received(self, path):
        with self._lock:
            return [r for r in self.requests if r['path'] == path]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        return False
