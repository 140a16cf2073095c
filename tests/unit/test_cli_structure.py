"""vppctl's wiring: command modules build their own command set, main.py adds them.

New command groups follow the pattern in main.py's docstring; these checks
keep it from eroding: importing a command module touches no app, command
modules never import each other or main, and every module is added.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import typer
import vppctl

CLI = Path(vppctl.__file__).parent
COMMAND_FILES = sorted(CLI.glob("commands_*.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_command_modules_import_neither_main_nor_each_other() -> None:
    assert COMMAND_FILES
    for path in [*COMMAND_FILES, CLI / "demo_paper.py", CLI / "demo_report.py"]:
        imported = _imported_modules(path)
        bad = sorted(m for m in imported if m == "vppctl.main" or "vppctl.commands_" in m)
        assert not bad, f"{path.name} imports {bad}"


def test_importing_a_command_module_registers_nothing_anywhere() -> None:
    code = (
        "import sys, vppctl.commands_orders as m; "
        "print('vppctl.main' in sys.modules, [c.name for c in m.commands.registered_commands])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 1)[0] == "False", out.stdout
    assert "'bid'" in out.stdout


def test_main_adds_every_command_module_once() -> None:
    from vppctl import main

    added = [m.__name__.rsplit(".", 1)[1] for m in main.COMMAND_MODULES]
    assert sorted(added) == [p.stem for p in COMMAND_FILES]
    assert len(set(added)) == len(added)
    for module in main.COMMAND_MODULES:
        assert isinstance(module.commands, typer.Typer)
        assert any(g.typer_instance is module.commands for g in main.app.registered_groups)


def test_the_cli_loads_no_chaincode_package() -> None:
    """vppctl is a client: of the chaincode side it may use the pure market library
    (offline clearing), the refusal codes and the certificate attribute names, never a
    contract or the shim's machinery."""
    code = (
        "import sys, vppctl.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('vpp_chaincode', 'vpp_shim')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['vpp_shim', 'vpp_shim.attributes', 'vpp_shim.codes']", out.stdout
    assert not (CLI / "testing.py").exists()  # test support lives in tests/fake_fabric.py
