#!/usr/bin/env python
"""TCP forwarder from the controller's loopback into a lab network namespace (test infrastructure).

Usage: netns_forward.py NETNS PORT=ADDRESS:PORT [...]

Listens on 127.0.0.1:PORT here, then joins NETNS (setns), so every connection it opens to
ADDRESS:PORT starts inside the lab network. Prometheus on the controller scrapes node_exporter
in the lab hosts through it; nothing else is reachable (the hub has no uplink).
"""

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener, target):
    while True:
        client, dummy = listener.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


def main(argv):
    netns, specs = argv[1], argv[2:]
    listeners = []
    for spec in specs:
        port, target = spec.split('=', 1)
        address, target_port = target.rsplit(':', 1)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', int(port)))
        listener.listen(16)
        listeners.append((listener, (address, int(target_port))))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open('/var/run/netns/%s' % netns, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), 'setns %s failed' % netns)
    os.close(fd)
    for listener, target in listeners:
        threading.Thread(target=serve, args=(listener, target), daemon=True).start()
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == '__main__':
    main(sys.argv)
