"""Every registry entry builds and trains a step; the architectures follow the reference write-ups."""
import pytest
import torch
from torch import nn

from gan_demo.models import build_discriminator, build_generator, count_parameters
from gan_demo.registry import REGISTRY, get_entry, list_models
from gan_demo.text_codec import DEFAULT_VOCAB

REQUIRED = ["mnist-gan", "mnist-dcgan", "mnist-wgangp", "mnist-lsgan", "mnist-cgan", "mnist-cdcgan", "cifar10-gan",
            "cifar10-dcgan", "cifar10-wgangp", "cifar10-lsgan", "celeba64-dcgan", "celeba128-dcgan",
            "celeba128-wgangp", "text-wgangp"]


def test_registry_has_every_required_name():
    assert set(REQUIRED) <= set(list_models())
    assert list_models("text") == ["text-wgangp"]
    with pytest.raises(KeyError, match="unknown model"):
        get_entry("nope")


@pytest.mark.parametrize("name", REQUIRED)
def test_entry_builds_and_runs_forward_backward(name):
    e = REGISTRY[name]
    assert e.description and e.license and e.recipe.loss in ("bce", "lsgan", "wgangp")
    torch.manual_seed(0)
    G, D = build_generator(e.arch, e.config), build_discriminator(e.arch, e.config)
    z = torch.randn(2, e.latent_dim)
    y = torch.tensor([3, 7]) if e.num_classes else None
    x = G(z, y)
    expected = (2, len(DEFAULT_VOCAB), 64) if e.is_text else (2, *e.output_shape)
    assert tuple(x.shape) == expected
    if not e.is_text:
        assert x.min() >= -1 and x.max() <= 1
    score = D(x, y)
    assert score.shape == (2,)
    score.sum().backward()
    assert all(p.grad is not None for p in G.parameters())
    # the state-dict count (what export and push use) leaves batch-norm statistics out, as the module count does
    assert count_parameters(G.state_dict()) == count_parameters(G)


def test_parameter_counts_of_the_mnist_mlps():
    e = REGISTRY["mnist-gan"]            # 100 → 128 → 256 → 512 → 784, BN after each hidden Linear
    g = (100 * 128 + 128 + 2 * 128) + (128 * 256 + 256 + 2 * 256) + (256 * 512 + 512 + 2 * 512) + (512 * 784 + 784)
    d = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 128 + 128) + (128 + 1)
    assert count_parameters(build_generator(e.arch, e.config)) == g
    assert count_parameters(build_discriminator(e.arch, e.config)) == d


def _layers(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


def test_dcgan128_discriminator_has_batchnorm_in_all_but_first_and_last_blocks():
    e = REGISTRY["celeba128-dcgan"]
    D = build_discriminator(e.arch, e.config)
    convs, bns = _layers(D, nn.Conv2d), _layers(D, nn.BatchNorm2d)
    assert len(convs) == 6 and len(bns) == 4          # 128→64→32→16→8→4 then 4×4→1
    seq = list(D.net)
    assert isinstance(seq[1], nn.LeakyReLU)           # first block: conv + LeakyReLU, no BN
    assert isinstance(seq[-1], nn.Conv2d)             # last block: the output conv alone
    assert all(m.negative_slope == 0.2 for m in _layers(D, nn.LeakyReLU))


def test_wgangp_critics_have_no_batchnorm_and_no_sigmoid():
    for name in ["mnist-wgangp", "cifar10-wgangp", "celeba128-wgangp", "text-wgangp"]:
        e = REGISTRY[name]
        D = build_discriminator(e.arch, e.config)
        assert not _layers(D, nn.modules.batchnorm._BatchNorm), name
        assert not _layers(D, nn.Sigmoid), name
        assert e.recipe.loss == "wgangp"


def test_the_trainer_takes_n_critic_critic_steps_per_generator_step(tmp_path):
    """WGAN-GP's schedule as the trainer runs it (not as the registry states it): n_critic optimiser steps of the
    critic, each on a fresh real batch, for one of the generator."""
    from training.data import ImageData
    from training.loop import Trainer
    e = REGISTRY["mnist-wgangp"]
    data = ImageData(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8), None, "random")
    t = Trainer(e.with_config(ngf=8, ndf=8), data, tmp_path, steps=2, batch=4, device="cpu", progress=False)
    calls = []
    for name in ("opt_d", "opt_g"):
        opt = getattr(t, name)
        step = opt.step
        opt.step = lambda *a, _step=step, _name=name, **kw: (calls.append(_name), _step(*a, **kw))[1]
    t.train_step()
    assert calls == ["opt_d"] * e.recipe.n_critic + ["opt_g"] and e.recipe.n_critic > 1


def test_mnist_dcgan_generator_follows_the_reference_shapes():
    e = REGISTRY["mnist-dcgan"]
    G = build_generator(e.arch, e.config)
    sizes, h = [], torch.randn(2, e.latent_dim, 1, 1)
    for m in G.net:
        h = m(h)
        if isinstance(m, nn.ConvTranspose2d):
            sizes.append(h.shape[-1])
    assert sizes == [4, 7, 14, 28]
    assert isinstance(G.net[-1], nn.Tanh)


def test_mlp_generator_is_linear_batchnorm_relu_then_tanh():
    e = REGISTRY["mnist-gan"]
    G = build_generator(e.arch, e.config)
    kinds = [type(m) for m in G.net]
    assert kinds[:3] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] and kinds[-2:] == [nn.Linear, nn.Tanh]
    D = build_discriminator(e.arch, e.config)
    assert _layers(D, nn.LeakyReLU) and not _layers(D, nn.BatchNorm1d)


def test_mlp_discriminator_dropout_acts_while_training_only_and_leaves_g_and_d_weights_as_they_were():
    e = REGISTRY["mnist-gan"]
    torch.manual_seed(0)
    plain = build_discriminator(e.arch, e.config)
    torch.manual_seed(0)
    D = build_discriminator(e.arch, e.with_config(d_dropout=0.3).config)
    assert [m.p for m in _layers(D, nn.Dropout)] == [0.3] * len(e.config.d_hidden) and not _layers(plain, nn.Dropout)
    assert [p.shape for p in D.parameters()] == [p.shape for p in plain.parameters()]
    x = torch.randn(16, 1, 28, 28)
    D.eval(), plain.eval()
    D.load_state_dict({k: v for k, v in zip(D.state_dict(), plain.state_dict().values())})
    assert torch.equal(D(x), plain(x))                           # switched off outside training
    D.train()
    assert not torch.equal(D(x), D(x))
    with pytest.raises(ValueError, match="d_dropout=1.0 must be a probability"):
        build_discriminator(e.arch, e.with_config(d_dropout=1.0).config)


@pytest.mark.parametrize("name", ["mnist-gan", "cifar10-dcgan"])
def test_spectral_norm_discriminator_keeps_each_layer_1_lipschitz_and_is_seeded_like_the_plain_one(name):
    e = REGISTRY[name]
    seeded = lambda config: build_discriminator(e.arch, config, torch.Generator().manual_seed(0))
    D, plain = seeded(e.with_config(d_norm="spectral").config), seeded(e.with_config(d_norm="none").config)
    layers = [m for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not _layers(D, nn.BatchNorm1d) and not _layers(D, nn.BatchNorm2d)
    originals = [m.parametrizations.weight.original for m in layers]
    plain_weights = [m.weight for m in plain.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert all(torch.equal(a, b) for a, b in zip(originals, plain_weights))     # init_weights reached the original
    with torch.no_grad():                                                       # whatever the weights' scale
        for w in originals:
            w.mul_(5.0)
    x = torch.randn(8, *e.output_shape)
    for _ in range(100):                                                        # the power iteration runs in train mode
        D(x)
    sigmas = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in layers]
    assert sigmas == pytest.approx([1.0] * len(layers), abs=0.02)
    with pytest.raises(ValueError, match="d_norm='layer' must be one of batch, none, spectral"):
        build_discriminator(e.arch, e.with_config(d_norm="layer").config)


def test_mlp_discriminator_batch_norm_skips_the_first_block_as_dcgan_does():
    e = REGISTRY["mnist-gan"]
    D = build_discriminator(e.arch, e.with_config(d_norm="batch").config)
    assert [m.num_features for m in _layers(D, nn.BatchNorm1d)] == list(e.config.d_hidden[1:])


def test_weights_are_initialised_from_n_0_002():
    e = REGISTRY["celeba64-dcgan"]
    torch.manual_seed(0)
    G = build_generator(e.arch, e.config)
    w = torch.cat([m.weight.flatten() for m in _layers(G, nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.001


def test_conditional_models_use_the_label():
    for name in ["mnist-cgan", "mnist-cdcgan"]:
        e = REGISTRY[name]
        G = build_generator(e.arch, e.config).eval()
        D = build_discriminator(e.arch, e.config).eval()
        z = torch.randn(1, e.latent_dim).repeat(2, 1)
        x = G(z, torch.tensor([1, 8]))
        assert not torch.equal(x[0], x[1])
        s = D(x[:1].repeat(2, 1, 1, 1), torch.tensor([1, 8]))
        assert s[0] != s[1]
        with pytest.raises(ValueError, match="labels are required"):
            G(z)


@pytest.mark.parametrize("name", ["mnist-gan", "mnist-dcgan"])
def test_a_latent_code_is_read_from_z_fed_to_g_and_read_back_by_d(name):
    """latent_code=10: G's first layer gets z and the one-hot of the largest of z's first 10 entries; D gives its
    usual score and, when asked, 10 code logits."""
    from gan_demo.models.common import one_hot, read_code
    e = REGISTRY[name].with_config(latent_code=10)
    G = build_generator(e.arch, e.config).eval()
    D = build_discriminator(e.arch, e.config).eval()
    z = torch.randn(6, e.latent_dim)
    seen = {}
    first = next(m for m in G.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d)))
    first.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0].flatten(1)))
    x = G(z)
    assert torch.equal(seen["x"], torch.cat([z, one_hot(z[:, :10].argmax(1), 10, z.dtype)], 1))
    assert torch.equal(read_code(z, 10), z[:, :10].argmax(1))
    score, code = D(x, with_code=True)
    assert code.shape == (6, 10) and torch.equal(score, D(x))


def test_a_latent_code_is_uniform_over_its_classes_and_no_longer_than_z():
    from gan_demo.latents import sample_latents
    from gan_demo.models import check_config
    for dist in ("normal", "uniform"):
        codes = sample_latents(100_000, 100, dist, torch.Generator().manual_seed(0)).narrow(1, 0, 10).argmax(1)
        share = torch.bincount(codes, minlength=10) / codes.numel()
        assert (share - 0.1).abs().max() < 0.005, (dist, share)
    e = REGISTRY["mnist-dcgan"]
    with pytest.raises(ValueError, match="latent_code=101 reads more entries than z has"):
        check_config(e.arch, e.with_config(latent_code=101).config.to_dict())


def test_text_generator_masks_after_eos():
    from gan_demo.models import mask_after_eos
    from gan_demo.text_codec import TextCodec
    codec = TextCodec()
    probs = torch.zeros(1, len(codec), 5)
    for t, tok in enumerate([codec.sos, codec.index["a"], codec.eos, codec.index["b"], codec.index["c"]]):
        probs[0, tok, t] = 1.0
    masked = mask_after_eos(probs)
    assert masked[0, :, :3].sum() == 3 and masked[0, :, 3:].sum() == 0


def test_soft_eos_masking_keeps_each_position_with_the_chance_that_no_earlier_one_ended():
    """Generated sequences are soft: position t is kept with weight Π_{s<t} (1 − p_s(<EOS>))."""
    from gan_demo.models import mask_after_eos
    from gan_demo.models.text import EOS_ID
    v, eos = len(DEFAULT_VOCAB), [0.0, 0.5, 0.25, 1.0, 0.1]
    probs = torch.zeros(1, v, 5)
    probs[0, EOS_ID] = torch.tensor(eos)
    probs[0, EOS_ID + 1] = 1 - torch.tensor(eos)              # the rest of each column on one other character
    masked = mask_after_eos(probs)
    alive = torch.tensor([1.0, 1.0, 0.5, 0.5 * 0.75, 0.0])    # the 4th position's <EOS> (p = 1) ends it all
    torch.testing.assert_close(masked[0].sum(0), alive)
    torch.testing.assert_close(masked[0, EOS_ID], alive * torch.tensor(eos))
    logits = torch.randn(3, v, 7, requires_grad=True)         # and gradients flow through the soft mask
    mask_after_eos(torch.softmax(logits, 1)).sum().backward()
    assert logits.grad.abs().sum() > 0



def test_learning_rates_decay_linearly_to_zero_from_lr_decay_from(tmp_path):
    """The optimisers' rates follow the recipe step by step: constant before lr_decay_from, then linear to 0 at
    `steps`; and a resumed run takes the recipe's rates, not those its resume file saved."""
    import dataclasses
    from gan_demo.model_card import model_card
    from training.data import ImageData
    from training.loop import Trainer
    e = REGISTRY["mnist-dcgan"].with_config(ngf=8, ndf=8)
    e = dataclasses.replace(e, recipe=dataclasses.replace(e.recipe, lr_g=1e-4, lr_d=4e-4, lr_decay_from=4))
    data = ImageData(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8), None, "random")
    t = Trainer(e, data, tmp_path, steps=8, batch=4, device="cpu", progress=False)
    seen = []
    for _ in range(8):
        t.train_step()
        seen.append((t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["lr"]))
    scale = [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]               # the rate each step trained with (steps 0–7)
    assert [lr for pair in seen for lr in pair] == pytest.approx([lr * s for s in scale for lr in (1e-4, 4e-4)])
    assert t.training_info()["lr_decay_from"] == 4
    assert "decayed linearly to 0 from step 4 to 8" in model_card(t.entry, {"training": t.training_info()})
    # a best snapshot kept before (or during) the decay says what its own step trained with
    early = model_card(t.entry, {"training": {**t.training_info(), "steps": 3}})
    assert "constant rates up to this snapshot's step 3" in early and "decayed linearly to 0" not in early
    assert "to 50% of their value at this snapshot's step 6" in model_card(
        t.entry, {"training": {**t.training_info(), "steps": 6}})
    flat = Trainer(REGISTRY["mnist-dcgan"].with_config(ngf=8, ndf=8), data, tmp_path / "flat", steps=8, batch=4,
                   device="cpu", progress=False)
    flat.train_step()
    assert flat.opt_g.param_groups[0]["lr"] == REGISTRY["mnist-dcgan"].recipe.lr_g
    assert "decayed" not in model_card(REGISTRY["mnist-dcgan"])


def test_a_card_says_what_its_checkpoint_changed_from_the_registry():
    """The entry's description states the registry's recipe and widths; a checkpoint trained otherwise (a plan's
    overrides) says so in its card, read from the checkpoint's own entry."""
    import dataclasses
    from gan_demo.model_card import model_card, registry_notes
    e = REGISTRY["cifar10-wgangp"].with_config(ngf=48)
    e = dataclasses.replace(e, recipe=dataclasses.replace(e.recipe, n_critic=1, lr_d=3e-4, diffaug="translation",
                                                          steps=123, sample_every=7))
    notes = registry_notes(e)
    assert notes == {"architecture_note": "architecture differs from the registry defaults: G width (ngf) 48",
                     "recipe_note": "recipe differs from the registry's: D learning rate 0.0003 (registry 0.0001), "
                                    "D steps per G step 1 (registry 5), DiffAugment translation (registry none)"}
    card = model_card(e, {"training": {"steps": 123}})
    assert "- architecture note: architecture differs from the registry defaults: G width (ngf) 48" in card
    assert "- recipe note: recipe differs from the registry's: D learning rate 0.0003" in card
    # how long and how often it logged is not how it trains; a text model's vocabulary comes from its data
    plain = dataclasses.replace(REGISTRY["mnist-gan"], recipe=dataclasses.replace(
        REGISTRY["mnist-gan"].recipe, steps=5, log_every=1))
    assert registry_notes(plain) == {} and "note" not in model_card(plain, {"training": {"steps": 5}})
    assert registry_notes(REGISTRY["text-wgangp"].with_config(vocab=("a", "b"))) == {}
    assert registry_notes(REGISTRY["mnist-gan"].with_recipe(top_k=0.5))["recipe_note"] == (
        "recipe differs from the registry's: G's loss on the best-scored share of each batch (top-k), down to 0.5 "
        "(registry 1.0)")
    # a note an older export stored (listing a setting at its default) gives way to the checkpoint's own entry
    card = model_card(e, {"training": {"architecture_note": "… ngf 48, ndf 64"}})
    assert "ndf 64" not in card and "architecture differs from the registry defaults: G width (ngf) 48" in card
    assert "architecture note" not in model_card(REGISTRY["text-wgangp"], {"training": {"architecture_note": "dim 256"}})
    # another architecture under a registry name, widths given as a list: no crash, no false note
    assert registry_notes(dataclasses.replace(REGISTRY["mnist-dcgan"], name="mnist-gan")) == {}
    assert registry_notes(REGISTRY["mnist-gan"].with_config(g_hidden=[128, 256, 512])) == {}


def test_a_card_reads_for_a_visitor_not_for_the_machine_that_trained_it():
    """No training machine's absolute paths, sentences (not images) for text, the memorisation check explained and
    its raw seed/row/distance triples left out (they read as an unexplained list of numbers)."""
    from gan_demo.model_card import model_card
    text = model_card(REGISTRY["text-wgangp"], {"training": {
        "images_seen": 495104, "data": "text train (/work/main/device_data/text/lines.txt)"}})
    assert "- sentences seen: 495,104" in text and "- data: text train (lines.txt)" in text and "/work" not in text
    digits = model_card(REGISTRY["mnist-gan"], {"training": {"images_seen": 64, "data": "MNIST train (../data/mnist)"}})
    assert "- images seen: 64" in digits and "(../data/mnist)" in digits
    faces = model_card(REGISTRY["celeba64-dcgan"], {"metrics": {
        "memorisation_ratio": 1.2116, "memorisation_below_holdout_p1": 0.003,
        "memorisation_closest": [[12, 15714, 6.886], [738, 10071, 6.945]]}})
    assert "| memorisation ratio | 1.21 | median distance" in faces
    assert "| samples nearer than real faces | 0.3% |" in faces
    assert "15714" not in faces
