"""Hostile input to every endpoint of a freshly launched app, through its API as an attacker's script sends it:
gradio_client, or plain HTTP for what gradio_client cannot encode (NaN, ±inf, a wrong number of arguments).

Each row of HOSTILE is (endpoint, arguments, the gr.Error message expected). After all of them: the server still
answers normal requests, and the audit hook it runs under (tests/audited_app.py) saw no file written outside the
project, weights, runs and temporary folders, and no access to the paths the hostile names point at.

| input                                   | endpoints                                    | outcome (gr.Error)                    |
|-----------------------------------------|----------------------------------------------|---------------------------------------|
| seed -1, 2**32, 2**64                   | generate, interpolate, explore, digits, text | "seed … must be from 0 to 4294967295" |
| seed NaN, inf, "7", "abc", 1.5, None, [] | generate, explore*, text, digits, interpolate | "… must be a whole number"           |
| grid size 0, 65, 10**6, -5, "16"        | generate                                     | "grid size …"                         |
| steps (frames) 0, 1, 61, 10**9          | interpolate                                  | "steps …"                             |
| training steps 0, 10**9, NaN, "5"       | train                                        | "steps must be …"                     |
| count 0, 10**9 (sentences, seeds/digit) | text, digits                                 | "number of sentences" / "seeds per …" |
| unknown model, "", None, 42, 1 MB name  | every endpoint with a model                  | "unknown model" (name quoted briefly) |
| ../../etc/passwd, /etc/passwd, canary   | every endpoint with a model                  | "unknown model" / "cannot train"      |
| a model of the wrong kind               | generate, digits, text, train                | "cannot be used here" / "cannot train"|
| truncation/temperature/slider NaN, ±inf | generate, explore, text                      | "… must be a number from …"           |
| wrong types: dict, list, bool, string   | every argument kind                          | a message naming the argument         |
| digits 12, -1, "x", 11 digits, "all"    | digits                                       | "digit …" / "choose at most 10"       |
| mode "cubic", sampling "beam", 1 MB str | interpolate, text                            | "mode" / "sampling" (quoted briefly)  |
| model, source or a file not uploaded    | project                                      | "unknown model" / "source" / gradio's |
| too few arguments                       | every endpoint with inputs                   | "didn't receive enough input values"  |
| a body that is not JSON, data not a list | any                                         | HTTP 400/422 with a detail, no crash  |

*Explore with an empty seed or truncation (None) leaves the picture as it is (gr.skip: the box is cleared while
typing a new value and the picture follows every change); every other bad seed or truncation is an error there too.
"""
import json
import math

import httpx
import pytest

import app_process
from conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

HUGE = "x" * 1_000_000
CANARY = "../../../../tmp/gan_demo_canary/model"
PATHS = ["../../etc/passwd", "/etc/passwd", CANARY, "weights/mnist-gan.safetensors", "~/.ssh/id_rsa"]
NAMES = ["nope", "", None, 42, HUGE, *PATHS]
ZEROS = [0] * 8
IMG, COND, TEXT = "mnist-dcgan", "mnist-cdcgan", "text-wgangp"
BAD_SEEDS = [(-1, "must be from 0 to 4294967295"), (2 ** 32, "must be from 0 to 4294967295"),
             (2 ** 64, "must be from 0 to 4294967295"), (math.nan, "must be a whole number"),
             (math.inf, "must be a whole number"), ("7", "must be a whole number"),
             ("abc", "must be a whole number"), (1.5, "must be a whole number"), (None, "must be a whole number"),
             ([1], "must be a whole number"), ({"a": 1}, "must be a whole number"), (True, "must be a whole")]

HOSTILE = (
    # seeds, to every endpoint that takes one
    [("/generate", (IMG, s, 4, 1.0), "seed " + m) for s, m in BAD_SEEDS]
    + [("/interpolate", (IMG, s, 1, 8, "slerp", 1.0), "seed A " + m) for s, m in BAD_SEEDS]
    + [("/interpolate", (IMG, 1, s, 8, "slerp", 1.0), "seed B " + m) for s, m in BAD_SEEDS]
    + [("/explore", (IMG, s, 1.0, *ZEROS), "seed " + m) for s, m in BAD_SEEDS if s is not None]
    + [("/digits", (COND, [1], s, 4, False), "seed " + m) for s, m in BAD_SEEDS]
    + [("/text", (TEXT, s, 5, "argmax", 1.0), "seed " + m) for s, m in BAD_SEEDS]
    # sizes and counts
    + [("/generate", (IMG, 0, n, 1.0), "grid size") for n in [0, 65, 10 ** 6, -5, "16", math.nan, None]]
    + [("/interpolate", (IMG, 0, 1, n, "lerp", 1.0), "steps") for n in [0, 1, 61, 10 ** 9, -3, "8", math.inf]]
    + [("/text", (TEXT, 0, n, "argmax", 1.0), "number of sentences") for n in [0, 51, 10 ** 9, "5"]]
    + [("/digits", (COND, [1], 0, n, False), "seeds per digit") for n in [0, 11, 10 ** 9, "4"]]
    + [("/train", ("mnist-gan", n, 16, 2e-4, "scratch"), "steps must be") for n in [0, 10 ** 9, -1, math.nan, "5"]]
    + [("/train", ("mnist-gan", 10, n, 2e-4, "scratch"), "batch size must be") for n in [0, 10 ** 6, "16"]]
    + [("/train", ("mnist-gan", 10, 16, lr, "scratch"), "learning rate must be")
       for lr in [0, -1, 1.0, math.nan, math.inf, "fast"]]
    # model names: unknown, empty, wrong type, huge, path-like
    + [("/generate", (n, 0, 4, 1.0), "unknown model") for n in NAMES]
    + [("/interpolate", (n, 0, 1, 4, "lerp", 1.0), "unknown model") for n in NAMES]
    + [("/explore", (n, 0, 1.0, *ZEROS), "unknown model") for n in NAMES]
    + [("/digits", (n, [1], 0, 4, False), "unknown model") for n in NAMES]
    + [("/text", (n, 0, 5, "argmax", 1.0), "unknown model") for n in NAMES]
    + [("/model_card", (n,), "unknown model") for n in NAMES]
    + [("/train", (n, 10, 16, 2e-4, "scratch"), "cannot train") for n in NAMES]
    + [("/train", ("mnist-gan", 10, 16, 2e-4, p), "start from must be") for p in [*PATHS, HUGE, None, 3]]
    # the wrong kind of model
    + [("/generate", (TEXT, 0, 4, 1.0), "cannot be used here"),
       ("/digits", (IMG, [1], 0, 4, False), "cannot be used here"),
       ("/text", (IMG, 0, 5, "argmax", 1.0), "cannot be used here")]
    # continuous settings
    + [("/generate", (IMG, 0, 4, t), "truncation") for t in [math.nan, math.inf, -math.inf, 0, 2, "1", None]]
    + [("/explore", (IMG, 0, 1.0, v, *ZEROS[1:]), "slider 1") for v in [math.nan, math.inf, 99, "1", None, [1]]]
    + [("/explore", (IMG, 0, 1.0, *ZEROS[:7], -1e300), "slider 8")]
    + [("/text", (TEXT, 0, 5, "temperature", t), "temperature") for t in [math.nan, math.inf, 99, -1, "hot"]]
    + [("/interpolate", (IMG, 0, 1, 4, m, 1.0), "mode") for m in ["cubic", "", None, 3, HUGE]]
    + [("/text", (TEXT, 0, 5, m, 1.0), "sampling") for m in ["beam", "", None, 3, HUGE]]
    # digits
    + [("/digits", (COND, d, 0, 4, False), m) for d, m in [
        ([12], "digit"), ([-1], "digit"), (["x"], "digit"), ([1.5], "digit"), ([None], "digit"),
        (list(range(11)), "at most 10 digits"), ([], "at least one digit"), ("all", "digits must be a list"),
        (None, "digits must be a list"), ({"1": 1}, "digits must be a list"), ([HUGE], "digit")]]
    + [("/digits", (COND, [1], 0, 4, v), "all digits") for v in ["yes", 1, None]]
    # project: names, sources, and files the visitor did not upload
    + [("/project", (n, "upload", None, None), "unknown model") for n in NAMES]
    + [("/project", (COND, src, None, None), "source must be") for src in ["sideways", None, 3, HUGE]]
    + [("/project", (COND, "upload", {"path": p, "meta": {"_type": "gradio.FileData"}}, None),
        "not uploaded by a user") for p in ["/etc/passwd", "weights/mnist-gan.safetensors"]]
    + [("/project", (COND, "draw", None, {"composite": {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}}),
        "not uploaded by a user")]
    # too few arguments
    + [(e, args[:-1], "didn't receive enough input values") for e, args in [
        ("/generate", (IMG, 0, 4, 1.0)), ("/interpolate", (IMG, 0, 1, 4, "lerp", 1.0)),
        ("/explore", (IMG, 0, 1.0, *ZEROS)), ("/digits", (COND, [1], 0, 4, False)),
        ("/text", (TEXT, 0, 5, "argmax", 1.0)), ("/model_card", (IMG,)), ("/train", ("mnist-gan", 10, 16, 2e-4,
                                                                                     "scratch"))]]
)


def needs_raw(args, message) -> bool:
    """Plain HTTP where gradio_client would not send the request as it is: NaN/inf, a short call, or a server-side
    file path (the client would upload its own copy of that file)."""
    return not json_safe(args) or "enough input" in message or "not uploaded" in message


def json_safe(args) -> bool:
    try:
        json.dumps(args, allow_nan=False)
        return True
    except ValueError:
        return False


def call(client, url: str, endpoint: str, args, raw: bool = False) -> str:
    """Send the request; → the error message it got (the test fails if it succeeded). Through gradio_client, or
    with `raw` as plain HTTP on gradio's /call API (NaN/inf literals; gradio_client also refuses a short call)."""
    if not raw:
        with pytest.raises(AppError) as caught:
            client.predict(*args, api_name=endpoint)
        return str(caught.value)
    body = json.dumps({"data": list(args)}, allow_nan=True)
    name = endpoint.strip("/")
    r = httpx.post(f"{url}gradio_api/call/{name}", content=body, headers={"content-type": "application/json"})
    r.raise_for_status()
    stream = httpx.get(f"{url}gradio_api/call/{name}/{r.json()['event_id']}", timeout=60).text
    assert stream.startswith("event: error"), stream[:300]
    return json.loads(stream.split("data: ", 1)[1].splitlines()[0])["error"]


@pytest.fixture(scope="module")
def audited_app(tiny_weights_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    log = folder / "audit.log"
    log.touch()
    env = {"GAN_DEMO_AUDIT_LOG": str(log), "GAN_DEMO_RUNS_DIR": str(folder / "runs")}
    with app_process.running_app(tiny_weights_dir, folder / "app.log", env=env,
                                 script=str(ROOT / "tests" / "audited_app.py")) as (proc, url, _):
        yield url, log, proc


@pytest.fixture(scope="module")
def client(audited_app):
    return gradio_client.Client(audited_app[0], verbose=False)


def short(value):
    return repr(value)[:40]


@pytest.mark.parametrize("endpoint, args, message", HOSTILE,
                         ids=[f"{e}-{i}-{short(a)[:30]}" for i, (e, a, _) in enumerate(HOSTILE)])
def test_hostile_input_gets_a_clear_error(audited_app, client, endpoint, args, message):
    text = call(client, audited_app[0], endpoint, args, raw=needs_raw(args, message))
    assert message in text, text[:300]
    assert len(text) < 1000 and "Traceback" not in text       # a message, never a dump of the input or a stack


def test_the_server_is_unharmed_and_touched_no_file_it_should_not(audited_app, client):
    url, log, proc = audited_app
    for endpoint, args, message in HOSTILE[::7]:     # a second round, then normal service
        call(client, url, endpoint, args, raw=needs_raw(args, message))
    for body in ["garbage", '{"data": "x"}', '{"nothing": 1}', "[" * 100_000]:
        r = httpx.post(f"{url}gradio_api/call/generate", content=body, headers={"content-type": "application/json"})
        assert r.status_code in (400, 422) and "detail" in r.json(), r.text[:200]
    gallery, _ = client.predict(IMG, 0, 4, 1.0, api_name="/generate")
    assert len(gallery) == 4 and proc.poll() is None
    table, _ = client.predict(TEXT, 0, 3, "argmax", 1.0, api_name="/text")
    assert len(table["data"]) == 3
    assert "No run to stop" in client.predict(api_name="/train_stop")
    assert log.read_text() == ""


def test_the_audit_hook_does_see_forbidden_access(tmp_path):
    """The check above is only worth something if the hook records what it is meant to: run it on a script that
    does the forbidden things."""
    import subprocess
    import sys
    log = tmp_path / "audit.log"
    script = ("import sys, runpy; sys.argv = ['x']; "
              "open('/etc/passwd').read(1); open('/var/tmp/gan_demo_outside_test', 'w').close(); "
              "import os; os.remove('/var/tmp/gan_demo_outside_test')")
    fake_app = tmp_path / "project"
    fake_app.mkdir()
    hook = (ROOT / "tests" / "audited_app.py").read_text().replace(
        'runpy.run_path(sys.argv[0], run_name="__main__")', f"exec({script!r})")
    (fake_app / "hook.py").write_text(hook)
    subprocess.run([sys.executable, str(fake_app / "hook.py")], check=True,
                   env={"GAN_DEMO_AUDIT_LOG": str(log), "PATH": "/usr/bin:/bin"})
    seen = log.read_text()
    assert "'/etc/passwd'" in seen and seen.count("gan_demo_outside_test") == 2
