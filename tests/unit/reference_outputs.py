"""Captured output of the real claude-flow CLIs (tests/fixtures/claude-flow-reference), byte for byte."""

import gzip
import os

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures',
                         'claude-flow-reference')


def read_bytes(name, stream='stdout'):
    """Bytes of NAME.STREAM; captures holding carriage returns are stored as NAME.STREAM.gz."""
    path = os.path.join(REFERENCE, '%s.%s' % (name, stream))
    if os.path.exists(path + '.gz'):
        with gzip.open(path + '.gz', 'rb') as handle:
            return handle.read()
    with open(path, 'rb') as handle:
        return handle.read()
