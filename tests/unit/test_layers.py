"""emulator/ never imports Flask or api (the dependency points api -> emulator)."""
import ast
from pathlib import Path

EMULATOR = Path(__file__).resolve().parents[2] / "emulator"
FORBIDDEN = {"flask", "werkzeug", "api", "gunicorn"}


def test_emulator_does_not_import_front_ends():
    offenders = []
    for path in EMULATOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [(path.name, n) for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
