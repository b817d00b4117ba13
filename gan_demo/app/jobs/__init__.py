"""The Train tab's job manager: the CLI's `Trainer` in a background thread, shared fairly by visitors.

    from gan_demo.app import jobs
    m = jobs.manager()                                  # the process-wide manager, configured from the environment
    view = m.start(session, "mnist-gan", steps=300, batch=64, lr=2e-4)
    while not view.finished:
        view = m.wait(session, view.version)            # returns on news (at the latest after `timeout`)
    m.stop(session)                                     # ends a run cleanly: what was learned is kept

The app's one entry point into `training` (imported lazily by gan_demo/app/ui/train.py); no gradio here.
Modules: limits (what a run may ask for), data (datasets, shared cache), runner (one run and its Trainer),
zerogpu (a run as short GPU calls), queue (TrainingManager: slots, the queue, sessions).

Sharing one server
  * At most GAN_DEMO_MAX_RUNS runs train at once (default 1). Later ones wait in a first-come queue of at most
    GAN_DEMO_MAX_QUEUED (default 4) and see their place in it; beyond that start() refuses at once: the trainer is
    busy. A session has one run in progress at a time, a client address at most GAN_DEMO_MAX_RUNS_PER_CLIENT
    (default 2; API callers may open a new session for every call). The UI's /train never waits in gradio's
    shared queue (no concurrency limit), so these bounds, not the queue, turn training traffic away.
  * Every run is bounded: steps and batch size per model and device (`limits`), wall time GAN_DEMO_RUN_TIME_LIMIT_S
    (default 600 s; then it stops cleanly like Stop), memory through those bounds and one shared cache of at most
    two decoded datasets.
  * Heartbeat: the page polls through wait(); a run whose session has not polled for GAN_DEMO_HEARTBEAT_S
    (default 30 s; the tab was closed) is stopped, or leaves the queue; end_session() (Gradio's unload) does it at
    once and deletes the session's runs.
  * A run that crashes (missing data, out of memory, a bug) ends in state "failed" with a one-line message, and its
    slot is free again.
Files: a run writes only to $GAN_DEMO_RUNS_DIR/<session hash>/<run id>/ (see gan_demo.app.my_runs), never weights/;
when it ends, its generator.safetensors is that session's model "my-run:<run id>", and the folder keeps only that
and what describes it (no resume file: outside GPU chunks a browser run writes none). A session keeps its last
KEEP_RUNS runs; folders older than GAN_DEMO_RUNS_KEEP_S (default one day) are deleted; the runs folder is kept
within GAN_DEMO_RUNS_QUOTA_MB (default 2048) by deleting the oldest finished runs, and while runs in progress fill
it no run starts. Each session folder names the server process that made it; at start, manager() deletes those of
servers no longer running (a killed server's leftovers).
Data: gan_demo.paths.find_data ($GAN_DEMO_DATA alone when set, else ./data, then ../shared/data; partial copies are
skipped); MNIST and CIFAR-10 are downloaded by torchvision when absent and the network allows; otherwise the run fails
with what to provide.
Hardware: CUDA when present, else Apple's MPS, else the CPU (GAN_DEMO_DEVICE overrides). On Hugging Face ZeroGPU (the
`spaces` package, SPACES_ZERO_GPU set), where CUDA exists only inside @spaces.GPU calls, a run trains in chunks: each
GPU call resumes from the run's resume file, trains for about GAN_DEMO_GPU_CHUNK_S seconds (default 40), saves the
resume file and the generator and returns, so the state lives on the CPU side (on disk) between calls.
TrainingManager(chunk_s=…) or GAN_DEMO_GPU_CHUNK_S selects the same chunked path on any device (the tests run it
on the CPU, where it ends bit for bit where a continuous run does).
"""
from .data import load_data, trainable_models
from .limits import Limits, LiveError, limits, minutes
from .queue import TrainingManager, manager
from .runner import LiveTrainer, RunView

__all__ = ["Limits", "LiveError", "LiveTrainer", "RunView", "TrainingManager", "limits", "load_data", "manager",
           "minutes", "trainable_models"]
