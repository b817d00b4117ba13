"""DiffAugment (training/augment.py): what each augmentation does to a picture, seeded, differentiable, and the
memory format kept (the trainer's channels-last, or plain NCHW under torch.compile)."""
import pytest
import torch
import torch.nn.functional as F

from training.augment import check_policy, cutout, diff_augment, translation


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _shift(img, dy, dx):
    """img (C×H×W) moved down dy and right dx pixels, zero fill: the reference for translation."""
    c, h, w = img.shape
    padded = F.pad(img, [abs(dx), abs(dx), abs(dy), abs(dy)])
    return padded[:, abs(dy) - dy: abs(dy) - dy + h, abs(dx) - dx: abs(dx) - dx + w]


def test_translation_moves_each_picture_whole_by_at_most_an_eighth_with_zero_fill():
    x = torch.rand(32, 3, 16, 16) + 0.1                     # no zeros of its own
    out = translation(x, _gen())
    shifts = set()
    for img, got in zip(x, out):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(got, _shift(img, dy, dx))]
        assert len(match) == 1, "every picture is one integer shift of itself within ±2 pixels (16 / 8)"
        shifts.add(match[0])
    assert len(shifts) > 5                                   # the shifts vary between pictures


def test_cutout_zeroes_one_square_of_half_the_size_per_picture():
    x = torch.ones(64, 2, 16, 16)
    out = cutout(x, _gen())
    for img in out:
        zero = img[0] == 0
        assert torch.equal(zero, img[1] == 0)                # the same square in every channel
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8  # 8 × 8, less where it overhangs the border
        assert zero.sum() == len(rows) * len(cols)           # a filled rectangle
    assert (out == 0).float().mean() > 0.15                  # most squares lie mostly inside


def test_diff_augment_is_seeded_differentiable_and_changes_the_pictures():
    x = torch.rand(8, 3, 32, 32, requires_grad=True)
    policy = "color,translation,cutout"
    a, b = diff_augment(x, policy, _gen(1)), diff_augment(x, policy, _gen(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, policy, _gen(2)))
    assert a.shape == x.shape and not torch.allclose(a, x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_diff_augment_keeps_the_memory_format_it_is_given(memory_format):
    x = torch.rand(4, 3, 16, 16).contiguous(memory_format=memory_format)
    out = diff_augment(x, "color,translation,cutout", _gen())
    assert out.is_contiguous(memory_format=memory_format)


def test_an_empty_policy_is_the_identity_and_an_unknown_one_is_named():
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(diff_augment(x, "", _gen()), x)
    assert check_policy(" color , cutout ") == ["color", "cutout"]
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'rotate'"):
        check_policy("color,rotate")
