# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Receive Prometheus Alertmanager webhook notifications; one rulebook event per alert.

Runs inside ansible-rulebook (``async def main(queue, args)``). It is a small
HTTP/1.1 server on asyncio streams, so every limit is its own: header and body
read timeouts, a connection cap, a header size cap, a body cap, a JSON depth
cap and a length cap on every string it passes on. A bad request is answered
with a 4xx status (never 500) and the source keeps running. It checks an
optional bearer token, optionally serves TLS, validates the Alertmanager
webhook v4 payload and puts one event per alert on the queue.

Event shape (documented in docs/alerting.md)::

    {
      "alert": {"status": "firing"|"resolved", "labels": {...}, "annotations": {...},
                "startsAt": "...", "endsAt": "...", "generatorURL": "...",
                "fingerprint": "..."},
      "alert_b64": "<base64 of the alert as JSON>",   # what playbooks get
      "severity": "P0"|"P1"|"P2"|"P3"|"unknown",
      "host": "host-a",             # absent when no usable host label
      "host_error": "why",          # present instead of host
      "incident_id": "<fingerprint>-<startsAt as YYYYmmddTHHMMSSZ>",
      "notification": {"receiver": ..., "status": ..., "groupKey": ...,
                       "externalURL": ..., "version": ...},
      "meta": {"hosts": ["host-a"], "endpoint": "path", "headers": {...}}
    }

``meta.hosts`` is what ansible-rulebook turns into the playbook's ``--limit``;
it is only set when the host label names exactly one host (and, with
``inventory``/``inventory_hosts``, one host of the inventory).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import ssl

DOCUMENTATION = r"""
---
short_description: Receive Prometheus Alertmanager webhook notifications.
description:
  - Listens for Alertmanager webhook (version 4) POSTs and puts one event per
    alert on the rulebook queue, with the alerting host in C(meta.hosts).
  - Malformed JSON or payload, a JSON document nested deeper than I(max_json_depth),
    a string longer than I(max_field_chars) or a header that is not UTF-8 gives HTTP 400,
    a body over I(max_body_bytes) gives 413, headers over I(max_header_bytes) give 431,
    a missing or wrong bearer token gives 401, a client slower than I(header_timeout)
    or I(body_timeout) gets 408, a connection over I(max_connections) gets 503.
    The source keeps running.
  - The alert also travels base64-encoded as C(alert_b64), which is what the rulebooks
    pass to playbooks, so alert text is never read by Ansible as a template.
options:
  host:
    description: Address to listen on. A non-loopback address needs I(token)
      unless I(allow_insecure) is true.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    default: 5050
  token:
    description: Bearer token the sender must present
      (C(Authorization: Bearer <token>)). Empty or unset disables the check.
      Never logged; masked by value wherever it appears in an event.
    type: str
  allow_insecure:
    description: Allow listening on a non-loopback address without a token.
    type: bool
    default: false
  certfile:
    description: PEM certificate (chain) to serve HTTPS with; needs I(keyfile) too.
    type: str
  keyfile:
    description: PEM private key of I(certfile).
    type: str
  password:
    description: Password of an encrypted I(keyfile). Never logged.
    type: str
  host_label:
    description: Alert label (or list of labels, first present wins) naming the
      host; a C(:port) suffix is stripped.
    type: raw
    default: instance
  inventory:
    description: Inventory path (file or directory, as for C(ansible-playbook -i)). When set,
      an alert's host must be one host of it; a group name or an unknown name runs nothing.
    type: str
  inventory_hosts:
    description: Inventory host names an alert may name (joined with the hosts of I(inventory)).
    type: list
    elements: str
  severity_label:
    description: Alert label holding the severity (P0..P3, any case).
    type: str
    default: severity
  severity_by_alertname:
    description: Severity for alerts whose severity label is absent or not P0..P3,
      keyed by C(alertname).
    type: dict
    default: {}
  max_body_bytes:
    description: Largest accepted request body.
    type: int
    default: 1048576
  max_header_bytes:
    description: Largest accepted request line plus headers.
    type: int
    default: 16384
  max_json_depth:
    description: Deepest accepted nesting of JSON arrays and objects (Alertmanager sends 4).
    type: int
    default: 16
  max_field_chars:
    description: Longest accepted string (label or annotation name or value, fingerprint, times,
      URLs) anywhere in the payload.
    type: int
    default: 16384
  header_timeout:
    description: Seconds a client has to send the request line and all headers.
    type: int
    default: 10
  body_timeout:
    description: Seconds a client has to send the whole body.
    type: int
    default: 30
  max_connections:
    description: Open connections served at once; more are answered 503 and closed.
    type: int
    default: 64
  data_alerts_path:
    description: Dot-separated path to the alert list inside the payload.
    type: str
    default: alerts
"""

EXAMPLES = r"""
- claude_flow.runbook.alertmanager:
    host: 0.0.0.0
    port: 5050
    token: "{{ EDA_ALERTMANAGER_TOKEN }}"
    certfile: /etc/eda/tls/eda.crt
    keyfile: /etc/eda/tls/eda.key
    inventory: inventories/production
    severity_by_alertname:
      ClaudeFlowDbCorrupt: P0
"""

logger = logging.getLogger(__name__)

LEVELS = ('P0', 'P1', 'P2', 'P3')
STATUSES = ('firing', 'resolved')
# Inventory names only: anything else could be read as an Ansible host pattern
# (all, *, !, &, :, commas, ranges) and widen --limit beyond the alerting host.
HOST_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
RESERVED_HOSTS = ('all', 'ungrouped', 'localhost')
# Headers that carry credentials never go into an event (events reach playbooks and logs).
SECRET_HEADERS = ('authorization', 'proxy-authorization', 'cookie')
FINGERPRINT_UNSAFE_RE = re.compile(r'[^A-Za-z0-9_-]')
MAX_FINGERPRINT = 64
HEADER_NAME_RE = re.compile(rb'^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$')
MAX_HEADERS = 100
# After answering, how long (and how much) input a client may still send before the socket is closed:
# closing with unread input resets the connection, and the client could lose the answer with it.
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 1024 * 1024
MASK = '********'
INT_OPTIONS = (('port', 5050), ('max_body_bytes', 1024 * 1024), ('max_header_bytes', 16384),
               ('max_json_depth', 16), ('max_field_chars', 16384), ('header_timeout', 10),
               ('body_timeout', 30), ('max_connections', 64))
REASONS = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed',
           408: 'Request Timeout', 411: 'Length Required', 413: 'Payload Too Large',
           431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable'}


class ConfigError(ValueError):
    """A rulebook argument is wrong; the message names it and the fix."""


def _config(args):
    args = dict(args or {})
    cfg = {
        'host': args.get('host') or '127.0.0.1',
        'token': str(args.get('token') or ''),
        'allow_insecure': bool(args.get('allow_insecure', False)),
        'severity_label': args.get('severity_label') or 'severity',
        'data_alerts_path': args.get('data_alerts_path', 'alerts'),
        'certfile': args.get('certfile') or '',
        'keyfile': args.get('keyfile') or '',
        'password': str(args.get('password') or ''),
    }
    for name, default in INT_OPTIONS:
        value = args.get(name, default)
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise ConfigError('alertmanager source: %s must be an integer, got %r' % (name, value))
        if value <= 0 or (name == 'port' and value > 65535):
            raise ConfigError('alertmanager source: %s out of range: %r' % (name, value))
        cfg[name] = value
    labels = args.get('host_label', 'instance')
    if isinstance(labels, str):
        labels = [labels]
    if not labels or not all(isinstance(item, str) and item for item in labels):
        raise ConfigError('alertmanager source: host_label must be a label name or a list of '
                          'label names, got %r' % (args.get('host_label'),))
    cfg['host_labels'] = list(labels)
    mapping = args.get('severity_by_alertname') or {}
    if not isinstance(mapping, dict):
        raise ConfigError('alertmanager source: severity_by_alertname must be a dict '
                          '{alertname: P0..P3}, got %r' % (mapping,))
    cfg['severity_by_alertname'] = {}
    for alertname, level in mapping.items():
        level = str(level).upper()
        if level not in LEVELS:
            raise ConfigError('alertmanager source: severity_by_alertname.%s is %r; use P0, P1, P2 or P3'
                              % (alertname, mapping[alertname]))
        cfg['severity_by_alertname'][str(alertname)] = level
    if not cfg['token'] and not cfg['allow_insecure'] and not _is_loopback(cfg['host']):
        raise ConfigError('alertmanager source: refusing to listen on %s without a token; set token '
                          '(Alertmanager http_config.authorization) or allow_insecure: true' % cfg['host'])
    if bool(cfg['certfile']) != bool(cfg['keyfile']):
        raise ConfigError('alertmanager source: TLS needs both certfile and keyfile (got only %s)'
                          % ('certfile' if cfg['certfile'] else 'keyfile'))
    cfg['inventory_hosts'], cfg['inventory_groups'] = _inventory_names(args)
    return cfg


def _inventory_names(args):
    """(host names, group names) the alerts may be checked against; (None, set()) when not configured."""
    listed = args.get('inventory_hosts') or []
    path = args.get('inventory') or ''
    if not isinstance(listed, list) or not all(isinstance(item, str) and item for item in listed):
        raise ConfigError('alertmanager source: inventory_hosts must be a list of host names, got %r' % (listed,))
    if not listed and not path:
        return None, set()
    hosts, groups = set(listed), set()
    if path:
        try:
            from ansible.inventory.manager import InventoryManager
            from ansible.parsing.dataloader import DataLoader
        except ImportError:
            raise ConfigError('alertmanager source: inventory needs ansible-core next to ansible-rulebook; '
                              'install it or list the hosts in inventory_hosts')
        manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
        found = {host.name for host in manager.get_hosts()}
        if not found:
            raise ConfigError('alertmanager source: inventory %s has no hosts; point it at the inventory '
                              'the playbooks run with' % path)
        hosts |= found
        groups = set(manager.groups)
    return hosts, groups


def _is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_from_labels(labels, host_labels, inventory_hosts=None, inventory_groups=()):
    """Return (host, None) or (None, reason). Strips a :port suffix, refuses patterns, groups, unknown names."""
    for name in host_labels:
        value = labels.get(name)
        if value is None or value == '':
            continue
        value = str(value).strip()
        if value.startswith('['):
            # [ipv6]:port
            value = value[1:].split(']', 1)[0]
        elif re.match(r'^[^:]+:[0-9]{1,5}$', value):
            value = value.split(':', 1)[0]   # host:port; a:b is a pattern (union), refused below
        if value in RESERVED_HOSTS or not HOST_RE.match(value):
            return None, ('label %s=%r is not a single inventory host name (letters, digits, '
                          '_ . -); no playbook will run for it' % (name, labels.get(name)))
        if inventory_hosts is not None and value not in inventory_hosts:
            what = 'an inventory group, not one host' if value in inventory_groups else 'not an inventory host'
            return None, 'label %s=%r is %s; no playbook will run for it' % (name, labels.get(name), what)
        return value, None
    return None, 'alert has none of the host labels %s; no playbook will run for it' % ', '.join(host_labels)


def severity_of(labels, cfg):
    level = str(labels.get(cfg['severity_label'], '')).strip().upper()
    if level in LEVELS:
        return level
    return cfg['severity_by_alertname'].get(str(labels.get('alertname', '')), 'unknown')


def _compact_time(value):
    """RFC 3339 (Alertmanager sends nanoseconds) -> 'YYYYmmddTHHMMSSZ' in UTC, or None."""
    match = re.match(r'^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?$', str(value or ''))
    if not match:
        return None
    zone = match.group(2) or 'Z'
    try:
        stamp = datetime.datetime.fromisoformat(match.group(1) + ('+00:00' if zone == 'Z' else zone))
        return stamp.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    except (ValueError, OverflowError):
        return None  # 2024-13-45T99:.. matches the shape but is no time


def incident_id_for(alert):
    """Stable per alert episode: a firing and its later 'resolved' get the same id.

    Only letters, digits, '_' and '-' (it names files on the hosts), starting with one of the first two."""
    fingerprint = FINGERPRINT_UNSAFE_RE.sub('', str(alert.get('fingerprint') or '')).lstrip('_-')[:MAX_FINGERPRINT]
    if not fingerprint:
        # Not Alertmanager's own hash, but stable for the same label set.
        canonical = json.dumps(alert.get('labels') or {}, sort_keys=True, separators=(',', ':'))
        fingerprint = hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:16]
        if not alert.get('fingerprint'):
            alert['fingerprint'] = fingerprint
    started = _compact_time(alert.get('startsAt'))
    return fingerprint + '-' + started if started else fingerprint


class PayloadError(ValueError):
    """The request body is not an Alertmanager payload; answered with HTTP 400."""


def json_depth(text):
    """Deepest nesting of [ and { outside strings, counted without recursion (json.loads would overflow)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in '[{':
            depth += 1
            deepest = max(deepest, depth)
        elif char in ']}':
            depth -= 1
    return deepest


def _check_lengths(node, limit, where='payload'):
    """Every string (keys too) at most limit chars, else PayloadError naming where."""
    stack = [(node, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if len(item) > limit:
                raise PayloadError('%s is %d characters, over max_field_chars=%d' % (path, len(item), limit))
        elif isinstance(item, dict):
            for key, value in item.items():
                if len(key) > limit:
                    raise PayloadError('a key in %s is %d characters, over max_field_chars=%d' % (path, len(key), limit))
                stack.append((value, '%s.%s' % (path, key[:64])))
        elif isinstance(item, list):
            stack.extend((value, '%s[%d]' % (path, index)) for index, value in enumerate(item))


def _alerts_in(payload, path):
    if not isinstance(payload, dict):
        raise PayloadError('payload must be a JSON object (Alertmanager webhook v4), got %s'
                           % type(payload).__name__)
    node = payload
    if path:
        for key in path.split('.'):
            if not isinstance(node, dict) or key not in node:
                raise PayloadError('payload has no %r list (data_alerts_path); is the sender Alertmanager?' % path)
            node = node[key]
    else:
        node = [payload]
    if not isinstance(node, list):
        raise PayloadError('payload %r must be a list of alerts, got %s' % (path, type(node).__name__))
    return node


def mask(value, secrets):
    """value with every secret replaced by ********, in strings, dict keys and values, lists."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {mask(key, secrets): mask(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item, secrets) for item in value]
    return value


def events_from_payload(payload, cfg, endpoint='', headers=None):
    """Validate the whole payload first, then build events: all alerts are queued or none."""
    _check_lengths(payload, cfg.get('max_field_chars', 16384))
    alerts = _alerts_in(payload, cfg['data_alerts_path'])
    group_status = payload.get('status') if isinstance(payload, dict) else None
    notification = {key: payload.get(key) for key in ('receiver', 'status', 'groupKey', 'externalURL', 'version')
                    if isinstance(payload, dict) and key in payload}
    secrets = _secrets(cfg)
    events = []
    for index, raw in enumerate(alerts):
        if not isinstance(raw, dict):
            raise PayloadError('alerts[%d] must be an object, got %s' % (index, type(raw).__name__))
        alert = mask(dict(raw), secrets)
        for key in ('labels', 'annotations'):
            alert.setdefault(key, {})
            if not isinstance(alert[key], dict):
                raise PayloadError('alerts[%d].%s must be an object of strings' % (index, key))
        status = alert.get('status') or group_status
        if status not in STATUSES:
            raise PayloadError('alerts[%d].status must be firing or resolved, got %r' % (index, status))
        alert['status'] = status
        event = {
            'alert': alert,
            'severity': severity_of(alert['labels'], cfg),
            'incident_id': incident_id_for(alert),
            'notification': mask(notification, secrets),
            'meta': {'endpoint': mask(endpoint, secrets), 'headers': mask(dict(headers or {}), secrets)},
        }
        # Playbooks get the alert only in this form: base64 is never a template, and the playbook
        # decodes it with b64decode | from_json, whose result Ansible does not render.
        event['alert_b64'] = base64.b64encode(json.dumps(alert, sort_keys=True).encode('utf-8')).decode('ascii')
        host, reason = host_from_labels(alert['labels'], cfg['host_labels'], cfg.get('inventory_hosts'),
                                        cfg.get('inventory_groups', ()))
        if host:
            event['host'] = host
            event['meta']['hosts'] = [host]
        else:
            event['host_error'] = reason
        events.append(event)
    return events


def _secrets(cfg):
    return [value for value in (cfg.get('token'), cfg.get('password')) if value]


def _authorized(headers, token):
    scheme, dummy, presented = headers.get('authorization', '').partition(' ')
    if scheme.lower() != 'bearer' or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode('utf-8'), token.encode('utf-8'))


class HttpError(Exception):
    """An answer other than 200: status, message for the client (never echoes a secret)."""

    def __init__(self, status, message, headers=None):
        super(HttpError, self).__init__(message)
        self.status = status
        self.headers = headers or {}


class MaskingFilter(logging.Filter):
    """Masks the configured secrets by value in every record of this logger, whatever formatted them."""

    def __init__(self, secrets):
        super(MaskingFilter, self).__init__()
        self.secrets = secrets

    def filter(self, record):
        if self.secrets:
            record.msg = mask(record.getMessage(), self.secrets)
            record.args = ()
        return True


class AlertServer:
    """One request per connection, every read bounded in size and time."""

    def __init__(self, queue, cfg):
        self.queue = queue
        self.cfg = cfg
        self.open_connections = 0
        self.server = None

    def ssl_context(self):
        if not self.cfg['certfile']:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cfg['certfile'], self.cfg['keyfile'], password=self.cfg['password'] or None)
        except (OSError, ssl.SSLError) as exc:
            # The message of a wrong password names no secret; strip it anyway.
            raise ConfigError('alertmanager source: cannot load certfile/keyfile: %s'
                              % mask(str(exc), _secrets(self.cfg)))
        return context

    async def start(self):
        context = self.ssl_context()
        self.server = await asyncio.start_server(
            self.connection, self.cfg['host'], self.cfg['port'], ssl=context,
            limit=self.cfg['max_header_bytes'] + 2,
            ssl_handshake_timeout=self.cfg['header_timeout'] if context else None)
        return self.server

    async def connection(self, reader, writer):
        peer = (writer.get_extra_info('peername') or ('?',))[0]
        self.open_connections += 1
        try:
            if self.open_connections > self.cfg['max_connections']:
                logger.warning('alertmanager source: refused a connection from %s: %d open, max_connections=%d',
                               peer, self.open_connections - 1, self.cfg['max_connections'])
                await self.answer(writer, 503, {'error': 'too many connections (max_connections=%d)'
                                                % self.cfg['max_connections']})
                return
            try:
                status, body, headers = await self.request(reader, peer)
            except HttpError as exc:
                status, body, headers = exc.status, {'error': str(exc)}, exc.headers
                if status != 401:
                    logger.warning('alertmanager source: %d for %s: %s', status, peer, exc)
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the client went away; nothing to answer
            except Exception:  # noqa: BLE001 - a bug must not stop the source; say so, never 5xx for input
                logger.exception('alertmanager source: internal error on a request from %s', peer)
                status, body, headers = 500, {'error': 'internal error; see the rulebook log'}, {}
            await self.answer(writer, status, body, headers)
        finally:
            await self.linger(reader, writer)
            self.open_connections -= 1
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (asyncio.TimeoutError, OSError, ssl.SSLError):
                pass

    async def linger(self, reader, writer):
        """Half-close, then read and drop what the client still sends for a moment (RFC 9112 9.6), so an
        answer given before the request was read whole (503 over the cap, 4xx on bad input) reaches it."""
        async def drop():
            left = LINGER_MAX_BYTES
            while left > 0:
                chunk = await reader.read(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
        try:
            if writer.can_write_eof():
                writer.write_eof()
            await asyncio.wait_for(drop(), LINGER_SECONDS)
        except (asyncio.TimeoutError, OSError, ssl.SSLError, ValueError, RuntimeError):
            pass

    async def answer(self, writer, status, body, headers=None):
        data = json.dumps(body).encode('utf-8')
        head = ['HTTP/1.1 %d %s' % (status, REASONS.get(status, '')), 'Content-Type: application/json',
                'Content-Length: %d' % len(data), 'Connection: close']
        head += ['%s: %s' % item for item in (headers or {}).items()]
        try:
            writer.write(('\r\n'.join(head) + '\r\n\r\n').encode('ascii') + data)
            await asyncio.wait_for(writer.drain(), self.cfg['header_timeout'])
        except (asyncio.TimeoutError, OSError, ssl.SSLError):
            pass  # a client that does not read its answer does not hold the connection

    async def read_head(self, reader):
        try:
            raw = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), self.cfg['header_timeout'])
        except asyncio.TimeoutError:
            raise HttpError(408, 'request line and headers not received within header_timeout=%ds'
                            % self.cfg['header_timeout'])
        except asyncio.LimitOverrunError:
            raise HttpError(431, 'request line and headers exceed max_header_bytes=%d' % self.cfg['max_header_bytes'])
        except asyncio.IncompleteReadError as exc:
            if len(exc.partial) > self.cfg['max_header_bytes']:
                raise HttpError(431, 'request line and headers exceed max_header_bytes=%d'
                                % self.cfg['max_header_bytes'])
            raise
        if len(raw) > self.cfg['max_header_bytes'] + 4:
            raise HttpError(431, 'request line and headers exceed max_header_bytes=%d' % self.cfg['max_header_bytes'])
        lines = raw[:-4].split(b'\r\n')
        parts = lines[0].split(b' ')
        if len(parts) != 3 or not parts[2].startswith(b'HTTP/1.') or not parts[0].isalpha():
            raise HttpError(400, 'not an HTTP/1.x request line')
        method, target = parts[0].decode('ascii'), parts[1]
        if len(lines) - 1 > MAX_HEADERS:
            raise HttpError(431, 'more than %d headers' % MAX_HEADERS)
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b':')
            if not colon or not HEADER_NAME_RE.match(name):
                raise HttpError(400, 'malformed header line')
            try:
                text = value.strip(b' \t').decode('utf-8')
            except UnicodeDecodeError:
                raise HttpError(400, 'header %s is not valid UTF-8' % name.decode('ascii'))
            if any(ord(char) < 32 and char != '\t' for char in text):
                raise HttpError(400, 'header %s holds control characters' % name.decode('ascii'))
            key = name.decode('ascii').lower()
            headers[key] = headers[key] + ', ' + text if key in headers else text
        try:
            path = target.decode('ascii').split('?', 1)[0]
        except UnicodeDecodeError:
            raise HttpError(400, 'request target is not ASCII')
        if not path.startswith('/') or len(path) > 1024:
            raise HttpError(400, 'request target must be a path of at most 1024 characters')
        return method, path, headers

    async def read_body(self, reader, headers):
        limit = self.cfg['max_body_bytes']
        chunked = 'chunked' in headers.get('transfer-encoding', '').lower()
        length = headers.get('content-length')
        if chunked and length is not None:
            raise HttpError(400, 'both Content-Length and Transfer-Encoding: chunked')
        if not chunked:
            if length is None:
                raise HttpError(411, 'Content-Length required')
            if not length.isdigit() or len(length) > 18:
                raise HttpError(400, 'Content-Length must be a number of bytes')
            if int(length) > limit:
                raise HttpError(413, 'body of %d bytes exceeds max_body_bytes=%d' % (int(length), limit))
        try:
            if chunked:
                return await asyncio.wait_for(self._chunks(reader, limit), self.cfg['body_timeout'])
            return await asyncio.wait_for(reader.readexactly(int(length)), self.cfg['body_timeout'])
        except asyncio.TimeoutError:
            raise HttpError(408, 'body not received within body_timeout=%ds' % self.cfg['body_timeout'])

    @staticmethod
    async def _chunks(reader, limit):
        body = bytearray()
        while True:
            try:
                size_line = await reader.readuntil(b'\r\n')
                size = int(size_line.split(b';', 1)[0].strip() or b'x', 16)
            except (ValueError, asyncio.LimitOverrunError):
                raise HttpError(400, 'malformed chunked body')
            if size == 0:
                await reader.readuntil(b'\r\n')
                return bytes(body)
            if len(body) + size > limit:
                raise HttpError(413, 'body exceeds max_body_bytes=%d' % limit)
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b'\r\n':
                raise HttpError(400, 'malformed chunked body')

    async def request(self, reader, peer):
        method, path, headers = await self.read_head(reader)
        if path == '/health' and method in ('GET', 'HEAD'):
            return 200, {'status': 'ok'}, {}
        if method != 'POST':
            raise HttpError(405, 'POST the Alertmanager webhook payload', {'Allow': 'POST'})
        if self.cfg['token'] and not _authorized(headers, self.cfg['token']):
            # Say who failed, never what they sent.
            logger.warning('alertmanager source: rejected request from %s: missing or wrong bearer token', peer)
            raise HttpError(401, 'missing or wrong bearer token', {'WWW-Authenticate': 'Bearer'})
        body = await self.read_body(reader, headers)
        try:
            text = body.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise HttpError(400, 'body is not valid JSON: not UTF-8 (%s)' % exc.reason)
        depth = json_depth(text)
        if depth > self.cfg['max_json_depth']:
            raise HttpError(400, 'body is nested %d levels deep, over max_json_depth=%d'
                            % (depth, self.cfg['max_json_depth']))
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise HttpError(400, 'body is not valid JSON: %s' % exc)
        passed = {key: value for key, value in headers.items() if key not in SECRET_HEADERS}
        try:
            events = events_from_payload(payload, self.cfg, path.lstrip('/')[:256], passed)
        except PayloadError as exc:
            raise HttpError(400, str(exc))
        for event in events:
            if 'host_error' in event:
                logger.warning('alertmanager source: %s: %s', event['alert']['labels'].get('alertname'),
                               event['host_error'])
            await self.queue.put(event)
        return 200, {'accepted': len(events)}, {}


async def main(queue, args):
    """ansible-rulebook entry point: serve until the rulebook cancels the task."""
    cfg = _config(args)
    masking = MaskingFilter(_secrets(cfg))
    logger.addFilter(masking)
    server = AlertServer(queue, cfg)
    try:
        await server.start()
        logger.info('alertmanager source listening on %s:%d (%s, token %s, inventory check %s)', cfg['host'],
                    cfg['port'], 'https' if cfg['certfile'] else 'http', 'required' if cfg['token'] else 'not required',
                    'on (%d hosts)' % len(cfg['inventory_hosts']) if cfg['inventory_hosts'] is not None else 'off')
        await asyncio.Future()
    finally:
        if server.server is not None:
            server.server.close()
        logger.removeFilter(masking)


if __name__ == '__main__':
    # Manual run: print events instead of queueing them.
    class _PrintQueue(asyncio.Queue):
        async def put(self, item):
            print(json.dumps(item, indent=2))

    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(_PrintQueue(), {}))
