"""Small helpers around the generator for module tests: make a DB of a profile/preset in tmp_path."""

import os

import memory_db_gen
from digests import sha256

PROFILES = ('runbook', 'reasoningbank', 'v3')


def make_db(tmp_path, profile='runbook', rows=3000, name='memory.db', **knobs):
    swarm = tmp_path / '.swarm'
    swarm.mkdir(exist_ok=True)
    path = str(swarm / name)
    memory_db_gen.generate(path, profile=profile, rows=rows, **knobs)
    return path


def corrupt_db(path, mode):
    memory_db_gen.corrupt(path, mode)
    return path


def tree_digest(directory):
    """{relative path: sha256} of every file under directory: proves a run changed nothing."""
    out = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            full = os.path.join(root, name)
            out[os.path.relpath(full, directory)] = sha256(full)
    return out
