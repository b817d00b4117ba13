"""The three layers and their one direction (see ../shared/DESIGN.md):

    gan_demo/ (the library)  ←  training/ (the trainer)  ←  gan_demo/app/ (the app, the only one importing both)

Checked twice: at run time (a fresh interpreter imports every library module and must not have loaded gradio or
training), and statically (every import statement in each layer, including those inside functions, which run
only later, e.g. the app's lazy import of the job manager)."""
import ast
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
LIBRARY, APP, TRAINER = ROOT / "gan_demo", ROOT / "gan_demo" / "app", ROOT / "training"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module an import statement in the file names (relative imports resolved)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)    # `from pkg import module`
    return found


def files(folder: Path, exclude: Path | None = None) -> list[Path]:
    return [p for p in sorted(folder.rglob("*.py")) if exclude is None or exclude not in p.parents]


def offending(paths, forbidden) -> dict[str, list[str]]:
    bad = {}
    for p in paths:
        hits = sorted(m for m in imports(p) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if hits:
            bad[str(p.relative_to(ROOT))] = hits
    return bad


def test_the_scan_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    """The scanner itself: a relative import two levels up and an import inside a function are both found."""
    pkg = tmp_path / "gan_demo" / "app" / "ui"
    pkg.mkdir(parents=True)
    f = pkg / "tab.py"
    f.write_text("from ...registry import REGISTRY\nfrom .. import jobs\n\ndef later():\n    import training.loop\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert {"gan_demo.registry", "gan_demo.app.jobs", "training.loop"} <= imports(f)
    assert offending([f], ["training"]) == {"gan_demo/app/ui/tab.py": ["training.loop"]}


def test_library_modules_import_neither_gradio_nor_training_nor_the_app():
    lib = files(LIBRARY, exclude=APP)
    assert len(lib) >= 15, [str(p) for p in lib]          # the scan really reads the library
    assert offending(lib, ["gradio", "training", "gan_demo.app", "spaces", "plotly"]) == {}


def test_trainer_never_imports_the_app():
    assert offending(files(TRAINER), ["gan_demo.app", "gradio", "spaces"]) == {}


def test_only_the_job_manager_imports_training_in_the_app():
    """The tabs and the service reach the trainer only through gan_demo.app.jobs (imported lazily by the
    Train tab, so the page opens without loading the trainer)."""
    assert offending(files(APP, exclude=APP / "jobs"), ["training"]) == {}


def test_importing_the_whole_library_loads_neither_gradio_nor_training():
    """Run time: every library module imported in a fresh interpreter."""
    names = [module_name(p) for p in files(LIBRARY, exclude=APP)]
    code = (f"import importlib, sys\nfor n in {names!r}:\n    importlib.import_module(n)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'training', 'spaces') "
            "or m.startswith('gan_demo.app'))\n"
            "assert not bad, bad\nprint(len(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
