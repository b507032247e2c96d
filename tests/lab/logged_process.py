"""A long-running test process (ansible-rulebook, Prometheus, Alertmanager, a forwarder) in a session
of its own, with its output in a file; stop() ends its whole process group (a rulebook's playbooks too)."""

import os
import signal
import subprocess


class LoggedProcess:
    def __init__(self, argv, log_path, env=None, cwd=None):
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        self._log.flush()
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')

    def stop(self):
        """SIGTERM the process group, SIGKILL what is left after 20 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
