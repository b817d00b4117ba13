import math

import torch
from torch import nn

from training.losses import d_loss, g_loss, gradient_penalty, r1_penalty


def test_bce_losses_match_binary_cross_entropy():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = nn.functional.binary_cross_entropy_with_logits
    expect_d = bce(real, torch.ones(2)) + bce(fake, torch.zeros(2))
    assert torch.allclose(d_loss("bce", real, fake), expect_d)
    assert torch.allclose(g_loss("bce", fake), bce(fake, torch.ones(2)))
    # at D = 1/2 everywhere the discriminator loss is 2 log 2
    assert math.isclose(d_loss("bce", torch.zeros(4), torch.zeros(4)).item(), 2 * math.log(2), rel_tol=1e-6)


def test_least_squares_losses():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert math.isclose(d_loss("lsgan", real, fake).item(), 0.5 * 0.5 + 0.5 * 2.0)
    assert math.isclose(g_loss("lsgan", fake).item(), 0.5 * (1 + 1) / 2)


def test_wasserstein_losses():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.0, -2.0])
    assert d_loss("wgangp", real, fake).item() == -1.0 - 2.0
    assert g_loss("wgangp", fake).item() == 1.0


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w·x has gradient w everywhere, so the penalty is (‖w‖ - 1)²
    w = torch.tensor([3.0, 4.0])
    critic = lambda x, labels=None: x @ w
    gen = torch.Generator().manual_seed(0)
    gp = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2), None, gen)
    assert math.isclose(gp.item(), (5.0 - 1.0) ** 2, rel_tol=1e-5)


def test_r1_penalty_of_a_quadratic_critic():
    # D(x) = ½‖x‖² has gradient x, so E‖∇D(x)‖² is the mean squared norm of the real rows; D's weights get its gradient
    real = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    scale = torch.tensor(1.0, requires_grad=True)
    critic = lambda x, labels=None: scale * 0.5 * x.pow(2).sum(dim=1)
    r1 = r1_penalty(critic, real, None)
    assert math.isclose(r1.item(), (5.0 + 9.0) / 2, rel_tol=1e-6)
    r1.backward()                                     # ‖scale·x‖² = scale²·‖x‖²: d/dscale = 2·7 at scale 1
    assert math.isclose(scale.grad.item(), 14.0, rel_tol=1e-6)


def test_unknown_loss_is_rejected():
    import pytest
    with pytest.raises(ValueError, match="unknown loss"):
        d_loss("hinge2", torch.zeros(1), torch.zeros(1))
