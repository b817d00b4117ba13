"""`python -m training campaign PLAN`: train a plan's runs in the background, resumably, keeping each run's best
snapshot, and export the best ones into weights/ when asked.

A plan is a small TOML file (see training/plans/cpu.toml):

    [campaign]                   name, runs_dir, parked_dir, parallel (runs at once), device, threads, data
    [defaults]                   any run key, for every run
    [[run]]                      model (registry name), name (default: the model), steps, batch, lr_g, lr_d,
                                 betas, n_critic, gp_every, r1_gamma, top_k, top_k_decay, ema, flip, diffaug,
                                 arch = {ngf = 32, …}
                                 (widths, d_norm), eval_every, eval_samples, hours (budget per invocation), threads,
                                 device, seed, save_every, sample_every, log_every, targets, start_from, d_warmup

Each run trains in its own worker process (`threads` each; the command's `--threads N` overrides the plan's) in
RUNS_DIR/<name>/: the Trainer's files plus `campaign.json` (evaluations, best, warm start), `best.safetensors` (the
best snapshot's generator) and `best-discriminator.safetensors` (its discriminator, which an export ships beside
it). The worker trains up to the next evaluation step, measures the snapshot with a cheap metric (lower is better),
keeps it when it is the best so far, and goes on; resume files are saved every `save_every` steps, so killing it at
any moment loses at most that much work. Run it again and every run continues; finished runs are skipped. A run
folder that vanished (a replaced machine) or a resume file that cannot be read warm-starts from the run's best
snapshot or the shipped checkpoint of the same plan run (with the discriminator kept beside it, else a fresh one),
and says so in the log and the card.
`--park` copies each unfinished run's best snapshot, its discriminator and its record beside the plan
(parked_dir, default <plan folder>/parked/<plan name>/<run>/): committed, they survive a lost run folder, and the
run resumes from them (a run that has not yet beaten the shipped model would otherwise start again from step 0).
`start_from = "shipped"` lets a new run start from its model's shipped checkpoint whatever made it (continuing a
GPU-trained model on the CPU); `d_warmup = N` trains such a fresh discriminator alone for N steps first (saved as it
goes; a stopped warm-up is finished first when the run goes on).

The parts, in the order a run meets them:
    plan.py        the TOML file, read and checked (PlanError)
    runner.py      the parent process: one worker per run, `parallel` at a time, the budget, signals
    worker.py      one run: resume or warm-start, train, evaluate, keep the best
    evaluation.py  the cheap metric and how it picks the best snapshot
    state.py       a run folder's campaign.json and its lock
    status.py      --status
    park.py        --park: a run's best snapshot kept with the repository, and restored when its folder is lost
    ship.py        --export: the full measurement against the shipped checkpoint, and shipping (--latest: the
                   latest snapshot rather than the best)
"""
from .evaluation import headline, headline_value, metric_value, replaces_best, rescore_best, targets_missed
from .park import check_parked, park_run, parked_copy, unpark_run
from .plan import Plan, PlanError, RunSpec, load_plan
from .runner import check_devices, run_campaign
from .ship import export_best, export_protocol, keep_discriminator, readme_grid, shipped_note, shipped_score, \
    why_not_ship
from .state import BEST_D_FILE, BEST_FILE, lock_run, read_state, trained_by
from .status import format_status, status_rows
from .worker import run_worker

__all__ = ["BEST_D_FILE", "BEST_FILE", "Plan", "PlanError", "RunSpec", "check_devices", "export_best",
           "export_protocol", "format_status", "headline", "headline_value", "keep_discriminator", "load_plan",
           "lock_run", "metric_value", "check_parked", "park_run", "parked_copy", "read_state", "readme_grid",
           "replaces_best", "rescore_best", "run_campaign", "run_worker", "shipped_note", "shipped_score",
           "status_rows", "targets_missed", "trained_by", "unpark_run", "why_not_ship"]
