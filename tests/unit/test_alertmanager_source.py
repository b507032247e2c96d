"""The Alertmanager event source, served for real by aiohttp on a loopback port.

Each test starts the plugin's own main(queue, args) as ansible-rulebook does, POSTs
over TCP with an aiohttp client and asserts on the HTTP status and on the queue.
"""

import asyncio
import importlib.util
import json
import logging
import os
import socket

import aiohttp
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN = os.path.join(REPO, 'extensions', 'eda', 'plugins', 'event_source', 'alertmanager.py')


def _load_plugin():
    spec = importlib.util.spec_from_file_location('claude_flow_alertmanager_source', PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


source = _load_plugin()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def alert(name='ClaudeFlowDbCorrupt', severity='P0', instance='host-a:9100', status='firing',
          fingerprint='a1b2c3d4e5f60718', starts='2024-05-01T12:00:00.123456789Z', **labels):
    item = {'status': status, 'labels': {'alertname': name, **labels},
            'annotations': {'summary': name + ' on ' + str(instance)},
            'startsAt': starts, 'endsAt': '0001-01-01T00:00:00Z',
            'generatorURL': 'http://prometheus.example.invalid/graph', 'fingerprint': fingerprint}
    if severity is not None:
        item['labels']['severity'] = severity
    if instance is not None:
        item['labels']['instance'] = instance
    return item


def payload(*alerts, status='firing'):
    return {'version': '4', 'groupKey': '{}:{alertname="x"}', 'truncatedAlerts': 0, 'status': status,
            'receiver': 'claude-flow-eda', 'groupLabels': {}, 'commonLabels': {}, 'commonAnnotations': {},
            'externalURL': 'http://alertmanager.example.invalid', 'alerts': list(alerts)}


def serve(args, client, tls=None):
    """Run main(queue, args) on a free port, call client(session, url, queue), then stop the server.

    tls: an ssl context trusting the server's certificate; the client's session then speaks https."""
    args = dict(args)
    args.setdefault('port', free_port())
    args.setdefault('host', '127.0.0.1')
    url = '%s://127.0.0.1:%d' % ('https' if tls else 'http', args['port'])

    async def scenario():
        queue = asyncio.Queue()
        task = asyncio.ensure_future(source.main(queue, args))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls) if tls else None) as session:
                for dummy in range(200):
                    if task.done():
                        task.result()  # re-raise a startup error
                    try:
                        async with session.get(url + '/health') as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.02)
                else:
                    raise AssertionError('source did not start listening on %s' % url)
                result = await client(session, url, queue)
            assert not task.done(), 'the source stopped while serving requests'
            return result
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    return asyncio.run(scenario())


async def post(session, url, body, headers=None, path='/alerts'):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with session.post(url + path, data=data, headers=headers or {}) as resp:
        try:
            answer = await resp.json(content_type=None)
        except ValueError:
            answer = None
        return resp.status, answer


def drain(queue):
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def test_one_event_per_alert_with_host_limit_and_incident_id():
    async def client(session, url, queue):
        status, answer = await post(session, url, payload(
            alert(),
            alert(name='ClaudeFlowCacheHitRateLow', severity='p1', instance='host-b', status='resolved',
                  fingerprint='ffee000011112222', starts='2024-05-01T14:00:00+02:00')))
        return status, answer, drain(queue)

    status, answer, events = serve({}, client)
    assert status == 200 and answer == {'accepted': 2}
    assert len(events) == 2
    first, second = events
    assert first['alert']['status'] == 'firing'
    assert first['alert']['labels']['alertname'] == 'ClaudeFlowDbCorrupt'
    assert first['host'] == 'host-a' and first['meta']['hosts'] == ['host-a']
    assert first['severity'] == 'P0'
    assert first['incident_id'] == 'a1b2c3d4e5f60718-20240501T120000Z'
    assert first['meta']['endpoint'] == 'alerts'
    assert first['notification']['receiver'] == 'claude-flow-eda'
    assert second['alert']['status'] == 'resolved'
    assert second['severity'] == 'P1' and second['meta']['hosts'] == ['host-b']
    # +02:00 is converted to UTC so firing and resolved from any sender agree.
    assert second['incident_id'] == 'ffee000011112222-20240501T120000Z'


def test_resolved_gets_the_same_incident_id_as_its_firing():
    async def client(session, url, queue):
        await post(session, url, payload(alert()))
        await post(session, url, payload(alert(status='resolved'), status='resolved'))
        return drain(queue)

    firing, resolved = serve({}, client)
    assert firing['incident_id'] == resolved['incident_id']
    assert (firing['alert']['status'], resolved['alert']['status']) == ('firing', 'resolved')


def test_alert_status_falls_back_to_the_notification_status():
    item = alert()
    del item['status']

    async def client(session, url, queue):
        await post(session, url, payload(item, status='resolved'))
        return drain(queue)

    (event,) = serve({}, client)
    assert event['alert']['status'] == 'resolved'


def test_severity_label_wins_then_alertname_map_then_unknown():
    mapping = {'ClaudeFlowDbCorrupt': 'P0', 'ClaudeFlowLogsLarge': 'p3'}

    async def client(session, url, queue):
        await post(session, url, payload(
            alert(name='ClaudeFlowDbCorrupt', severity=None, fingerprint='01'),
            alert(name='ClaudeFlowLogsLarge', severity='critical', fingerprint='02'),
            alert(name='ClaudeFlowDbCorrupt', severity='P2', fingerprint='03'),
            alert(name='SomethingElse', severity='warning', fingerprint='04')))
        return drain(queue)

    events = serve({'severity_by_alertname': mapping}, client)
    assert [e['severity'] for e in events] == ['P0', 'P3', 'P2', 'unknown']


@pytest.mark.parametrize('instance,expected', [
    ('host-a:9100', 'host-a'),
    ('db01.example.invalid', 'db01.example.invalid'),
    ('198.18.0.5:9100', '198.18.0.5'),
    ('lab_host_1', 'lab_host_1'),
])
def test_host_label_port_is_stripped(instance, expected):
    host, reason = source.host_from_labels({'instance': instance}, ['instance'])
    assert (host, reason) == (expected, None)


@pytest.mark.parametrize('instance', ['all', 'ungrouped', 'web*', 'a,b', '!host-a', 'host-a&b', '[::1]:9100',
                                      '~web.*', 'two words'])
def test_host_patterns_are_never_used_as_limit(instance):
    async def client(session, url, queue):
        status = (await post(session, url, payload(alert(instance=instance))))[0]
        return status, drain(queue)

    status, events = serve({}, client)
    assert status == 200
    (event,) = events
    assert 'host' not in event and 'hosts' not in event['meta']
    assert 'not a single inventory host name' in event['host_error']


def test_host_label_list_and_missing_label():
    async def client(session, url, queue):
        await post(session, url, payload(alert(instance=None, nodename='node-7', fingerprint='01'),
                                         alert(instance=None, fingerprint='02')))
        return drain(queue)

    with_node, without = serve({'host_label': ['instance', 'nodename']}, client)
    assert with_node['meta']['hosts'] == ['node-7']
    assert 'hosts' not in without['meta']
    assert without['host_error'].startswith('alert has none of the host labels instance, nodename')


def test_missing_fingerprint_gets_a_stable_one():
    item = alert()
    del item['fingerprint']

    async def client(session, url, queue):
        await post(session, url, payload(item))
        await post(session, url, payload(dict(item, status='resolved')))
        return drain(queue)

    first, second = serve({}, client)
    assert first['alert']['fingerprint'] and first['incident_id'] == second['incident_id']
    assert first['incident_id'].endswith('-20240501T120000Z')


def test_malformed_json_is_400_and_the_source_keeps_serving():
    async def client(session, url, queue):
        bad = await post(session, url, b'{"version": "4", "alerts": [', {'Content-Type': 'application/json'})
        not_utf8 = await post(session, url, b'\xff\xfe\x00')
        good = await post(session, url, payload(alert()))
        return bad, not_utf8, good, drain(queue)

    bad, not_utf8, good, events = serve({}, client)
    assert bad[0] == 400 and 'not valid JSON' in bad[1]['error']
    assert not_utf8[0] == 400
    assert good == (200, {'accepted': 1})
    assert len(events) == 1


@pytest.mark.parametrize('body,message', [
    ([1, 2], 'payload must be a JSON object'),
    ({'version': '4', 'status': 'firing'}, "payload has no 'alerts' list"),
    ({'alerts': {'a': 1}}, "payload 'alerts' must be a list"),
    ({'alerts': ['x']}, 'alerts[0] must be an object'),
    ({'alerts': [{'status': 'pending', 'labels': {}}]}, 'alerts[0].status must be firing or resolved'),
    ({'alerts': [{'status': 'firing', 'labels': 'severity=P0'}]}, 'alerts[0].labels must be an object'),
])
def test_wrong_payload_shape_is_400_with_the_reason(body, message):
    async def client(session, url, queue):
        return await post(session, url, body), drain(queue)

    (status, answer), events = serve({}, client)
    assert status == 400 and message in answer['error']
    assert events == []


def test_one_bad_alert_rejects_the_whole_notification():
    async def client(session, url, queue):
        answer = await post(session, url, payload(alert(), {'status': 'weird', 'labels': {}}))
        return answer, drain(queue)

    (status, answer), events = serve({}, client)
    assert status == 400 and 'alerts[1].status' in answer['error']
    assert events == []


def test_body_too_large_is_413_with_and_without_content_length():
    big = json.dumps(payload(*[alert(fingerprint='%04d' % i) for i in range(40)])).encode()
    assert len(big) > 4096

    async def chunks():
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    async def client(session, url, queue):
        sized = await post(session, url, big)
        async with session.post(url + '/alerts', data=chunks()) as resp:
            chunked = resp.status
        small = await post(session, url, payload(alert()))
        return sized, chunked, small, drain(queue)

    sized, chunked, small, events = serve({'max_body_bytes': 4096}, client)
    assert sized[0] == 413 and 'max_body_bytes=4096' in sized[1]['error']
    assert chunked == 413
    assert small[0] == 200 and len(events) == 1


def test_bearer_token_required_when_configured_and_never_logged(caplog):
    token = 's3cret-token-value'

    async def client(session, url, queue):
        missing = await post(session, url, payload(alert()))
        wrong = await post(session, url, payload(alert()), {'Authorization': 'Bearer nope'})
        basic = await post(session, url, payload(alert()), {'Authorization': 'Basic ' + token})
        right = await post(session, url, payload(alert()), {'Authorization': 'Bearer ' + token,
                                                            'Cookie': 'session=abc'})
        return missing, wrong, basic, right, drain(queue)

    with caplog.at_level(logging.DEBUG):
        missing, wrong, basic, right, events = serve({'token': token}, client)
    assert missing[0] == 401 and wrong[0] == 401 and basic[0] == 401
    assert right == (200, {'accepted': 1})
    (event,) = events
    header_names = {name.lower() for name in event['meta']['headers']}
    assert 'authorization' not in header_names and 'cookie' not in header_names
    assert token not in json.dumps(event)
    assert token not in caplog.text
    assert 'missing or wrong bearer token' in caplog.text


@pytest.mark.parametrize('args,message', [
    ({'host': '0.0.0.0'}, 'refusing to listen on 0.0.0.0 without a token'),
    ({'port': 'http'}, 'port must be an integer'),
    ({'port': 70000}, 'port out of range'),
    ({'max_body_bytes': 0}, 'max_body_bytes out of range'),
    ({'host_label': []}, 'host_label must be a label name'),
    ({'severity_by_alertname': {'X': 'critical'}}, 'severity_by_alertname.X'),
])
def test_bad_arguments_fail_at_start_with_the_fix(args, message):
    with pytest.raises(source.ConfigError, match=message.replace('.', r'\.').replace('*', r'\*')):
        asyncio.run(source.main(asyncio.Queue(), args))


def test_non_loopback_with_token_or_explicit_insecure_is_accepted():
    assert source._config({'host': '0.0.0.0', 'token': 't'})['host'] == '0.0.0.0'
    assert source._config({'host': '0.0.0.0', 'allow_insecure': True})['token'] == ''


# ------------------------------------------------------------------ abuse: raw sockets on loopback

async def raw(url, data, read_timeout=30):
    """Send raw bytes on a fresh connection; (status or None when closed without an answer, body)."""
    host, port = url.rsplit('/', 1)[-1].split(':')
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), read_timeout)
    finally:
        writer.close()
    if not answer:
        return None, b''
    head, dummy, body = answer.partition(b'\r\n\r\n')
    return int(head.split(b' ')[1]), body


def request_bytes(body, headers=b''):
    return (b'POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' + headers
            + b'Content-Length: %d\r\n\r\n' % len(body) + body)


def test_slow_headers_and_slow_body_are_cut_with_408_and_the_source_keeps_serving():
    async def client(session, url, queue):
        started = asyncio.get_running_loop().time()
        headers = await raw(url, b'POST /alerts HTTP/1.1\r\nHost: x\r\nX-Slow: ')
        body = await raw(url, b'POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"al')
        elapsed = asyncio.get_running_loop().time() - started
        good = await post(session, url, payload(alert()))
        return headers, body, elapsed, good, drain(queue)

    headers, body, elapsed, good, events = serve({'header_timeout': 1, 'body_timeout': 1}, client)
    assert headers[0] == 408 and b'header_timeout=1s' in headers[1]
    assert body[0] == 408 and b'body_timeout=1s' in body[1]
    assert elapsed < 20  # bounded by the timeouts, not by the client's 30 s read
    assert good == (200, {'accepted': 1}) and len(events) == 1


def test_connections_over_the_cap_get_503_and_freed_slots_serve_again():
    async def client(session, url, queue):
        host, port = url.rsplit('/', 1)[-1].split(':')
        held = [await asyncio.open_connection(host, int(port)) for dummy in range(3)]
        for dummy, writer in held:
            writer.write(b'POST /alerts HTTP/1.1\r\n')   # a slowloris: never finishes
            await writer.drain()
        await asyncio.sleep(0.2)
        over = await raw(url, request_bytes(json.dumps(payload(alert())).encode()))
        for dummy, writer in held:
            writer.close()
        await asyncio.sleep(0.3)
        good = await post(session, url, payload(alert()))
        return over, good, drain(queue)

    over, good, events = serve({'max_connections': 3, 'header_timeout': 30}, client)
    assert over[0] == 503 and b'max_connections=3' in over[1]
    assert good == (200, {'accepted': 1}) and len(events) == 1


def test_deep_json_non_utf8_headers_oversized_headers_and_fields_are_4xx_never_500():
    deep = b'[' * 50000 + b']' * 50000
    nested = json.dumps(payload(dict(alert(), annotations={'x': [[[[[[[[[[[[[[[[[['y']]]]]]]]]]]]]]]]]]}))).encode()
    huge = json.dumps(payload(dict(alert(), annotations={'description': 'x' * 20000}))).encode()

    async def client(session, url, queue):
        answers = {
            'deep': await raw(url, request_bytes(deep)),
            'nested': await raw(url, request_bytes(nested)),
            'auth_not_utf8': await raw(url, request_bytes(b'{}', b'Authorization: Bearer \xff\xfe\r\n')),
            'header_not_utf8': await raw(url, request_bytes(b'{}', b'X-Label: \xc3\x28\r\n')),
            'huge_headers': await raw(url, request_bytes(b'{}', b'X-Big: ' + b'a' * 20000 + b'\r\n')),
            'huge_field': await raw(url, request_bytes(huge)),
            'no_length': await raw(url, b'POST /alerts HTTP/1.1\r\nHost: x\r\n\r\n'),
            'bad_length': await raw(url, b'POST /alerts HTTP/1.1\r\nContent-Length: -5\r\n\r\n'),
            'garbage': await raw(url, b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'),
            'get': await raw(url, b'GET /alerts HTTP/1.1\r\n\r\n'),
        }
        good = await post(session, url, payload(alert()))
        return answers, good, drain(queue)

    answers, good, events = serve({'max_field_chars': 16384}, client)
    statuses = {name: answer[0] for name, answer in answers.items()}
    assert statuses == {'deep': 400, 'nested': 400, 'auth_not_utf8': 400, 'header_not_utf8': 400,
                        'huge_headers': 431, 'huge_field': 400, 'no_length': 411, 'bad_length': 400,
                        'garbage': 400, 'get': 405}, answers
    assert b'max_json_depth=16' in answers['deep'][1]
    assert b'header Authorization is not valid UTF-8' in answers['auth_not_utf8'][1]
    assert b'alerts[0].annotations.description is 20000 characters, over max_field_chars=16384' \
        in answers['huge_field'][1]
    assert good == (200, {'accepted': 1}) and len(events) == 1


def test_alert_reaches_playbooks_only_base64_encoded_and_decodes_to_the_same_alert():
    import base64
    item = alert(note="{{ lookup('pipe', 'id') }}")

    async def client(session, url, queue):
        await post(session, url, payload(item))
        return drain(queue)

    (event,) = serve({}, client)
    decoded = json.loads(base64.b64decode(event['alert_b64']))
    assert decoded == event['alert'] and decoded['labels']['note'] == "{{ lookup('pipe', 'id') }}"
    assert '{' not in event['alert_b64']


def test_inventory_check_refuses_groups_and_unknown_names(tmp_path):
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(json.dumps({'all': {'children': {'claude_flow': {'hosts': {'host-a': {}, 'host-b': {}}}}}}))

    async def client(session, url, queue):
        await post(session, url, payload(alert(instance='host-a:9100', fingerprint='01'),
                                         alert(instance='claude_flow:9100', fingerprint='02'),
                                         alert(instance='nosuch', fingerprint='03'),
                                         alert(instance='host-a:host-b', fingerprint='04')))
        return drain(queue)

    known, group, unknown, union = serve({'inventory': str(inventory)}, client)
    assert known['meta']['hosts'] == ['host-a']
    assert 'an inventory group, not one host' in group['host_error'] and 'hosts' not in group['meta']
    assert 'not an inventory host' in unknown['host_error'] and 'hosts' not in unknown['meta']
    assert 'not a single inventory host name' in union['host_error']
    listed = serve({'inventory_hosts': ['host-b']}, client)
    assert [event.get('host') for event in listed] == [None, None, None, None]


def test_tls_with_an_encrypted_key_and_secrets_masked_in_events_and_logs(tmp_path, caplog):
    import ssl
    import subprocess
    key, cert, password, token = tmp_path / 'k.pem', tmp_path / 'c.pem', 'key-pass-0xdeadbeef', 'tok-0xfeedface'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-keyout', str(key), '-out', str(cert),
                    '-days', '1', '-subj', '/CN=127.0.0.1', '-passout', 'pass:' + password],
                   check=True, capture_output=True)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    item = alert(leak='prefix ' + token + ' suffix')
    args = {'port': free_port(), 'token': token, 'certfile': str(cert), 'keyfile': str(key), 'password': password}

    async def client(session, url, queue):
        status = (await post(session, url, payload(item), {'Authorization': 'Bearer ' + token, 'X-Echo': token}))[0]
        plain = await raw('http://127.0.0.1:%d' % args['port'], request_bytes(b'{}'), read_timeout=15)
        return status, plain, drain(queue)

    with caplog.at_level(logging.DEBUG):
        status, plain, events = serve(args, client, tls=context)
    assert status == 200 and plain[0] is None   # plain HTTP on the TLS port gets no answer
    (event,) = events
    assert event['alert']['labels']['leak'] == 'prefix ******** suffix'
    assert token not in json.dumps(event) and password not in json.dumps(event)
    assert token not in caplog.text and password not in caplog.text
    with pytest.raises(source.ConfigError, match='cannot load certfile/keyfile') as failed:
        asyncio.run(source.main(asyncio.Queue(), {'port': free_port(), 'certfile': str(cert), 'keyfile': str(key),
                                                  'password': 'wrong'}))
    assert 'wrong' not in str(failed.value).replace('cannot load', '')
