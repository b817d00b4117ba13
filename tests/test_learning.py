"""Tests of the learning itself: a short run learns, the EMA follows the generator, batch-norm recalibration measures
the EMA generator, previews show what export ships, the generator step leaves D alone, a trainer has no side
effects, and the numerics the losses and metrics rely on (gradient penalty under bf16, Inception's input)."""
import threading

import pytest
import torch
from torch import nn

from gan_demo import load_generator
from gan_demo.latents import seed_latents
from gan_demo.registry import REGISTRY
from gan_demo.render import make_grid, to_uint8
from training.data import load_dataset
from training.loop import Trainer
from training.losses import gradient_penalty


@pytest.fixture(scope="module")
def mnist(request):
    from conftest import SHARED_DATA
    root = SHARED_DATA / "mnist"
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip("offline MNIST copy not present")
    return load_dataset("mnist", root), load_dataset("mnist", root, "test")


pytestmark = pytest.mark.usefixtures("one_thread")


def trainer(mnist, tmp_path, name="mnist-gan", **kw):
    kw = {"steps": 10 ** 6, "batch": 64, "device": "cpu", "progress": False, "log_every": 10 ** 6,
          "sample_every": 10 ** 6, **kw}
    return Trainer(REGISTRY[name], mnist[0], tmp_path / "run", **kw)


# --- learning ------------------------------------------------------------------------------------------------
def test_a_short_run_lowers_the_classifier_fid_well_below_the_untrained_generators(mnist, tmp_path):
    """200 steps of mnist-gan (batch 64, its recipe): the Fréchet distance between the MNIST classifier's features
    of 1,000 generated digits and of 2,000 test digits falls to well under half the untrained generator's
    (measured on this machine: ~8,500 → ~3,100 after 200 steps, ~2,200 after 400)."""
    from training.metrics.classifier import features, load_classifier
    from training.metrics.frechet import feature_stats, frechet_distance
    try:
        clf, _ = load_classifier()
    except FileNotFoundError:
        pytest.skip("weights/mnist-classifier.safetensors is not here")
    reference = feature_stats(features(clf, mnist[1].images[:2000]).double().numpy())
    z = seed_latents(range(1000), REGISTRY["mnist-gan"].latent_dim)

    def classifier_fid(t):
        with torch.no_grad():
            imgs = torch.as_tensor(to_uint8(t.recalibrated_ema()(z).float())).permute(0, 3, 1, 2).contiguous()
        return frechet_distance(*feature_stats(features(clf, imgs).double().numpy()), *reference)

    t = trainer(mnist, tmp_path)
    before = classifier_fid(t)
    for _ in range(200):
        t.train_step()
    after = classifier_fid(t)
    assert after < 0.5 * before, (before, after)


# --- EMA and batch-norm recalibration ---------------------------------------------------------------------------
def test_the_ema_moves_towards_the_generator_with_the_warm_up_decay(mnist, tmp_path):
    t = trainer(mnist, tmp_path)
    before = [p.detach().clone() for p in t.G.parameters()]
    t.train_step()
    decay = min(t.recipe.ema, 1 / 10)                     # (1 + step) / (10 + step) at step 0
    for p0, p1, e in zip(before, t.G.parameters(), t.G_ema.parameters()):
        assert not torch.equal(p0, p1)                    # the step did move G
        torch.testing.assert_close(e, decay * p0 + (1 - decay) * p1.detach(), rtol=1e-5, atol=1e-7)
    for b, e in zip(t.G.buffers(), t.G_ema.buffers()):    # batch-norm statistics are copied, not averaged
        assert torch.equal(b, e)


def test_recalibration_measures_the_ema_generators_own_activations(mnist, tmp_path):
    """The EMA generator's batch-norm statistics are re-measured on its own activations (they were copied from the
    raw generator). Here its first layer's weights are doubled (an EMA far from G): the recalibrated first BN then
    matches the mean and variance of Linear(z) over fresh latents, four times the copied variance."""
    t = trainer(mnist, tmp_path)
    for _ in range(60):                                   # one BN update a step: the copied statistics, which start
        t.train_step()                                    # at variance 1, are G's own by then (0.9^60 of 1 left)
    with torch.no_grad():
        t.G_ema.net[0].weight.mul_(2)
        t.G_ema.net[0].bias.mul_(2)
    g = t.recalibrated_ema()
    linear, bn = g.net[0], g.net[1]
    assert isinstance(linear, nn.Linear) and isinstance(bn, nn.BatchNorm1d)
    z = torch.randn(20000, t.entry.latent_dim, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        h = linear(z)
    tolerance = 6 * h.std(0) / 5120 ** 0.5                # 20 calibration batches of 256
    assert (bn.running_mean - h.mean(0)).abs().le(tolerance).all()
    torch.testing.assert_close(bn.running_var, h.var(0), rtol=0.15, atol=0)
    copied = t.G_ema.net[1].running_var                   # what the EMA generator held before
    assert (copied / h.var(0)).median() < 0.5
    again = t.recalibrated_ema()                          # its own RNG: repeatable, training's untouched
    assert again is not t.G_ema and torch.equal(again.net[1].running_mean, bn.running_mean)


def test_previews_show_the_generator_that_export_ships(mnist, tmp_path):
    t = trainer(mnist, tmp_path, batch=16)
    for _ in range(5):
        t.train_step()
    preview = t.sample_fixed()
    path = t.export_run_checkpoint()
    g = load_generator(str(path), device="cpu")
    shipped = g.sample(range(64))
    grid = make_grid(shipped, ncol=8)
    diff = (torch.as_tensor(preview).int() - torch.as_tensor(grid).int()).abs()
    assert diff.max() <= 1 and diff.float().mean() < 0.01            # (float rounding may differ by a level)
    with torch.no_grad():                                             # the raw EMA generator would differ
        raw = to_uint8(t.G_ema(t.fixed_z).float())
    assert (torch.as_tensor(raw).int() - torch.as_tensor(shipped).int()).abs().float().mean() > 1.0


def test_with_a_latent_code_d_learns_to_read_the_code_back_from_gs_digits(mnist, tmp_path):
    """InfoGAN's term at work: after 150 steps D names the code of G's digits far above chance (10%)."""
    from gan_demo.models.common import read_code
    t = Trainer(REGISTRY["mnist-dcgan"].with_config(latent_code=10, ngf=16, ndf=16), mnist[0], tmp_path / "run",
                steps=10 ** 6, batch=32, device="cpu", progress=False)
    for _ in range(150):
        t.train_step()
    z = torch.randn(500, 100, generator=torch.Generator().manual_seed(0))
    t.G.eval(), t.D.eval()
    with torch.no_grad():
        _, logits = t.D(t.G(z), with_code=True)
    accuracy = (logits.argmax(1) == read_code(z, 10)).float().mean().item()
    assert accuracy > 0.5, accuracy


# --- the generator step and side effects -------------------------------------------------------------------------
def test_the_generator_step_leaves_the_discriminators_gradients_alone(mnist, tmp_path):
    t = trainer(mnist, tmp_path, "mnist-dcgan", batch=16)
    seen = {}
    step_d = t.opt_d.step

    def record(*a, **kw):
        seen["grads"] = [p.grad.clone() for p in t.D.parameters()]
        return step_d(*a, **kw)
    t.opt_d.step = record
    t.train_step()
    assert all(torch.equal(p.grad, g) for p, g in zip(t.D.parameters(), seen["grads"]))
    assert all(p.requires_grad for p in t.D.parameters())                  # switched back on for D's next step
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in t.G.parameters())


def test_a_trainer_writes_nothing_until_it_trains_and_its_weights_ignore_the_global_seed(mnist, tmp_path):
    torch.manual_seed(123)
    first = trainer(mnist, tmp_path / "a", seed=7, steps=1, batch=16)
    assert not (tmp_path / "a").exists()
    torch.manual_seed(456)                    # another global seed, and four trainers built at once in threads
    built = [None] * 4

    def build(i):
        built[i] = trainer(mnist, tmp_path / f"t{i}", seed=7, steps=1, batch=16)
    threads = [threading.Thread(target=build, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for other in built:
        for a, b in zip(first.G.state_dict().values(), other.G.state_dict().values()):
            assert torch.equal(a, b)
        for a, b in zip(first.D.state_dict().values(), other.D.state_dict().values()):
            assert torch.equal(a, b)
    assert not any((tmp_path / f"t{i}").exists() for i in range(4))
    first.train()
    assert (tmp_path / "a" / "run" / "config.json").is_file()


# --- numerics ------------------------------------------------------------------------------------------------------
def test_the_gradient_penalty_is_computed_in_fp32_under_bf16_autocast():
    """A linear critic D(x) = w·x has ‖∇D‖ = ‖w‖ everywhere, so the penalty is exactly (‖w‖ − 1)². Under bf16
    autocast (as the trainer runs on CUDA) it must stay exact: bf16 would be off by ~1 %."""
    critic = nn.Linear(3 * 8 * 8, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.randn(1, 192, generator=torch.Generator().manual_seed(0)))
        critic.weight.mul_(3.0 / critic.weight.norm())     # ‖w‖ = 3: penalty 4
    d = lambda x, labels: critic(x.flatten(1)).squeeze(1)   # noqa: E731
    g = torch.Generator().manual_seed(1)
    real, fake = torch.rand(16, 3, 8, 8, generator=g) * 2 - 1, torch.rand(16, 3, 8, 8, generator=g) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(d, real.bfloat16(), fake.bfloat16(), None, gen=torch.Generator().manual_seed(2))
        assert critic(real.flatten(1)).dtype == torch.bfloat16          # autocast is really on here
    assert gp.dtype == torch.float32
    assert abs(gp.item() - 4.0) < 1e-4, gp.item()
    gp.backward()                                           # differentiable w.r.t. the critic (create_graph)
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_inception_preprocessing_on_a_known_input():
    from training.metrics.inception import preprocess
    checker = torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8)[None, :, :, None]      # 1×2×2×1, grey
    x = preprocess(checker)
    assert x.shape == (1, 3, 299, 299) and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, 0, -1] == 127 / 128                        # corners keep their value
    assert x[0, 0, 149, 149] == (127.5 - 128) / 128                                     # bilinear: the mean of 4
    torch.testing.assert_close(x[0, 0], x[0, 0].T, rtol=0, atol=1e-6)                  # the input's symmetry
    flat = preprocess(torch.tensor([128, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 5, 7, 3))
    assert flat.shape == (2, 3, 299, 299)
    torch.testing.assert_close(flat[0], torch.zeros(3, 299, 299), rtol=0, atol=1e-5)
    torch.testing.assert_close(flat[1], torch.full((3, 299, 299), 127 / 128), rtol=0, atol=1e-5)
