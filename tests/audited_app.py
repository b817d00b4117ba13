"""Run app.py under a Python audit hook that records file access the app has no business doing.

Used by test_hostile_inputs.py: `python tests/audited_app.py --port N` with GAN_DEMO_AUDIT_LOG=<file>. Recorded,
one line each: any write, rename, removal or folder creation outside the project folder, the weights and runs
folders and the system temporary folder (where gradio keeps its cache); and any access at all to a path naming
/etc/passwd or "gan_demo_canary" (the targets of the hostile model names the tests send).
"""
import os
import runpy
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOWED_WRITES = tuple(os.path.realpath(p) + os.sep for p in filter(None, [
    ROOT, tempfile.gettempdir(), os.environ.get("GAN_DEMO_WEIGHTS_DIR"), os.environ.get("GAN_DEMO_RUNS_DIR"),
    "/dev", "/proc"]))
WATCHED = ("passwd", "gan_demo_canary")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
WRITE_EVENTS = {"os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod", "shutil.rmtree",
                "shutil.move", "shutil.copyfile"}
LOG = os.open(os.environ["GAN_DEMO_AUDIT_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _paths(args):
    return [os.fsdecode(a) for a in args if isinstance(a, (str, bytes, os.PathLike)) and not isinstance(a, int)]


def _outside(path: str) -> bool:
    return not (os.path.realpath(path) + os.sep).startswith(ALLOWED_WRITES)


def hook(event: str, args) -> None:
    if event not in WRITE_EVENTS and event not in ("open", "os.listdir", "os.scandir"):
        return
    paths = _paths(args[:2] if event != "open" else args[:1])
    writing = event in WRITE_EVENTS or (event == "open" and (
        (isinstance(args[1], str) and any(m in args[1] for m in "wax+")) or (args[2] or 0) & WRITE_FLAGS))
    for p in paths:
        if any(w in p for w in WATCHED) or (writing and _outside(p)):
            os.write(LOG, f"{event} {p!r}\n".encode())


sys.addaudithook(hook)
sys.argv = [os.path.join(ROOT, "app.py"), *sys.argv[1:]]
sys.path[0] = ROOT                      # as `python app.py` would have it
runpy.run_path(sys.argv[0], run_name="__main__")
