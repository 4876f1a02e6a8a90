"""What `pip install nurture` brings is what the package imports.

The test environment also has the test extras installed, so a module the
package imports but declares only as a test dependency works here and fails
on a user's machine (`./scripts/nurture demo` in a fresh clone once did, over
httpx). This compares the package's imports with the closure of its runtime
requirements.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PACKAGE = Path(__file__).resolve().parents[2] / "nurture"
#: Imported only where its user brings it: `nurture.testing` is a pytest plugin.
BROUGHT_BY_THE_USER = {"pytest"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """`name` and every distribution its requirements pull in, for these extras only."""
    seen: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        key = _normal(current)
        if key in seen and not wanted:
            continue
        seen.add(key)
        for line in metadata.requires(current) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if marker is not None and not any(marker.evaluate(e) for e in environments):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"nurture", "__future__"}


def test_every_module_the_package_imports_comes_with_its_runtime_dependencies() -> None:
    closure = _runtime_closure("nurture")
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module, [])
        for module in sorted(_imported_modules() - BROUGHT_BY_THE_USER)
        if not any(_normal(dist) in closure for dist in providers.get(module, []))
    }
    assert missing == {}, f"imported but not a runtime dependency: {missing}"


def test_the_check_sees_a_test_only_dependency() -> None:
    closure = _runtime_closure("nurture")
    assert {"sqlalchemy", "redis", "httpx"} <= closure  # dramatiq[redis] brings redis too
    assert "pytest" in _imported_modules()
    assert not {"pytest", "freezegun", "aiosmtpd", "hypothesis"} & closure


def test_the_package_exports_its_curated_names_lazily() -> None:
    code = (
        "import sys, nurture\n"
        "assert 'nurture.engine.service' not in sys.modules, 'loaded eagerly'\n"
        "for name in nurture.__all__:\n"
        "    assert getattr(nurture, name) is not None, name\n"
        "assert nurture.EventType.EMAIL_OPENED == 'email.opened'\n"
        "assert issubclass(nurture.DefinitionError, nurture.NurtureError)\n"
        "print(len(nurture.__all__))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 10
