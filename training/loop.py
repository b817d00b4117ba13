"""The training loop shared by the CLI and the app's Train tab.

    trainer = Trainer(entry, data, run_dir, steps=2000, callback=fn)
    trainer.train()           # or Trainer.resume(run_dir, data).train()

Speed by design: data lives on the training device as uint8 and is augmented there; channels-last convolutions
(1.2–1.5× on the CPU too); on CUDA bf16 autocast, fused Adam, cuDNN autotuning and, opt-in, CUDA graphs (compile);
losses are accumulated on the device and read (one host sync) every `log_every`
steps; the generator step trains on the batch generated for the last discriminator step (as pytorch/examples' DCGAN
does), one generator pass a step fewer (1.07–1.18× on the CPU, README "Performance"). Exactness by design: every
random draw after initialisation comes from one seeded torch.Generator whose state is in the resume file, so N steps
= N/2 steps + resume + N/2 steps, bit for bit on the CPU.

The callback receives dicts {"type": "log"|"samples"|"done", "step", "total", …}; it (or `stop_event.set()`)
can stop the run cleanly: the state is saved and the generator exported, nothing learned is lost.

Data-parallel under torchrun (see distributed.py): `batch` stays the global batch, and every rank draws the same
global batch from the same seeded generator and keeps its own rows of it (rank r: rows r·b … r·b+b-1, b = batch /
world size); G and D are wrapped in DistributedDataParallel, which averages their gradients over the ranks. So a
run on W processes is the same computation as a one-process run with the same batch, split W ways (batch norm
aside: without --sync-bn each rank normalises with its own rows' statistics), and the resume file, which holds the
one generator state, carries on under any world size. Rank 0 alone logs and writes files.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import pickle
import platform
import threading
import time
import warnings
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from gan_demo.checkpoint import (FREE_CONFIG_KEYS, CheckpointError, atomic_write, check_state_dict, read_checkpoint,
                                 save_checkpoint)
from gan_demo.devices import pick_device
from gan_demo.generator import check_claims
from gan_demo.latents import sample_latents, seed_latents
from gan_demo.models import build_discriminator, build_generator
from gan_demo.models.common import read_code
from gan_demo.registry import ModelEntry, Recipe
from gan_demo.render import make_grid, to_pil, to_uint8

from . import distributed
from .augment import diff_augment
from .losses import d_loss, g_loss, gradient_penalty, r1_penalty
from .runlog import RunFolder
from .errors import HintedError

N_FIXED = 64                        # fixed latents shown in the sample grids (seeds 0…63)


class TrainingError(HintedError):
    """A run that cannot start or go on; `hint` says what to change (in the CLI's terms)."""


def hardware_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = torch.get_num_threads()
    return f"CPU ({cpu}, {n} thread{'s' if n != 1 else ''})"


def _why_unusable(e: Exception) -> str:
    """A resume file's load error in a few words (torch's own messages run to paragraphs, with bad advice)."""
    text = str(e)
    if isinstance(e, EOFError) or "central directory" in text:
        return "empty or cut short"
    if isinstance(e, pickle.UnpicklingError):    # garbage, or objects beyond tensors and numbers (maybe code)
        return "not torch.save data of tensors and numbers; refused unread, nothing in it was run"
    if isinstance(e, RuntimeError) and "state_dict" in text:
        detail = next((line.strip() for line in text.splitlines()[1:] if line.strip()), "")[:150]
        return f"saved by another model or settings: {detail}"
    return (text.strip().splitlines() or [type(e).__name__])[0][:200]


def _fine_tune_source(path, model: ModelEntry) -> tuple[ModelEntry, dict]:
    """The generator weights to fine-tune from, checked (NaN, another model), and `model` with the file's own
    widths (a campaign may ship narrower networks than the registry's). A TrainingError names the file by its name
    alone (the app shows this message to visitors: no server paths)."""
    try:
        entry, state, _ = read_checkpoint(path)
        check_claims(path, entry, model)
    except CheckpointError as e:
        raise _fine_tune_error(path, e) from None
    widths = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.config.to_dict().items()
              if k in FREE_CONFIG_KEYS - {"vocab"}}
    return model.with_config(**widths), state


def _fine_tune_error(path, e: CheckpointError) -> TrainingError:
    problem = str(e).replace(f"{path}: ", "", 1).replace(str(path), Path(path).name)
    return TrainingError(f"cannot fine-tune from {Path(path).name}: {problem}")


class Trainer:
    def __init__(self, entry: ModelEntry, data, run_dir, *, steps: int | None = None, batch: int | None = None,
                 lr: float | None = None, device=None, seed: int = 0, callback=None,
                 stop_event: threading.Event | None = None, log_every: int | None = None,
                 sample_every: int | None = None, save_every: int | None = None, init_from=None,
                 progress: bool = True, sync_bn: bool = False, compile: bool = False):
        r = entry.recipe
        overrides = {"steps": steps or r.steps, "batch": batch or r.batch, "log_every": log_every or r.log_every,
                     "sample_every": sample_every or r.sample_every}
        if lr:
            overrides.update(lr_g=lr, lr_d=lr)
        # the entry carries the recipe it trains with (--lr/--batch of the CLI or the app): so do config.json and the
        # checkpoint, whose card's Loss line and recipe note then say what happened, not the registry's defaults
        entry = entry.with_recipe(**overrides)
        if entry.is_text:        # the data's vocabulary and length: part of the architecture, so of the checkpoint
            entry = entry.with_config(vocab=tuple(data.codec.vocab), seq_len=data.codec.max_len)
        init_state = None
        if init_from is not None:                # fine-tune a shipped or exported generator, at its own widths
            entry, init_state = _fine_tune_source(init_from, entry)
        self.entry, self.seed = entry, seed
        self.device = pick_device(device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:       # fixed shapes every step: let cuDNN time its convolution algorithms once and keep the best
            torch.backends.cudnn.benchmark = True
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0
        if self.recipe.batch % self.world:
            raise TrainingError(f"batch {self.recipe.batch} does not split over {self.world} processes",
                                f"give --batch a multiple of {self.world} (it is the global batch)")
        if sync_bn and self.world == 1:
            raise TrainingError("--sync-bn synchronises batch norm across torchrun's processes, and this is one "
                                "process", "leave it off, or launch with torchrun --nproc_per_node N")
        if compile and not self.cuda:
            raise TrainingError(f"--compile needs a CUDA device (it replays CUDA graphs), not '{self.device}'",
                                "leave it off here")
        if compile and self.world > 1:
            raise TrainingError("--compile is for one process", "leave it off under torchrun")
        if self.recipe.batch > len(data):
            raise TrainingError(f"batch {self.recipe.batch:,} is larger than the data ({len(data):,} examples)",
                                f"give --batch at most {len(data):,}")
        part = self.recipe.batch // self.world
        self.rows = slice(self.rank * part, (self.rank + 1) * part)     # this rank's rows of each global batch
        self.run = RunFolder(run_dir)            # created, with its config.json, when training starts
        self.save_every = save_every or self.recipe.sample_every
        self.callback, self.stop_event = callback, stop_event or threading.Event()
        self.progress = progress and self.is_main

        init = torch.Generator().manual_seed(seed)     # initial weights: a local generator for the re-initialisation
        self.G = build_generator(entry.arch, entry.config, generator=init)
        self.D = build_discriminator(entry.arch, entry.config, generator=init)
        if init_state is not None:
            try:
                check_state_dict(init_from, self.G.state_dict(), init_state)
            except CheckpointError as e:
                raise _fine_tune_error(init_from, e) from None
            self.G.load_state_dict(init_state)
        self.G.to(self.device)
        self.D.to(self.device)
        # channels-last: faster convolutions on CUDA and the CPU alike. Not under torch.compile, which picks its
        # own layouts: given channels-last weights, its stride checks fail in the backward pass of a DCGAN-64 on
        # CUDA (torch 2.11: "expected size 512==512, stride 16==1", the 4×4 map after G's first layer)
        self.memory_format = (torch.channels_last if not (entry.is_text or compile) else torch.contiguous_format)
        if self.memory_format == torch.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.sync_bn = sync_bn and self.world > 1
        if self.sync_bn:         # after the EMA copy: G_ema keeps plain batch norm, so rank 0 samples it alone
            if not self.cuda:
                raise TrainingError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel)",
                                    "leave it off on the CPU")
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        adam = dict(betas=self.recipe.betas, fused=True) if self.cuda else dict(betas=self.recipe.betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.recipe.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.recipe.lr_d, **adam)
        self.gen = torch.Generator(self.device).manual_seed(seed)
        self.data = data.to(self.device)
        self.step, self.elapsed = 0, 0.0
        n_fixed = N_FIXED - N_FIXED % entry.num_classes if entry.num_classes else N_FIXED   # whole rows
        self.fixed_z = seed_latents(range(n_fixed), entry.latent_dim, entry.latent_dist)
        self.fixed_labels = torch.arange(n_fixed) % entry.num_classes if entry.num_classes else None
        self._acc, self._acc_n = None, 0
        self._gp = torch.zeros((), device=self.device)     # the last gradient penalty taken (0 without one)
        # what train_step calls: G and D themselves, or their DDP wrappers (which also broadcast rank 0's initial
        # weights); self.G and self.D stay the bare modules, so state dicts and the EMA never see the wrappers
        self._g, self._d = self.G, self.D
        if self.world > 1:
            ids = [self.device.index] if self.cuda else None
            self._g = DistributedDataParallel(self.G, device_ids=ids)
            self._d = DistributedDataParallel(self.D, device_ids=ids)
        self._d_gp = self._d             # the gradient penalty differentiates twice: compiled graphs cannot
        self.compiled = compile
        if compile:
            # Inductor kernels replayed as CUDA graphs (CUDA-graph trees): for small batches, where eager PyTorch is
            # bound by kernel launches. Same modules, same parameters: state dicts and the EMA are unchanged.
            self._g = torch.compile(self.G, mode="reduce-overhead")
            self._d = torch.compile(self.D, mode="reduce-overhead")
        self.config = {"model": entry.name, "entry": entry.to_dict(),
                       "recipe": {**self.recipe.__dict__, "betas": list(self.recipe.betas)},
                       "seed": seed, "data": data.source, "device": str(self.device),
                       "init_from": str(init_from) if init_from else None,
                       "world_size": self.world, "sync_bn": self.sync_bn}
        self._calibrated = None          # (step, batches) → the recalibrated EMA generator (previews and export)

    @property
    def recipe(self) -> Recipe:
        return self.entry.recipe

    def _open_run_folder(self) -> None:
        """The run folder and its config.json: written when training starts, never by the constructor."""
        if self.is_main:
            self.run.create()
            self.run.write_json("config.json", self.config)

    # --- resume -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "gen": self.gen.get_state(),
                "recipe": json.dumps({**self.recipe.__dict__, "betas": list(self.recipe.betas)})}

    def save_resume(self) -> None:
        if not self.is_main:     # every rank holds the same state; rank 0 writes it
            return
        state = self.state_dict()
        atomic_write(self.run.resume_file, lambda tmp: torch.save(state, tmp))

    def load_resume(self) -> None:
        path = self.run.resume_file
        try:   # weights_only: a resume file can never run code
            with warnings.catch_warnings():          # torch's notes on odd pickles: the error below says it all
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location=self.device, weights_only=True)
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.set_learning_rates()    # the saved optimisers carry the old rates: a plan may have changed them
            self.gen.set_state(state["gen"].cpu())
            self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        except FileNotFoundError:
            raise TrainingError(f"{path}: no resume file", "start without --resume") from None
        except Exception as e:
            raise TrainingError(f"{path}: unusable resume file ({_why_unusable(e)})") from None
        if self.is_main:
            self.run.truncate_log(self.step)

    # --- one step -----------------------------------------------------------------------------------------------
    # Each draw is of the whole global batch (n rows), of which this rank keeps self.rows: all ranks consume the
    # generator identically and stay in step, and together they see exactly what one process would.
    def _z(self, n: int) -> torch.Tensor:
        return sample_latents(n, self.entry.latent_dim, self.entry.latent_dist, self.gen, self.device)[self.rows]

    def _real(self, n: int):
        if self.entry.is_text:
            return self.data.batch(n, self.gen, smoothing=self.recipe.label_smoothing, rows=self.rows)
        x, y = self.data.batch(n, self.gen, flip=self.recipe.flip, rows=self.rows)
        return x.contiguous(memory_format=self.memory_format), y

    def _eps(self, n: int, ndim: int) -> torch.Tensor:
        """Gradient-penalty interpolation weights, drawn like the rest (global batch, this rank's rows)."""
        return torch.rand(n, *[1] * (ndim - 1), generator=self.gen, device=self.device)[self.rows]

    def set_learning_rates(self) -> None:
        """The optimisers' rates from the recipe at this step, so a resumed run follows the plan it is given."""
        scale = self.recipe.lr_scale(self.step)
        for opt, lr in ((self.opt_g, self.recipe.lr_g), (self.opt_d, self.recipe.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment: D only ever sees augmented images, real and fake alike (a no-op without a policy)."""
        return diff_augment(x, self.recipe.diffaug, self.gen) if self.recipe.diffaug else x

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda and not self.entry.is_text)

    def _discriminator_step(self, d_step: int, keep_fake: bool = False):
        """D's (the critic's) `d_step`-th step, counted from 0 over the run, on a real and a generated batch →
        (D's loss, real scores, fake scores, the real batch's labels: the generator step draws for these too, with
        keep_fake the generated batch with G's graph (else None), its latents): the generator step that follows
        trains on that batch, as pytorch/examples' DCGAN does, instead of drawing and generating another.
        With gp_every = k the gradient penalty (WGAN-GP's, or R1 where r1_gamma is set), the double-backward pass
        that costs ~40% of a critic step on the CPU, is taken on every k-th step only and weighted k× (lazy
        regularisation, Karras et al. 2020); the last one taken is kept in self._gp for the log."""
        r, B, G, D = self.recipe, self.recipe.batch, self._g, self._d   # B: the global batch; each rank its rows
        x, y = self._real(B)
        z = self._z(B)
        # keep_fake: G's graph is kept for the generator step (one generator pass a step, not two: -10% of a
        # DCGAN-64 step on the CPU); otherwise none is built
        with torch.set_grad_enabled(keep_fake), self._autocast():
            generated = G(z, y)
        fake = generated.detach()
        x, fake = self._augment(x), self._augment(fake)
        with self._autocast():
            real_s = D(x, y)
            fake_s, code_loss = self._judge(D, fake, y, z)
        dl = d_loss(r.loss, real_s, fake_s) + code_loss
        loss = dl
        if (r.loss == "wgangp" or r.r1_gamma) and d_step % r.gp_every == 0:
            if r.loss == "wgangp":
                penalty, weight = gradient_penalty(self._d_gp, x, fake, y, eps=self._eps(B, x.ndim)), r.gp_weight
            else:
                penalty, weight = r1_penalty(self._d_gp, x, y), 0.5 * r.r1_gamma
            self._gp = penalty.detach()
            loss = dl + weight * r.gp_every * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return dl, real_s, fake_s, y, (generated if keep_fake else None), z

    def warm_up_discriminator(self, steps: int, every: int = 0, on_progress=None) -> int:
        """Train a fresh D alone for `steps` steps beside a trained G, which stays as it is: G's first steps then
        follow a D that tells its pictures from real ones, not a random one (WGAN, Arjovsky et al. 2017, trains its
        critic 100 times per generator step at the start for the same reason). The step count is unchanged.
        Every `every` steps, on_progress(steps done, D's mean loss over them) (a campaign saves there: on a CPU the
        warm-up takes an hour; the loss shows whether D has learned to tell G's pictures from real ones).
        → the steps done (fewer when stopped)."""
        self.G.train()
        self.D.train()
        loss, n = 0.0, 0
        for done in range(steps):
            if self._stop_requested():
                return done
            if self.compiled:
                torch.compiler.cudagraph_mark_step_begin()
            loss, n = loss + self._discriminator_step(done)[0].detach(), n + 1
            if on_progress is not None and every and (done + 1) % every == 0 and done + 1 < steps:
                on_progress(done + 1, float(loss) / n)
                loss, n = 0.0, 0
        return steps

    def train_step(self) -> None:
        r = self.recipe
        if r.lr_decay_from:
            self.set_learning_rates()
        G, D = self._g, self._d
        if self.compiled:
            # one CUDA-graph generation per step: every graph output of this step (the scores read for the stats
            # at its end included) stays valid until the next step begins
            torch.compiler.cudagraph_mark_step_begin()
        for i in range(r.n_critic):      # the last critic step's generated batch is the generator step's
            dl, real_s, fake_s, y, fake, z = self._discriminator_step(self.step * r.n_critic + i,
                                                                      keep_fake=i == r.n_critic - 1)
        # the generator step: D is a fixed function of its input here, so no gradients for its weights (StyleGAN's
        # loop does the same); no_sync: nor any gradient averaging of D between the ranks
        self.D.requires_grad_(False)
        with (D.no_sync() if self.world > 1 else contextlib.nullcontext()), self._autocast():
            fake_s2, code_loss = self._judge(D, self._augment(fake), y, z)
        gl = g_loss(r.loss, self._best_scored(fake_s2)) + code_loss
        self.opt_g.zero_grad(set_to_none=True)
        gl.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        self._update_ema()
        stats = torch.stack([dl.detach(), gl.detach(), (real_s.float().mean() - fake_s.float().mean()).detach(),
                             self._gp])
        self._acc = stats if self._acc is None else self._acc + stats
        self._acc_n += 1
        self.step += 1

    def _best_scored(self, scores: torch.Tensor) -> torch.Tensor:
        """Top-k training (Sinha et al. 2020): the generator's loss reads only the k fakes D finds most real (every
        loss here scores "real" high), so the worst ones, whose gradients pull towards the spaces between the data's
        modes, are left out. k starts at the whole batch while D is still poor, then falls (Recipe.top_k_share)."""
        share = self.recipe.top_k_share(self.step * self.recipe.batch / len(self.data))
        if share >= 1:
            return scores
        return scores.topk(max(1, round(share * len(scores)))).values

    def _judge(self, D, fake: torch.Tensor, y, z: torch.Tensor):
        """D's scores of generated images, and with a latent code InfoGAN's mutual-information term (else 0): the
        weighted cross-entropy of D's reading of z's code, which D learns in its step and G in its own."""
        k = self.G.latent_code
        if not k:
            return D(fake, y), 0
        scores, logits = D(fake, y, with_code=True)
        return scores, self.recipe.code_weight * torch.nn.functional.cross_entropy(logits.float(), read_code(z, k))

    @torch.no_grad()
    def _update_ema(self) -> None:
        if not self.recipe.ema:
            self.G_ema.load_state_dict(self.G.state_dict())
            return
        decay = min(self.recipe.ema, (1 + self.step) / (10 + self.step))    # warm-up for short runs
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - decay)
        buffers = list(self.G.buffers())            # batch-norm statistics (none in the text generator)
        if buffers:
            torch._foreach_copy_(list(self.G_ema.buffers()), buffers)

    # --- logging and samples ------------------------------------------------------------------------------------
    def _log(self, t0: float, step0: int) -> dict:
        """Every rank calls this (the losses are averaged over the ranks: those of the global batch); rank 0 writes."""
        vals = distributed.mean(self._acc / self._acc_n).tolist()     # the one host sync per log interval
        self._acc, self._acc_n = None, 0
        rate = (self.step - step0) / max(time.perf_counter() - t0, 1e-9)
        rec = {"step": self.step, "d_loss": vals[0], "g_loss": vals[1],
               "img_per_s": rate * self.recipe.batch, "elapsed_s": self.elapsed}
        if self.recipe.loss == "wgangp":
            rec.update(wasserstein=vals[2], gp=vals[3])
        elif self.recipe.r1_gamma:
            rec.update(r1=vals[3])
        if self.is_main:
            self.run.append_log(rec)
        return rec

    @torch.no_grad()
    def sample_fixed(self):
        """Grid (uint8 H×W×C) at the fixed latents, or sample sentences for text, from the generator export ships
        (the EMA generator with re-measured batch-norm statistics), so a preview shows what the checkpoint holds."""
        z = self.fixed_z.to(self.device)
        g = self.recalibrated_ema(self.preview_batches)
        if self.entry.is_text:
            ids = g.logits(z[:8]).argmax(1).cpu()
            return [self.data.codec.decode_tokens(row.tolist()) for row in ids]
        labels = self.fixed_labels.to(self.device) if self.fixed_labels is not None else None
        imgs = to_uint8(g(z, labels).float())
        return make_grid(imgs, ncol=8 if not self.entry.num_classes else self.entry.num_classes)

    def _samples(self) -> dict:
        out = self.sample_fixed()
        name = f"step_{self.step:07d}"
        if isinstance(out, list):
            (self.run.samples / f"{name}.txt").write_text("\n".join(out) + "\n")
            return {"type": "samples", "step": self.step, "total": self.recipe.steps, "text": out}
        # whole or absent, even when a kill lands mid-write (the animation reads every frame back)
        atomic_write(self.run.samples / f"{name}.png", lambda tmp: to_pil(out).save(tmp, format="PNG"))
        return {"type": "samples", "step": self.step, "total": self.recipe.steps, "image": out}

    def _notify(self, event: dict) -> None:
        if self.callback is not None and self.is_main and self.callback(event) is True:
            self.stop_event.set()

    def _stop_requested(self) -> bool:
        """The stop event, agreed by all ranks (one collective, at log steps, where the ranks meet anyway)."""
        if self.world == 1:
            return self.stop_event.is_set()
        return self.step % self.recipe.log_every == 0 and distributed.any_rank(self.stop_event.is_set(), self.device)

    # --- the loop -----------------------------------------------------------------------------------------------
    def train(self, until: int | None = None) -> Path:
        """Train up to recipe.steps, or to step `until` if earlier (a campaign's evaluation point), or until
        stopped; save the resume file and export the generator."""
        r = self.recipe
        end = min(until, r.steps) if until is not None else r.steps
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=r.steps, initial=min(self.step, r.steps), desc=self.entry.name, unit="step", dynamic_ncols=True)
        self.G.train()
        self.D.train()
        self._open_run_folder()
        stopped = False
        t0, step0, last = time.perf_counter(), self.step, time.perf_counter()
        if self.step == 0 and self.is_main:
            self._notify(self._samples())
        try:
            while self.step < end:
                if self._stop_requested():
                    stopped = True
                    break
                self.train_step()
                now = time.perf_counter()
                self.elapsed += now - last
                last = now
                if bar is not None:
                    bar.update(1)
                if self.step % r.log_every == 0 or self.step == end:
                    rec = self._log(t0, step0)
                    t0, step0 = time.perf_counter(), self.step
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3f}" for k, v in rec.items() if k in ("d_loss", "g_loss",
                                                                                        "wasserstein")})
                    eta = (r.steps - self.step) / max(rec["img_per_s"] / r.batch, 1e-9)
                    self._notify({"type": "log", "total": r.steps, "eta_s": eta, **rec})
                if self.is_main and (self.step % r.sample_every == 0 or self.step == r.steps):
                    self._notify(self._samples())
                if self.step % self.save_every == 0:
                    self.save_resume()
        except KeyboardInterrupt:
            stopped = True
            if self.is_main:
                print(f"\ninterrupted at step {self.step}: saving the run", flush=True)
        finally:
            if bar is not None:
                bar.close()
        self.save_resume()
        if not self.is_main:
            return self.run.checkpoint
        if self.step % r.sample_every:
            self._samples()
        path = self.export_run_checkpoint()
        self.run.finish(f"{self.entry.name}: losses")
        self._notify({"type": "done", "step": self.step, "total": r.steps, "stopped": stopped,
                      "checkpoint": str(path)})
        return path

    # --- export -------------------------------------------------------------------------------------------------
    def training_info(self) -> dict:
        r = self.recipe
        hardware = hardware_name(self.device)
        return {"steps": self.step, "batch": r.batch, "loss": r.loss, "lr_g": r.lr_g, "lr_d": r.lr_d,
                **({"lr_decay_from": r.lr_decay_from} if r.lr_decay_from else {}),
                "betas": list(r.betas), "n_critic": r.n_critic, "ema": r.ema, "seed": self.seed,
                "images_seen": self.step * r.batch * r.n_critic, "wall_time_s": round(self.elapsed, 1),
                "hardware": f"{self.world} × {hardware}" if self.world > 1 else hardware,
                "processes": self.world, "data": self.data.source, "torch": torch.__version__,
                "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "run": str(self.run.path)}

    preview_batches = 20      # calibration batches for the sample grids (the app's live trainer uses fewer)

    @torch.no_grad()
    def recalibrated_ema(self, batches: int = 20) -> torch.nn.Module:
        """A copy of the EMA generator whose batch-norm statistics are re-measured on its own weights
        (they were copied from the raw generator), with its own RNG so training randomness is untouched.
        The previews and the export at one step share it (kept until the next step)."""
        bns = [m for m in self.G_ema.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not bns or not self.recipe.ema:
            return self.G_ema                    # nothing to re-measure (callers only read it)
        key = (self.step, batches)
        if self._calibrated is not None and self._calibrated[0] == key:
            return self._calibrated[1]
        g = copy.deepcopy(self.G_ema)
        bns = [m for m in g.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None                    # cumulative average over the calibration batches
        g.train()
        rng = torch.Generator().manual_seed(12345)
        k = self.entry.num_classes
        for _ in range(batches):
            z = sample_latents(256, self.entry.latent_dim, self.entry.latent_dist, rng)
            labels = torch.randint(0, k, (256,), generator=rng).to(self.device) if k else None
            g(z.to(self.device), labels)
        for m in bns:
            m.momentum = 0.1
        self._calibrated = (key, g.eval())
        return g

    def export_run_checkpoint(self) -> Path:
        g = self.recalibrated_ema()
        state = {k: v.float() if v.is_floating_point() else v for k, v in g.state_dict().items()}
        save_checkpoint(self.run.checkpoint, self.entry, state, training=self.training_info())
        return self.run.checkpoint
