"""The Lambda bundle holds what a deployed function runs and nothing local-only (STYLE.md rule 17).

``chalice package`` ships ``app.py`` and ``chalicelib/`` whole, and the Lambda gets
``requirements.txt`` plus the runtime's boto3. What only ``make run`` or the tests need (moto and its
saved state, the patches of Chalice's local gateway, the landing page) lives in ``wisp_local/``
beside the app. These checks fail when such code, or an import of it, gets into the bundle.
"""
from __future__ import annotations

import ast
import importlib.metadata
import json
import pkgutil
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import chalice

import wisp_local

from .conftest import ROOT

LOCAL_PACKAGE = "wisp_local"
RUNTIME_PROVIDED = ("boto3",)  # the Lambda runtime brings boto3 and what it needs
CHALICE_RUNTIME = ("chalice", "chalice.app")  # all of chalice that `chalice package` adds
CHALICE_MODULES = {m.name for m in pkgutil.iter_modules(chalice.__path__)}
# the server that moto[server] (a dev requirement) pulls in and the local stack runs
DEV_SERVERS = ("werkzeug", "flask")


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(path: Path) -> list[str]:
    """The distributions a requirements file names itself (``-r`` includes are not followed)."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(_dist(re.split(r"[\s<>=!~\[;@]", line, maxsplit=1)[0]))
    return names


def _closure(names: list[str]) -> set[str]:
    """``names`` and everything they require, as installed here (optional extras left out)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_dist(re.split(r"[\s<>=!~\[;(@]", r, maxsplit=1)[0]) for r in requires if "extra ==" not in r]
    return seen


def lambda_distributions() -> set[str]:
    return _closure(_requirement_names(ROOT / "requirements.txt")) | _closure(list(RUNTIME_PROVIDED))


def _not_in_lambda(module: str, allowed: set[str], by_top: dict[str, list[str]]) -> bool:
    top = module.split(".")[0]
    if top == "chalicelib" or top in sys.stdlib_module_names:
        return False
    if top == "chalice":
        return module not in CHALICE_RUNTIME
    return not any(_dist(d) in allowed for d in by_top.get(top, ()))


def _runtime_imports(path: Path) -> list[tuple[str, int]]:
    """Absolute imports of a file, without those under ``if TYPE_CHECKING:`` (never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(sub) for child in node.body for sub in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            if node.module == "chalice":  # `from chalice import local` takes a module the bundle lacks
                found += [(f"chalice.{a.name}", node.lineno) for a in node.names if a.name in CHALICE_MODULES]
    return found


def test_chalicelib_imports_only_what_a_lambda_function_has():
    allowed, by_top = lambda_distributions(), importlib.metadata.packages_distributions()
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
        for module, line in _runtime_imports(path)
        if _not_in_lambda(module, allowed, by_top)
    ]
    assert offending == [], "local-only or dev-only imports in the deployed code (move them to wisp_local/)"


def test_the_local_package_lives_beside_chalicelib():
    assert Path(wisp_local.__file__).resolve().parent == ROOT / LOCAL_PACKAGE
    local_modules = {p.name for p in (ROOT / LOCAL_PACKAGE).glob("*.py")} - {"__init__.py", "__main__.py"}
    shipped = {p.name for p in (ROOT / "chalicelib").rglob("*.py")}
    assert local_modules and local_modules & shipped == set()


def test_requirements_txt_holds_no_dev_only_package():
    runtime = _closure(_requirement_names(ROOT / "requirements.txt"))
    dev_only = set(_requirement_names(ROOT / "requirements-dev.txt")) | set(DEV_SERVERS)
    assert {"moto", "chalice", "pytest"} <= dev_only
    assert runtime & dev_only == set()


def test_the_built_bundle_is_app_py_chalicelib_and_chalice_runtime_only(built):
    with zipfile.ZipFile(built / "package" / "deployment.zip") as zf:
        names = {n for n in zf.namelist() if not n.endswith("/")}
    source = {str(p.relative_to(ROOT)) for p in (ROOT / "chalicelib").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    expected = {"app.py", "wisp-config.yml", "chalice/__init__.py", "chalice/app.py"} | source
    assert {n for n in names if "/__pycache__/" not in f"/{n}"} == expected


def test_every_module_in_the_bundle_ships_its_bytecode(built):
    """/var/task is read-only: without .pyc every cold start compiles what it imports (bench/cold_import.py)."""
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(built / "package" / "deployment.zip") as zf:
        names = set(zf.namelist())
        for name in (n for n in names if n.endswith(".py")):
            folder, _, module = name.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{module[:-3]}.{tag}.pyc"
            assert pyc in names, name
            # unchecked hash-based (PEP 552 flags = 0b01): valid whatever the unpacked files' times are
            assert int.from_bytes(zf.read(pyc)[4:8], "little") == 0b01, pyc


# Run in a fresh interpreter on the unpacked bundle. A module found in the bundle or in the standard
# library is fine; one from site-packages must belong to a distribution the Lambda installs; anything
# else (the repository's wisp_local or tests, say) fails as it would there. This covers imports made
# at run time too (the route modules are loaded with importlib).
IMPORT_BUNDLE = """
import importlib, importlib.machinery, importlib.metadata, json, pkgutil, site, sys, sysconfig
from pathlib import Path

allowed = set(json.loads(sys.argv[1]))
by_top = importlib.metadata.packages_distributions()
bundle = Path.cwd().resolve()
sites = [Path(p).resolve() for p in site.getsitepackages() + [site.getusersitepackages()]]
stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}

def norm(name):
    return name.replace("_", "-").replace(".", "-").lower()

class NotInTheBundle:
    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not spec.origin or not spec.has_location:
            return None
        origin = Path(spec.origin).resolve()
        if origin.is_relative_to(bundle):
            return None
        if any(origin.is_relative_to(s) for s in sites):
            if any(norm(d) in allowed for d in by_top.get(name.split(".")[0], ())):
                return None
        elif any(origin.is_relative_to(s) for s in stdlib):
            return None
        raise ModuleNotFoundError(f"{name} ({origin}) is not in the Lambda bundle", name=name)

sys.meta_path.insert(0, NotInTheBundle())
import app  # noqa: F401
import chalicelib
for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(info.name)
assert Path(sys.modules["chalice"].__file__).resolve().is_relative_to(bundle)
print("imported", len([m for m in sys.modules if m.startswith("chalicelib")]), "chalicelib modules")
"""


def test_the_built_bundle_imports_without_local_or_dev_packages(built, tmp_path):
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(built / "package" / "deployment.zip") as zf:
        zf.extractall(bundle)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_BUNDLE, json.dumps(sorted(lambda_distributions()))],
        cwd=bundle, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "imported" in done.stdout
