"""sha256 of a file, streamed: the tests' one way to prove bytes were kept (DBs reach GBs)."""

import hashlib


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()
