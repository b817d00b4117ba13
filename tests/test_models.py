"""Every registry entry builds and trains a step; the architectures follow the reference write-ups."""
import pytest
import torch
from torch import nn

from gan_demo.models import build_discriminator, build_generator, count_parameters
from gan_demo.registry import REGISTRY, get_entry, list_models

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
    expected = (2, len(e.config.get("vocab", [])) or x.shape[1], e.config["seq_len"]) if e.is_text \
        else (2, *e.output_shape)
    assert tuple(x.shape) == expected
    if not e.is_text:
        assert x.min() >= -1 and x.max() <= 1
    score = D(x, y)
    assert score.shape == (2,)
    score.sum().backward()
    assert all(p.grad is not None for p in G.parameters())
    assert count_parameters(G) > 0


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
        assert e.recipe.loss == "wgangp" and e.recipe.gp_weight == 10
    for name in ["mnist-wgangp", "cifar10-wgangp", "celeba128-wgangp"]:
        r = REGISTRY[name].recipe
        assert r.betas == (0.0, 0.9) and r.n_critic == 5
    assert REGISTRY["text-wgangp"].recipe.n_critic == 10
    assert REGISTRY["celeba128-wgangp"].latent_dim == 128
    assert REGISTRY["text-wgangp"].latent_dim == 64


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


def test_text_generator_masks_after_eos():
    from gan_demo.models import mask_after_eos
    from gan_demo.text_codec import TextCodec
    codec = TextCodec()
    probs = torch.zeros(1, len(codec), 5)
    for t, tok in enumerate([codec.sos, codec.index["a"], codec.eos, codec.index["b"], codec.index["c"]]):
        probs[0, tok, t] = 1.0
    masked = mask_after_eos(probs)
    assert masked[0, :, :3].sum() == 3 and masked[0, :, 3:].sum() == 0
