"""The house rules of the code's layout (STYLE.md "Rooms"), checked so they hold without anyone remembering them.

- No module imports another module's underscore names: what two modules share is public.
- An app with more than one services or selectors module keeps them in a package named for
  their subjects (`services/leaderboard.py`), never as siblings like `services_leaderboard.py`.
- `apps/core` is the ground floor: it imports no other app of the project.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("apps", "config", "bench")


def _python_files(*packages: str) -> list[Path]:
    files = []
    for package in packages:
        files += [path for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts]
    return sorted(files)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_imports(source: str, module: str) -> list[str]:
    """`from X import _name` of another project module, as "line: X._name"; a module may use its own."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
            continue
        if node.module.split(".")[0] not in (*PROJECT_PACKAGES, "tests") or node.module == module:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{node.lineno}: {node.module}.{alias.name}")
    return found


def imported_apps(source: str) -> set[str]:
    """The project apps (`apps.<name>`) a module imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {".".join(name.split(".")[:2]) for name in names if name.startswith("apps.")}


def test_the_private_import_check_sees_what_it_must():
    source = "from apps.rules.services.scoring import BatchState, _secret\nfrom .x import _ok\nfrom json import _default\n"
    assert private_imports(source, "apps.rules.services.backfill") == ["1: apps.rules.services.scoring._secret"]
    assert private_imports(source, "apps.rules.services.scoring") == []


def test_no_module_imports_another_modules_underscore_names():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _python_files(*PROJECT_PACKAGES, "tests")
        for line in private_imports(path.read_text(), _module_name(path))
    ]
    assert found == [], "private names imported from another module: make what they share public and documented"


def test_services_and_selectors_of_an_app_are_one_module_or_one_package():
    problems = []
    for app in sorted(path for path in (ROOT / "apps").iterdir() if (path / "__init__.py").exists()):
        for kind in ("services", "selectors"):
            siblings = sorted(path.name for path in app.glob(f"{kind}_*.py"))
            if siblings:
                problems.append(f"apps/{app.name}: {', '.join(siblings)} belong in a {kind}/ package")
            if (app / f"{kind}.py").exists() and (app / kind).is_dir():
                problems.append(f"apps/{app.name}: both {kind}.py and {kind}/")
            package = app / kind
            if package.is_dir():
                doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
                for module in sorted(package.glob("*.py")):
                    if module.name != "__init__.py" and f"- {module.stem}:" not in doc:
                        problems.append(f"apps/{app.name}/{kind}/__init__.py does not say what {module.name} is for")
    assert problems == []


def test_core_imports_no_other_app():
    reached = {
        f"{path.relative_to(ROOT)} imports {app}"
        for path in _python_files("apps/core")
        for app in imported_apps(path.read_text())
        if app != "apps.core"
    }
    assert reached == set()
