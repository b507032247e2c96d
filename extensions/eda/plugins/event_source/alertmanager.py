# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Receive Prometheus Alertmanager webhook notifications; one rulebook event per alert.

Runs inside ansible-rulebook (``async def main(queue, args)``). It listens with
aiohttp, checks an optional bearer token, caps the body size, validates the
Alertmanager webhook v4 payload and puts one event per alert on the queue.
A bad request is answered with a 4xx status and the source keeps running.

Event shape (documented in docs/alerting.md)::

    {
      "alert": {"status": "firing"|"resolved", "labels": {...}, "annotations": {...},
                "startsAt": "...", "endsAt": "...", "generatorURL": "...",
                "fingerprint": "..."},
      "severity": "P0"|"P1"|"P2"|"P3"|"unknown",
      "host": "host-a",             # absent when no usable host label
      "host_error": "why",          # present instead of host
      "incident_id": "<fingerprint>-<startsAt as YYYYmmddTHHMMSSZ>",
      "notification": {"receiver": ..., "status": ..., "groupKey": ...,
                       "externalURL": ..., "version": ...},
      "meta": {"hosts": ["host-a"], "endpoint": "path", "headers": {...}}
    }

``meta.hosts`` is what ansible-rulebook turns into the playbook's ``--limit``;
it is only set when the host label names exactly one host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import datetime
import hashlib
import hmac
import ipaddress
import json
import logging
import re

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Prometheus Alertmanager webhook notifications.
description:
  - Listens for Alertmanager webhook (version 4) POSTs and puts one event per
    alert on the rulebook queue, with the alerting host in C(meta.hosts).
  - Malformed JSON or payload gives HTTP 400, a body over I(max_body_bytes)
    gives 413, a missing or wrong bearer token gives 401; the source keeps running.
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
    type: str
  allow_insecure:
    description: Allow listening on a non-loopback address without a token.
    type: bool
    default: false
  host_label:
    description: Alert label (or list of labels, first present wins) naming the
      host; a C(:port) suffix is stripped.
    type: raw
    default: instance
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
    severity_by_alertname:
      ClaudeFlowDbCorrupt: P0
"""

logger = logging.getLogger(__name__)

LEVELS = ('P0', 'P1', 'P2', 'P3')
STATUSES = ('firing', 'resolved')
# Inventory names only: anything else could be read as an Ansible host pattern
# (all, *, !, &, :, commas, ranges) and widen --limit beyond the alerting host.
HOST_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
RESERVED_HOSTS = ('all', 'ungrouped')
# Headers that carry credentials never go into an event (events reach playbooks and logs).
SECRET_HEADERS = ('authorization', 'proxy-authorization', 'cookie')
ID_UNSAFE_RE = re.compile(r'[^A-Za-z0-9_.-]')


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
    }
    for name, default in (('port', 5050), ('max_body_bytes', 1024 * 1024)):
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
    return cfg


def _is_loopback(host):
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_from_labels(labels, host_labels):
    """Return (host, None) or (None, reason). Strips a :port suffix, refuses host patterns."""
    for name in host_labels:
        value = labels.get(name)
        if value is None or value == '':
            continue
        value = str(value).strip()
        if value.startswith('['):
            # [ipv6]:port
            value = value[1:].split(']', 1)[0]
        elif value.count(':') == 1:
            value = value.split(':', 1)[0]
        if value in RESERVED_HOSTS or not HOST_RE.match(value):
            return None, ('label %s=%r is not a single inventory host name (letters, digits, '
                          '_ . -); no playbook will run for it' % (name, labels.get(name)))
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
    stamp = datetime.datetime.fromisoformat(match.group(1) + ('+00:00' if zone == 'Z' else zone))
    return stamp.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')


def incident_id_for(alert):
    """Stable per alert episode: a firing and its later 'resolved' get the same id."""
    fingerprint = ID_UNSAFE_RE.sub('', str(alert.get('fingerprint') or ''))
    if not fingerprint:
        # Not Alertmanager's own hash, but stable for the same label set.
        canonical = json.dumps(alert.get('labels') or {}, sort_keys=True, separators=(',', ':'))
        fingerprint = hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:16]
        alert['fingerprint'] = fingerprint
    started = _compact_time(alert.get('startsAt'))
    return fingerprint + '-' + started if started else fingerprint


class PayloadError(ValueError):
    """The request body is not an Alertmanager payload; answered with HTTP 400."""


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


def events_from_payload(payload, cfg, endpoint='', headers=None):
    """Validate the whole payload first, then build events: all alerts are queued or none."""
    alerts = _alerts_in(payload, cfg['data_alerts_path'])
    group_status = payload.get('status') if isinstance(payload, dict) else None
    notification = {key: payload.get(key) for key in ('receiver', 'status', 'groupKey', 'externalURL', 'version')
                    if isinstance(payload, dict) and key in payload}
    events = []
    for index, raw in enumerate(alerts):
        if not isinstance(raw, dict):
            raise PayloadError('alerts[%d] must be an object, got %s' % (index, type(raw).__name__))
        alert = dict(raw)
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
            'notification': notification,
            'meta': {'endpoint': endpoint, 'headers': dict(headers or {})},
        }
        host, reason = host_from_labels(alert['labels'], cfg['host_labels'])
        if host:
            event['host'] = host
            event['meta']['hosts'] = [host]
        else:
            event['host_error'] = reason
        events.append(event)
    return events


def _authorized(request, token):
    header = request.headers.get('Authorization', '')
    scheme, dummy, presented = header.partition(' ')
    if scheme.lower() != 'bearer' or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode('utf-8'), token.encode('utf-8'))


def _reply(code, **body):
    return web.json_response(body, status=code)


def make_app(queue, cfg):
    """The aiohttp application; separate from main() so tests can drive it the same way."""

    async def health(request):
        return _reply(200, status='ok')

    async def receive(request):
        peer = request.remote
        if cfg['token'] and not _authorized(request, cfg['token']):
            # Say who failed, never what they sent.
            logger.warning('alertmanager source: rejected request from %s: missing or wrong bearer token', peer)
            return web.json_response({'error': 'missing or wrong bearer token'}, status=401,
                                     headers={'WWW-Authenticate': 'Bearer'})
        if request.content_length is not None and request.content_length > cfg['max_body_bytes']:
            return _reply(413, error='body of %d bytes exceeds max_body_bytes=%d'
                          % (request.content_length, cfg['max_body_bytes']))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            # Chunked bodies have no Content-Length; aiohttp stops reading at client_max_size.
            return _reply(413, error='body exceeds max_body_bytes=%d' % cfg['max_body_bytes'])
        try:
            payload = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            logger.warning('alertmanager source: bad JSON from %s: %s', peer, exc)
            return _reply(400, error='body is not valid JSON: %s' % exc)
        headers = {key: value for key, value in request.headers.items() if key.lower() not in SECRET_HEADERS}
        try:
            events = events_from_payload(payload, cfg, request.match_info.get('endpoint', ''), headers)
        except PayloadError as exc:
            logger.warning('alertmanager source: bad payload from %s: %s', peer, exc)
            return _reply(400, error=str(exc))
        for event in events:
            if 'host_error' in event:
                logger.warning('alertmanager source: %s: %s', event['alert']['labels'].get('alertname'),
                               event['host_error'])
            await queue.put(event)
        return _reply(200, accepted=len(events))

    app = web.Application(client_max_size=cfg['max_body_bytes'])
    app.router.add_get('/health', health)
    app.router.add_post(r'/{endpoint:.*}', receive)
    return app


async def main(queue, args):
    """ansible-rulebook entry point: serve until the rulebook cancels the task."""
    cfg = _config(args)
    runner = web.AppRunner(make_app(queue, cfg))
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg['host'], cfg['port'])
        await site.start()
        logger.info('alertmanager source listening on %s:%d (token %s)', cfg['host'], cfg['port'],
                    'required' if cfg['token'] else 'not required')
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == '__main__':
    # Manual run: print events instead of queueing them.
    class _PrintQueue(asyncio.Queue):
        async def put(self, item):
            print(json.dumps(item, indent=2))

    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(_PrintQueue(), {}))
