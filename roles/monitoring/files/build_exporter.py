#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the exporter runner: a Python zip application of the collection's module_utils.

Runs on the controller (with the Python that runs Ansible). Starting from
prometheus_exposition.py it follows every import of the collection's module_utils and of
ansible.module_utils (what Ansible itself ships to a host inside a module), so the host
runs the same triage code with nothing but a Python 3 interpreter. The archive is
byte-for-byte reproducible (sorted entries, fixed timestamps), so copying it is idempotent.

Usage: build_exporter.py COLLECTION_ROOT OUTPUT.pyz
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import importlib.util
import os
import sys
import zipfile

ENTRY = 'ansible_collections.claude_flow.runbook.plugins.module_utils.prometheus_exposition'
COLLECTION_PREFIX = 'ansible_collections.claude_flow.runbook.'
STAMP = (1980, 1, 1, 0, 0, 0)
MAIN = ('import sys\n'
        'from %s import main\n'
        'sys.exit(main())\n' % ENTRY)


def source_path(module, collection_root, ansible_root):
    """File of a dotted module name, or None when it is not ours or ansible.module_utils'."""
    if module.startswith(COLLECTION_PREFIX):
        rel = module[len(COLLECTION_PREFIX):].split('.')
        base = os.path.join(collection_root, *rel)
    elif module == 'ansible.module_utils' or module.startswith('ansible.module_utils.'):
        base = os.path.join(ansible_root, *module.split('.')[1:])
    else:
        return None
    for candidate in (base + '.py', os.path.join(base, '__init__.py')):
        if os.path.isfile(candidate):
            return candidate
    return None


def imports_of(path, module, is_package):
    with open(path, 'rb') as handle:
        tree = ast.parse(handle.read(), path)
    package = module if is_package else module.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                parent = '.'.join(parts[:len(parts) - node.level + 1])
                base = parent + ('.' + base if base else '')
            yield base
            for alias in node.names:
                yield base + '.' + alias.name  # `from pkg import submodule`


def collect(collection_root, ansible_root):
    found = {}
    todo = [ENTRY]
    while todo:
        module = todo.pop()
        if module in found:
            continue
        path = source_path(module, collection_root, ansible_root)
        if path is None:
            continue
        found[module] = path
        todo.extend(imports_of(path, module, path.endswith('__init__.py')))
    return found


def archive_name(module, path):
    name = module.replace('.', '/')
    return name + '/__init__.py' if path.endswith('__init__.py') else name + '.py'


def build(collection_root, output):
    spec = importlib.util.find_spec('ansible')
    ansible_root = os.path.dirname(spec.origin)
    modules = collect(os.path.abspath(collection_root), ansible_root)
    entries = {'__main__.py': MAIN.encode('utf-8')}
    for module, path in modules.items():
        with open(path, 'rb') as handle:
            entries[archive_name(module, path)] = handle.read()
    # Parent packages: real __init__ for ansible.module_utils.*, empty ones above (as Ansible's own
    # module payloads do), so importing never runs controller-side package code.
    for name in list(entries):
        parts = name.split('/')[:-1]
        for depth in range(1, len(parts) + 1):
            init = '/'.join(parts[:depth]) + '/__init__.py'
            if init not in entries:
                module = '.'.join(parts[:depth])
                path = source_path(module, collection_root, ansible_root)
                real = module.startswith('ansible.module_utils') and path and path.endswith('__init__.py')
                entries[init] = open(path, 'rb').read() if real else b''
    tmp = output + '.tmp'
    with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name])
    os.replace(tmp, output)
    return sorted(entries)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    names = build(argv[1], argv[2])
    sys.stdout.write('%d files in %s\n' % (len(names), argv[2]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
