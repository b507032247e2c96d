"""Write each role's README.md from its meta/argument_specs.yml (and meta/main.yml's description).

    python3 tests/ci/role_readmes.py           # rewrite the READMEs
    python3 tests/ci/role_readmes.py --check   # exit 1 and name the stale ones (tests/unit/test_role_readmes.py)

A README may start with hand-written text: everything above the MARKER line is kept as it is, everything
below it is generated. A README without the marker is generated whole.
"""
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(ROOT, 'roles')
MARKER = '<!-- Generated from meta/argument_specs.yml by tests/ci/role_readmes.py: edit the spec, not the text below. -->'
SETTING = re.compile(r'\bclaude_flow_[a-z0-9_]+\b')


def load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle) or {}


def paragraphs(value):
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def cell(value):
    """One Markdown table cell: no line breaks, no unescaped pipe."""
    return ' '.join(str(value).split()).replace('|', '\\|')


def default_text(spec):
    if spec.get('required'):
        return '(required)'
    if 'default' not in spec:
        return ''
    value = spec['default']
    if isinstance(value, str):
        return f'`{value}`' if value else '`""`'
    if isinstance(value, (dict, list)):
        return f'`{yaml.safe_dump(value, default_flow_style=True, width=1000).strip()}`'
    return f'`{json.dumps(value)}`'


def type_text(spec):
    kind = spec.get('type', 'str')
    if kind == 'list' and spec.get('elements'):
        kind = f"list of {spec['elements']}"
    if spec.get('choices'):
        kind += ': ' + ', '.join(f'`{c}`' for c in spec['choices'])
    return kind


def options_table(options):
    if not options:
        return ['No parameters.']
    lines = ['| variable | type | default | meaning |', '| --- | --- | --- | --- |']
    for name, spec in options.items():
        spec = spec or {}
        lines.append(f"| `{name}` | {cell(type_text(spec))} | {cell(default_text(spec))} | "
                     f"{cell(' '.join(paragraphs(spec.get('description'))))} |")
    return lines


def settings_read(roles_dir, role, public):
    """The collection settings (roles/claude_flow) the role's own files mention, sorted."""
    found = set()
    for base, _dirs, names in os.walk(os.path.join(roles_dir, role)):
        for name in names:
            if name == 'README.md' or name.endswith('.py'):
                continue
            with open(os.path.join(base, name), encoding='utf-8') as handle:
                found.update(SETTING.findall(handle.read()))
    return sorted(found & public)


def generated(roles_dir, role, public):
    specs = load(os.path.join(roles_dir, role, 'meta', 'argument_specs.yml')).get('argument_specs', {})
    lines = []
    seen = {}
    for entry, body in specs.items():
        body = body or {}
        if role == 'claude_flow':
            call = 'the settings'
            lines += ['', '## Settings', '', cell(body.get('short_description', '')), '']
        else:
            call = 'the role' if entry == 'main' else f'`tasks_from: {entry}`'
            title = 'The role' if entry == 'main' else call
            lines += ['', f"## {title}: {cell(body.get('short_description', ''))}", '']
        for text in paragraphs(body.get('description')):
            lines += [' '.join(str(text).split()), '']
        options = body.get('options') or {}
        # Entry points that share one options block (a YAML anchor) point back instead of repeating it.
        key = yaml.safe_dump(options, sort_keys=True)
        if options and key in seen:
            lines.append(f'Parameters: as {seen[key]}.')
        else:
            lines += options_table(options)
            seen.setdefault(key, call)
    if role != 'claude_flow':
        used = settings_read(roles_dir, role, public)
        lines += ['', '## Collection settings it reads', '']
        lines.append('Defined once in the `claude_flow` role (roles/claude_flow/README.md); set them in the inventory: '
                     + (', '.join(f'`{name}`' for name in used) if used else 'none') + '.')
    return '\n'.join(lines).strip('\n') + '\n'


def readme(roles_dir, role, public):
    path = os.path.join(roles_dir, role, 'README.md')
    meta = load(os.path.join(roles_dir, role, 'meta', 'main.yml')).get('galaxy_info', {})
    head = f"# claude_flow.runbook.{role}\n\n{' '.join(str(meta.get('description', '')).split())}\n"
    if os.path.exists(path):
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
        if MARKER in text:
            head = text.split(MARKER)[0].rstrip('\n') + '\n'
    return path, f'{head}\n{MARKER}\n\n{generated(roles_dir, role, public)}'


def roles(roles_dir=ROLES):
    return sorted(name for name in os.listdir(roles_dir)
                  if os.path.isfile(os.path.join(roles_dir, name, 'meta', 'argument_specs.yml')))


def expected(roles_dir=ROLES):
    """{README path: the text it should have}, for every role with a meta/argument_specs.yml."""
    public = set(load(os.path.join(roles_dir, 'claude_flow', 'defaults', 'main.yml')))
    return dict(readme(roles_dir, role, public) for role in roles(roles_dir))


def stale(roles_dir=ROLES):
    """{README path: expected text} of the READMEs that differ from what the specs give."""
    out = {}
    for path, text in expected(roles_dir).items():
        current = None
        if os.path.exists(path):
            with open(path, encoding='utf-8') as handle:
                current = handle.read()
        if current != text:
            out[path] = text
    return out


def main(argv):
    check = '--check' in argv
    found = stale()
    for path, text in found.items():
        if not check:
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(text)
    names = [os.path.relpath(path, ROOT) for path in found]
    if check and names:
        print('stale role READMEs (run python3 tests/ci/role_readmes.py): ' + ', '.join(names), file=sys.stderr)
        return 1
    for name in names:
        print('wrote', name)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
