# -*- coding: utf-8 -*-
# Copyright: claude_flow.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets masked by value, and notification endpoints checked without repeating them.

``no_log`` hides a task's own output, but a secret also travels in error messages (``unknown url
type: '<the URL>'``), in what a run records (timeline, incident record, report) and in messages
built from those. So every text that reaches a report, a record, a message or the run's output is
passed through ``mask_text`` with the configured secret values: each value is replaced by MASK, and
so is every recognisable part of it - the value trimmed, without its scheme, its path/query (the
token part of a webhook URL), its token-like pieces, each line of a value with a line break, and
the URL-encoded, JSON-escaped and HTML-escaped forms of all of these. A run of token characters that
is a piece of a secret (a secret cut short by truncation, half of a token split by a line break) is
masked too.

Checks of an endpoint name the variable and the problem, never the value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

try:
    from urllib.parse import quote, quote_plus, unquote, unquote_plus
except ImportError:  # pragma: no cover (Python 2 targets do not run this code)
    from urllib import quote, quote_plus, unquote, unquote_plus  # type: ignore

MASK = '********'
# Values shorter than this are not masked: masking a 3-character value would garble every text it
# occurs in, and the endpoint checks refuse keys that short anyway.
MIN_VALUE_LEN = 4
# A piece of a secret (a path segment, a query value, a line) is masked when it is this long and
# looks like a token (letters and digits), or when it is long enough to be one on its own.
MIN_PIECE_LEN = 8
LONG_PIECE_LEN = 20
# A run of token characters in a text this long that occurs inside a secret is a fragment of it.
MIN_FRAGMENT_LEN = 12
MAX_URL_LEN = 4096
KEY_LENGTHS = (8, 256)  # shortest and longest usable API/routing key

_SPLIT_PIECES = re.compile(r'[/?#&=:@;,\s]+')
_SPLIT_CHUNKS = re.compile(r'\s+')
_TOKEN_RUN = re.compile(r'[A-Za-z0-9_\-]{%d,}' % MIN_FRAGMENT_LEN)
_SCHEME = re.compile(r'^([A-Za-z][A-Za-z0-9+.\-]*)://')
_BAD_CHARS = re.compile(r'[\s\x00-\x1f\x7f]')


def _leaves(values, out=None):
    """Every string in values (a string, or lists/dicts of them, nested), as a list."""
    out = [] if out is None else out
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (list, tuple, set)):
        for value in values:
            _leaves(value, out)
    elif isinstance(values, bytes):
        out.append(values.decode('utf-8', 'replace'))
    elif isinstance(values, str):
        out.append(str(values))
    elif isinstance(values, (int, float)) and not isinstance(values, bool):
        out.append(str(values))
    return out


def _html_escape(text, quote_chars=True):
    text = text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return text.replace('"', '&quot;').replace("'", '&#x27;') if quote_chars else text


def _token_like(piece):
    if len(piece) >= LONG_PIECE_LEN and '.' not in piece:
        return True
    return len(piece) >= MIN_PIECE_LEN and re.search(r'[A-Za-z]', piece) and re.search(r'[0-9]', piece)


def _url_parts(value):
    """The parts of a URL-like value that identify it: without the scheme, the path/query/fragment,
    the user-info, and the token-like pieces."""
    parts = set()
    match = _SCHEME.match(value)
    rest = value[match.end():] if match else value
    if match:
        parts.add(rest)
    cut = min([i for i in (rest.find('/'), rest.find('?'), rest.find('#')) if i >= 0] or [len(rest)])
    netloc, tail = rest[:cut], rest[cut:]
    if len(tail.strip('/')) >= MIN_VALUE_LEN:
        parts.add(tail)
        parts.add(tail.lstrip('/'))
    if '@' in netloc:
        parts.add(netloc.rsplit('@', 1)[0])
    for piece in _SPLIT_PIECES.split(value):
        if _token_like(piece):
            parts.add(piece)
    return parts


def _encodings(form):
    """The ways a text can show a form: as is, URL-encoded, JSON/Python-escaped, HTML-escaped, YAML
    single-quoted."""
    out = {form, quote(form, safe=''), quote(form, safe='/:'), quote_plus(form),
           json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1],
           _html_escape(form), _html_escape(form, quote_chars=False), form.replace("'", "''"),
           form.replace('/', '\\/'), repr(form)[1:-1]}
    return out


def secret_forms(values):
    """Every form of the given secret values to mask, longest first (so a value is masked whole
    before any of its parts)."""
    forms = set()
    for value in _leaves(values):
        seeds = set()
        for candidate in (value, value.strip()):
            seeds.update((candidate, unquote(candidate), unquote_plus(candidate)))
        for seed in list(seeds):
            for chunk in _SPLIT_CHUNKS.split(seed):
                seeds.add(chunk)
        for seed in list(seeds):
            seeds.update(_url_parts(seed))
        for seed in seeds:
            if len(seed.strip()) >= MIN_VALUE_LEN and (seed in (value, value.strip()) or _token_like(seed)
                                                       or len(seed) >= MIN_PIECE_LEN):
                forms.update(_encodings(seed))
    return sorted((form for form in forms if len(form) >= MIN_VALUE_LEN), key=lambda form: (-len(form), form))


class Masker(object):
    """Masks the given secret values in texts and data (built once, applied to many texts)."""

    def __init__(self, values):
        self.raw = [value.lower() for value in _leaves(values) if len(value.strip()) >= MIN_VALUE_LEN]
        for value in list(self.raw):
            self.raw.append(unquote_plus(value))
        forms = secret_forms(values)
        self.pattern = re.compile('|'.join(re.escape(form) for form in forms), re.I) if forms else None

    def _fragment(self, match):
        run = match.group(0)
        low = run.lower()
        if re.search(r'[a-z]', low) and re.search(r'[0-9]', low) and any(low in value for value in self.raw):
            return MASK
        return run

    def text(self, text):
        if not isinstance(text, str) or not self.raw:
            return text
        if self.pattern is not None:
            text = self.pattern.sub(MASK, text)
        return _TOKEN_RUN.sub(self._fragment, text)

    def data(self, data):
        """Strings masked everywhere in data (dict keys too); other types returned as they are."""
        if isinstance(data, dict):
            return dict((self.data(key), self.data(value)) for key, value in data.items())
        if isinstance(data, (list, tuple)):
            return [self.data(item) for item in data]
        if isinstance(data, str):
            return self.text(data)
        return data

    def count(self, text):
        """How many places of text hold a secret form or fragment (0 once masked)."""
        if not isinstance(text, str) or not self.raw:
            return 0
        hits = len(self.pattern.findall(text)) if self.pattern is not None else 0
        rest = self.pattern.sub(MASK, text) if self.pattern is not None else text
        return hits + sum(1 for match in _TOKEN_RUN.finditer(rest) if self._fragment(match) == MASK)


def mask(data, values):
    """data (a text, or lists/dicts holding texts) with every form of every secret value masked."""
    return Masker(values).data(data)


# ------------------------------------------------------------------------------------ endpoint checks

def _kind(value):
    for kind, name in ((dict, 'dict'), ((list, tuple, set), 'list'), (bool, 'boolean'), ((int, float), 'number')):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _describe_bad_char(value):
    char = _BAD_CHARS.search(value).group(0)
    what = {' ': 'a space', '\n': 'a line break', '\r': 'a carriage return', '\t': 'a tab'}.get(
        char, 'a control character')
    return 'contains %s (at character %d of %d)' % (what, _BAD_CHARS.search(value).start() + 1, len(value))


def _setting_text(name, value, what):
    """(the stripped text, None) for a setting to judge further, or (None, answer): a sentence when it is no
    string, '' (not configured) when it is empty."""
    if not isinstance(value, str):
        return None, '%s must be %s, got a %s' % (name, what, _kind(value))
    value = value.strip()
    return (value, None) if value else (None, '')


def url_problem(name, value):
    """Why value, the content of variable name, is not a usable http(s) endpoint, or '' when it is.
    Surrounding whitespace is ignored (a vaulted value often ends with a line break). The message
    names the variable and the problem, never the value."""
    value, problem = _setting_text(name, value, 'a URL string')
    if problem is not None:
        return problem
    fix = 'set it to the full endpoint URL, such as https://hooks.example.com/...'
    if len(value) > MAX_URL_LEN:
        return '%s is %d characters long (at most %d): it is not a single endpoint URL; %s' % (
            name, len(value), MAX_URL_LEN, fix)
    if _BAD_CHARS.search(value):
        return '%s %s; a URL has none: %s' % (name, _describe_bad_char(value), fix)
    match = _SCHEME.match(value)
    if not match:
        return '%s has no scheme (it must start with https:// or http://); %s' % (name, fix)
    if match.group(1).lower() not in ('http', 'https'):
        return '%s has a scheme other than http or https (mistyped or defanged?); %s' % (name, fix)
    rest = value[match.end():]
    netloc = re.split(r'[/?#]', rest, 1)[0]
    host_port = netloc.rsplit('@', 1)[-1]
    host, _sep, port = host_port.rpartition(':') if not host_port.endswith(']') else (host_port, '', '')
    if not _sep:
        host, port = host_port, ''
    if not host or host in ('[]',):
        return '%s has no host after the scheme; %s' % (name, fix)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return '%s has a port that is not a number from 1 to 65535; %s' % (name, fix)
    if not re.match(r'^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)$', host):
        return '%s has a host name with characters a host name cannot hold; %s' % (name, fix)
    return ''


def key_problem(name, value):
    """Why value is not a usable API/routing key, or '' when it is (empty is '': not configured).
    The message names the variable and the problem, never the value."""
    value, problem = _setting_text(name, value, 'a string')
    if problem is not None:
        return problem
    fix = 'set it to the integration key alone (32 characters for a PagerDuty Events v2 routing key)'
    if '://' in value or '/' in value:
        return '%s looks like a URL; %s' % (name, fix)
    if _BAD_CHARS.search(value):
        return '%s %s; %s' % (name, _describe_bad_char(value), fix)
    if not KEY_LENGTHS[0] <= len(value) <= KEY_LENGTHS[1]:
        return '%s is %d characters long (expected %d to %d); %s' % ((name, len(value)) + KEY_LENGTHS + (fix,))
    return ''
