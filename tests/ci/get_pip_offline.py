# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each sanity virtualenv by running
~/.ansible/test/cache/get_pip_<X_Y_Z>.py (downloaded from a host this machine cannot reach)
with arguments such as ``pip==24.2 --no-setuptools --no-wheel``.  tests/ci/sanity.sh copies
this file there under that name and puts the wheels it needs beside it (``pip download``
from PyPI), so the bootstrap installs exactly those wheels and never touches the network.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    # get_pip_24_2.py -> 24.2: the file name is the contract ansible-test uses.
    version = os.path.splitext(os.path.basename(__file__))[0][len('get_pip_'):].replace('_', '.')
    wheels = glob.glob(os.path.join(here, 'pip-%s-*.whl' % version))
    if not wheels:
        sys.exit('get_pip offline: no pip %s wheel in %s; run tests/ci/sanity.sh, which downloads it '
                 '(pip download --no-deps pip==%s -d %s)' % (version, here, version, here))
    # pip runs from its own wheel (a supported mode), like the real get-pip does from its embedded zip.
    sys.path.insert(0, wheels[0])
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-error

    # --no-setuptools/--no-wheel are get-pip options, not pip options; only explicit
    # requirements are installed, so dropping them leaves exactly what was asked for.
    args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
    return pip_main(['install', '--no-index', '--find-links', here, '--upgrade'] + args)


if __name__ == '__main__':
    sys.exit(main())
