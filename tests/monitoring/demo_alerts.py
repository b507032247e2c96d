#!/usr/bin/env python
"""make demo-alerts: the closed loop on three fresh lab hosts, with the times it took.

Brings up lab1..lab3 in a state dir of their own, installs the exporter (roles/monitoring),
starts real Prometheus, Alertmanager and ansible-rulebook, breaks lab1 (P0) and lab2 (P1),
waits for the loop to close by itself, prints the measured times and takes everything down.
"""

import argparse
import json
import os
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loop import load_eda_helpers, run_loop  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', choices=['tight', 'default'], default='tight')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('the lab needs root (network, PID and mount namespaces)')
    eda_helpers = load_eda_helpers()
    eda = types.SimpleNamespace(RULEBOOKS=eda_helpers.RULEBOOKS, RulebookProcess=eda_helpers.RulebookProcess,
                                free_port=eda_helpers.free_port, tool_env=eda_helpers.tool_env)
    workdir = tempfile.mkdtemp(prefix='cf-demo-alerts-')
    lab = eda_helpers.LabHosts(os.path.join(workdir, 'lab'))
    os.makedirs(lab.state_dir)
    try:
        lab.lab('up', '--hosts', '3')
        measured, facts = run_loop(lab, eda, os.path.join(workdir, 'loop'), profile=args.profile,
                                   timeout=900 if args.profile == 'tight' else 1800)
    finally:
        lab.lab('down', timeout=180)
    print(json.dumps(measured, indent=2))
    print('lab1 incidents: %s' % sorted(facts['lab1']))
    print('lab2 incidents: %s' % sorted(facts['lab2']))
    print('lab3 incidents: %s (untouched)' % sorted(facts['lab3']))
    print('logs (rulebook, Prometheus, Alertmanager): %s' % os.path.join(workdir, 'loop'))
    return 0 if measured['fault_to_incident_closed_s'] is not None else 1


if __name__ == '__main__':
    sys.exit(main())
