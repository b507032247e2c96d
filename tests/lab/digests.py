"""sha256 of a file, streamed: the tests' one way to prove bytes were kept (DBs reach GBs)."""

import hashlib
import os


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digests(root):
    """{relative path: sha256, or 'dir'} of everything under root: a full listing to compare before/after."""
    listing = {}
    for base, dirs, files in os.walk(root):
        for name in dirs:
            listing[os.path.relpath(os.path.join(base, name), root)] = 'dir'
        for name in files:
            listing[os.path.relpath(os.path.join(base, name), root)] = sha256(os.path.join(base, name))
    return listing
