"""Every command line the README shows is one the code accepts.

Nothing is started here: `batchcalls …` lines go through the launcher's own
parser (`launcher.cli.parse_command_line`, the one `batchcalls` runs), grpcurl
lines are checked against the proto descriptors (the method exists, the
`-d` body parses into its request message), and the paths, make targets and
environment variables the README names must exist where it says. The
grpcurl walkthrough is also run as written against a live server in
tests/integration/test_grpcurl.py.
"""

from __future__ import annotations

import base64
import importlib
import re
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory

from launcher.cli import parse_command_line
from tests.support.readme import (
    ROOT,
    ShellCommand,
    expand,
    inline_code,
    shell_commands,
    table_rows,
)

#: Placeholder words of the README's command synopses, with a value to parse.
PLACEHOLDERS = {"NAME": "Acme"}
BATCHCALLS = ("batchcalls", ".venv/bin/batchcalls")
SUBCOMMANDS = {"up", "server", "dialer", "ui", "migrate", "org", "simcarrier"}
PACKAGES = ("server", "dialer", "launcher", "admin_ui", "simcarrier", "contract")
TOP_LEVEL = tuple(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))


def accepted(words: list[str]) -> str | None:
    """None when `batchcalls *words` parses, else what the parser said."""
    try:
        parse_command_line([PLACEHOLDERS.get(w, w) for w in words])
    except SystemExit as exc:
        if exc.code not in (0, None):
            return f"exit {exc.code}"
    return None


def batchcalls_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `batchcalls`) of every command, in blocks and inline."""
    found = [(str(c), list(c.words[1:])) for c in shell_commands() if c.words[0] in BATCHCALLS]
    for code in inline_code():
        words = code.split()
        if words and words[0] in BATCHCALLS and len(words) > 1:
            found.append((f"`{code}`", words[1:]))
    return found


def test_readme_shows_every_subcommand():
    shown = {argv[0] for _, argv in batchcalls_lines()}
    assert SUBCOMMANDS <= shown, f"not in the README: {SUBCOMMANDS - shown}"


@pytest.mark.parametrize("where,argv", batchcalls_lines(), ids=lambda v: v if isinstance(v, str) else None)
def test_batchcalls_command_line_parses(where, argv, capsys):
    problem = accepted(argv)
    assert problem is None, f"{where}: the CLI refuses it ({problem}): {capsys.readouterr().err.strip()}"


def test_options_in_the_commands_table_exist(capsys):
    """`batchcalls up` | … (`--data-dir`, …): each option is one of that command's."""
    checked = 0
    for row in table_rows():
        command = re.fullmatch(r"`(?:batchcalls) ([a-z ]+?)(?: [A-Z]+)?`", row[0])
        if not command:
            continue
        argv = command.group(1).split() + [PLACEHOLDERS[w] for w in row[0].strip("`").split()[2:] if w in PLACEHOLDERS]
        for option in re.findall(r"`(--[a-z-]+)`", " ".join(row[1:])):
            # Given as a flag: the parser names it only when it does not know it
            # (an option that wants a value complains about the value instead).
            capsys.readouterr()
            accepted([*argv, option])
            unknown = re.search(rf"unrecognized arguments:.*{re.escape(option)}\b", capsys.readouterr().err)
            assert not unknown, f"README commands table: `batchcalls {' '.join(argv)}` has no {option}"
            checked += 1
    capsys.readouterr()
    assert checked >= 5, "the commands table should name the options of `up` and `simcarrier`"


def test_python_m_simcarrier_options_exist():
    from simcarrier.__main__ import parse_args

    for code in inline_code():
        if code.startswith("python -m simcarrier"):
            parse_args(code.split()[3:])


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = {c.words[1] for c in shell_commands() if c.words[0] == "make" and len(c.words) > 1}
    assert targets, "the README shows `make up` and `make test`"
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), f"Makefile has no target {target}"


def _load_proto_descriptors() -> descriptor_pool.DescriptorPool:
    for module in sorted((ROOT / "proto" / "batchcalls" / "v1").glob("*_pb2.py")):
        importlib.import_module(f"batchcalls.v1.{module.stem}")
    importlib.import_module("grpc_health.v1.health_pb2")
    return descriptor_pool.Default()


def grpcurl_commands() -> list[ShellCommand]:
    return [c for c in shell_commands() if c.words[0] == "grpcurl"]


def test_readme_has_grpcurl_calls():
    methods = [w for c in grpcurl_commands() for w in c.words if "/" in w and w.startswith("batchcalls.v1.")]
    assert len(methods) >= 10, methods


@pytest.mark.parametrize("command", grpcurl_commands(), ids=lambda c: f"line{c.line}")
def test_grpcurl_line_names_a_method_and_a_valid_request(command: ShellCommand):
    pool = _load_proto_descriptors()
    words = list(command.words)
    targets = [w for w in words if re.fullmatch(r"[a-z][\w.]*\.[A-Z]\w*/[A-Z]\w*", w)]
    if not targets:
        assert words[-1] == "list" or words[-2] == "list", f"{command}: no service/method"
        return
    service_name, method_name = targets[0].split("/")
    try:
        service = pool.FindServiceByName(service_name)
    except KeyError:
        pytest.fail(f"{command}: no service {service_name} in the proto")
    method = service.methods_by_name.get(method_name)
    assert method is not None, f"{command}: {service_name} has no method {method_name}"
    if "-d" in words:
        variables = {"CSV": base64.b64encode(b"phone\n+14155552671\n").decode()}
        body = expand(words[words.index("-d") + 1], variables)
        body = re.sub(r"\$\{?\w+\}?", "placeholder", body)
        request = message_factory.GetMessageClass(method.input_type)()
        try:
            json_format.Parse(body, request)
        except json_format.ParseError as exc:
            pytest.fail(f"{command}: the body is not a {method.input_type.full_name}: {exc}")


def test_shell_variables_are_set_before_use():
    """A walkthrough a reader pastes line by line must define what it uses."""
    defined: set[str] = set()
    for command in shell_commands():
        first = command.words[1] if command.words[0] == "export" and len(command.words) > 1 else command.words[0]
        if re.match(r"[A-Za-z_]\w*=", first):  # NAME=value, also NAME=$(…)
            defined.add(first.split("=", 1)[0])
            continue
        if command.words[0] == "grpcurl":
            used = set(re.findall(r"\$\{?(\w+)\}?", " ".join(command.words)))
            assert used <= defined, f"{command}: {used - defined} not set above it"


def test_paths_the_readme_names_exist():
    names = set(inline_code())
    names |= {w for c in shell_commands() for w in c.words}
    checked = 0
    for name in sorted(names):
        if not re.fullmatch(r"[\w.-]+/[\w./*-]*", name) or name.split("/")[0] not in TOP_LEVEL:
            continue
        assert list(ROOT.glob(name.rstrip("/"))), f"README names {name}, which is not in the repository"
        checked += 1
    assert checked >= 10


def _source_of(package: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / package).rglob("*.py"))


def test_configuration_table_names_the_process_that_reads_each_variable():
    sources = {p: _source_of(p) for p in PACKAGES}
    rows = [r for r in table_rows() if len(r) >= 3 and re.fullmatch(r"`[A-Z_]+`( / `[A-Z_]+`)*", r[0])]
    assert len(rows) >= 30, "the Configuration table lists every variable"
    for row in rows:
        readers = [w.strip() for w in row[1].split(",")]
        assert readers and all(r in PACKAGES for r in readers), f"{row[0]}: read by {row[1]!r}?"
        for variable in re.findall(r"`([A-Z_]+)`", row[0]):
            for reader in readers:
                assert f'"{variable}"' in sources[reader], f"README: {variable} is read by {reader}, but it is not"


def test_every_variable_the_readme_mentions_is_read_somewhere():
    code = "\n".join(_source_of(p) for p in PACKAGES)
    text = Path(ROOT / "README.md").read_text(encoding="utf-8")
    for variable in sorted(set(re.findall(r"\b((?:BATCHCALLS|SIMCARRIER)_[A-Z_]+)\b", text))):
        assert f'"{variable}"' in code, f"README mentions {variable}, which no process reads"


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_paths_and_links_in_docs_exist(page: Path):
    """docs/ names files of the repository and links its own pages: all must exist."""
    text = page.read_text(encoding="utf-8")
    for name in sorted(set(inline_code(text))):
        if re.fullmatch(r"[\w.-]+/[\w./*-]*", name) and name.split("/")[0] in TOP_LEVEL:
            assert list(ROOT.glob(name.rstrip("/"))), f"{page.name} names {name}, which is not in the repository"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"


def test_org_without_create_is_refused_with_the_command_to_type(capsys):
    """`batchcalls org Acme` once created an organization; now it says what to type."""
    with pytest.raises(SystemExit) as exc:
        parse_command_line(["org", "Acme"])
    assert exc.value.code == 2
    assert "batchcalls org create Acme" in capsys.readouterr().err
    args = parse_command_line(["org", "create", "create"])
    assert (args.org_command, args.name) == ("create", "create")


def test_simcarrier_passes_its_options_through(capsys):
    args = parse_command_line(["simcarrier", "--port", "8700", "--time-scale", "0.05", "--seed", "7"])
    assert args.simcarrier_args == ["--port", "8700", "--time-scale", "0.05", "--seed", "7"]
    with pytest.raises(SystemExit):
        parse_command_line(["simcarrier", "--no-such-option"])
    assert "--no-such-option" in capsys.readouterr().err
