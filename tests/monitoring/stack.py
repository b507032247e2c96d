"""The real monitoring stack for tests and the demo: Prometheus, Alertmanager, the netns forwarder.

Each runs as a child process with its own config and data dir under a work dir, on 127.0.0.1
ports of its own, and is stopped by its process id (never by name).
"""

import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, '.collections'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

from ansible_collections.claude_flow.runbook.plugins.module_utils import prometheus_rules  # noqa: E402
from logged_process import LoggedProcess as Process  # noqa: E402,F401  (test_storms imports it from here)

# Tight: CI and `make demo-alerts`. Default: the role's and the rules' defaults.
PROFILES = {
    'tight': {'refresh': 5, 'scrape': '2s', 'evaluation': '2s', 'for': {'P0': '10s', 'P1': '10s', 'P2': '10s', 'P3': '10s'},
              'am': {'group_wait': '1s', 'group_interval': '2s', 'repeat_interval': '20s', 'resolve_timeout': '1m'}},
    'default': {'refresh': 60, 'scrape': '60s', 'evaluation': '60s', 'for': {}, 'am': {}},
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def binary(name):
    path = shutil.which(name)
    if not path:
        raise RuntimeError('%s not found: install the Debian packages prometheus and prometheus-alertmanager '
                           '(make deps)' % name)
    return path


def get_json(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read().decode('utf-8'))
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Stack:
    """Prometheus + Alertmanager (+ forwarder into the lab's hub) configured for one profile."""

    def __init__(self, workdir, profile, eda_url, token_file, rules_file, targets=None, hub=None):
        self.workdir = workdir
        self.profile = PROFILES[profile]
        self.eda_url = eda_url
        self.token_file = token_file
        self.rules_file = rules_file
        self.targets = targets or {}   # host -> 'address:port' inside the hub's network
        self.hub = hub
        self.processes = []
        self.prom_port = free_port()
        self.am_port = free_port()
        self.prom_url = 'http://127.0.0.1:%d' % self.prom_port
        self.am_url = 'http://127.0.0.1:%d' % self.am_port

    def write_configs(self):
        os.makedirs(self.workdir, exist_ok=True)
        am = prometheus_rules.alertmanager_config(self.eda_url, self.token_file, **self.profile['am'])
        self.am_config = os.path.join(self.workdir, 'alertmanager.yml')
        with open(self.am_config, 'w') as handle:
            yaml.safe_dump(am, handle, sort_keys=False)
        self.forward = {host: free_port() for host in sorted(self.targets)}
        scrape = [{'targets': ['127.0.0.1:%d' % self.forward[host]], 'labels': {'lab_host': host}}
                  for host in sorted(self.targets)]
        prom = {
            'global': {'scrape_interval': self.profile['scrape'], 'evaluation_interval': self.profile['evaluation'],
                       'scrape_timeout': self.profile['scrape']},
            'rule_files': [self.rules_file],
            'alerting': {'alertmanagers': [{'static_configs': [{'targets': ['127.0.0.1:%d' % self.am_port]}]}]},
            'scrape_configs': [{'job_name': 'node', 'static_configs': scrape}],
        }
        self.prom_config = os.path.join(self.workdir, 'prometheus.yml')
        with open(self.prom_config, 'w') as handle:
            yaml.safe_dump(prom, handle, sort_keys=False)

    def start(self):
        self.write_configs()
        if self.targets:
            argv = [sys.executable, os.path.join(HERE, 'netns_forward.py'), self.hub]
            argv += ['%d=%s' % (self.forward[host], self.targets[host]) for host in sorted(self.targets)]
            forwarder = Process(argv, os.path.join(self.workdir, 'forward.log'))
            self.processes.append(forwarder)
            self._wait(lambda: 'ready' in forwarder.output(), 'forwarder', forwarder)
        am = Process([binary('prometheus-alertmanager'), '--config.file=' + self.am_config,
                      '--storage.path=' + os.path.join(self.workdir, 'am-data'),
                      '--web.listen-address=127.0.0.1:%d' % self.am_port, '--cluster.listen-address=',
                      '--log.level=debug'],
                     os.path.join(self.workdir, 'alertmanager.log'))
        self.processes.append(am)
        self._wait(lambda: get_json(self.am_url + '/api/v2/status'), 'alertmanager', am)
        prom = Process([binary('prometheus'), '--config.file=' + self.prom_config,
                        '--storage.tsdb.path=' + os.path.join(self.workdir, 'prom-data'),
                        '--web.listen-address=127.0.0.1:%d' % self.prom_port, '--web.enable-lifecycle'],
                       os.path.join(self.workdir, 'prometheus.log'))
        self.processes.append(prom)
        self._wait(lambda: get_json(self.prom_url + '/api/v1/status/runtimeinfo'), 'prometheus', prom)
        return self

    def _wait(self, ready, name, process, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError('%s exited:\n%s' % (name, process.output()[-3000:]))
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError('%s did not come up in %ss:\n%s' % (name, timeout, process.output()[-3000:]))

    def alerts(self):
        """Prometheus' firing alerts as [(alertname, instance, severity)]."""
        data = get_json(self.prom_url + '/api/v1/alerts') or {}
        return [(a['labels'].get('alertname'), a['labels'].get('instance'), a['labels'].get('severity'))
                for a in (data.get('data') or {}).get('alerts', []) if a.get('state') == 'firing']

    def query(self, expr):
        url = self.prom_url + '/api/v1/query?query=' + urllib.request.quote(expr)
        data = get_json(url) or {}
        return (data.get('data') or {}).get('result', [])

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
