"""Latent directions: GANSpace vectors are reproducible, and their names say what they measurably do."""
import threading

import torch

import pytest

from gan_demo.directions import check_name, compute_directions, name_directions, names_still_apply, shown_labels


def _unit(i, dim=8):
    u = torch.zeros(dim)
    u[i] = 1.0
    return u


def colour_generator(z, labels=None):
    """RGB pictures whose brightness follows z[0]; nothing else in z matters."""
    level = torch.tanh(0.5 * z[:, 0]).view(-1, 1, 1, 1)
    pattern = torch.linspace(-0.3, 0.3, 16).view(1, 1, 1, 16)
    return (0.5 * level + pattern).expand(-1, 3, 16, 16).clamp(-1, 1)


def digit_generator(z, labels=None):
    """One white stroke on black: z[0] leans it (right for z[0] > 0), z[1] thickens it."""
    n, h = len(z), 28
    ys = torch.linspace(-1, 1, h).view(1, h, 1)
    xs = torch.linspace(-1, 1, h).view(1, 1, h)
    lean = 0.4 * torch.tanh(z[:, 0]).view(n, 1, 1)
    width = (0.08 + 0.05 * torch.sigmoid(2 * z[:, 1])).view(n, 1, 1)
    stroke = torch.exp(-((xs + lean * ys) / width) ** 2) * (ys.abs() < 0.7)
    return (stroke * 2 - 1).unsqueeze(1)


def test_a_brightness_direction_is_named_after_its_effect_and_a_dead_one_is_not():
    vectors = torch.stack([_unit(0), _unit(1), -_unit(0)])
    names, effects = name_directions(colour_generator, vectors, 8, n=64)
    assert names[0] == "dark ↔ bright"
    assert names[1] == "direction 2"                     # z[1] changes nothing: no name is invented
    assert names[2] == "bright ↔ dark"                   # the slider's low end comes first
    assert effects[0]["brightness"] > 1 and abs(effects[1]["brightness"]) < 1e-6


def test_digit_directions_name_slant_thickness_and_the_class_shift():
    vectors = torch.stack([_unit(0), _unit(1)])
    names, _ = name_directions(digit_generator, vectors, 8, n=64)
    assert names[0].startswith("leans left ↔ leans right")
    assert names[1].startswith("thin ↔ bold")

    def classify(x):                                    # a stand-in judge: bold strokes look like 8s, thin like 1s
        ink = (x + 1).mean((1, 2, 3)) / 2
        p8 = ((ink - ink.new_tensor(0.05)) * 40).sigmoid()
        p = torch.zeros(len(x), 10)
        p[:, 8], p[:, 1] = p8, 1 - p8
        return p
    names, effects = name_directions(digit_generator, vectors, 8, n=64, classify=classify)
    assert names[1].startswith("1s ↔ 8s") and len(names[1].split(", ")) <= 2
    assert max(effects[1]["class_shift"]) >= 0.15


class LinearNet(torch.nn.Module):
    feature_layer = "fc"

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 32)

    def forward(self, z, labels=None):
        return self.fc(z)


def test_directions_are_the_same_every_time():
    net = LinearNet()
    torch.manual_seed(123)
    a = compute_directions(net, 8, k=4, n=300)
    torch.manual_seed(456)                              # the global generator must not matter
    b = compute_directions(net, 8, k=4, n=300)
    assert torch.equal(a["vectors"], b["vectors"])


def test_pictures_drawn_by_another_request_meanwhile_do_not_enter_the_directions():
    """The app samples from the same network in other threads while a slider setup computes its directions (a
    run just trained in the Train tab: "torch.linalg.lstsq: input.size(-2) should match other.size(-2)")."""
    net = LinearNet()
    alone = compute_directions(net, 8, k=4, n=300, batch=100)
    others = []

    def meanwhile(module, args):                        # while our first batch runs, another thread samples
        if not others:
            others.append(threading.Thread(target=lambda: net(torch.randn(7, 8))))
            others[0].start()
            others[0].join()
    handle = net.register_forward_pre_hook(meanwhile)
    try:
        crowded = compute_directions(net, 8, k=4, n=300, batch=100)
    finally:
        handle.remove()
    assert others and torch.equal(alone["vectors"], crowded["vectors"])


def test_a_repeated_name_is_told_apart_by_the_next_effect():
    thick_and_lean = _unit(1) + 0.35 * _unit(0)
    vectors = torch.stack([_unit(1), thick_and_lean / thick_and_lean.norm()])
    names, effects = name_directions(digit_generator, vectors, 8, n=64)
    assert names[0] == "thin ↔ bold"
    assert abs(effects[1]["slant"]) < 0.6 * abs(effects[1]["ink"])      # the lean alone would not name it
    assert names[1] == "thin ↔ bold, leans left ↔ leans right"


def test_a_persons_names_are_shown_over_the_measured_ones_which_stay():
    d = {"labels": ["bright ↔ dark", "direction 2", "warm ↔ cool"], "looked_at": {"1": "man ↔ woman", "3": ""}}
    assert shown_labels(d) == ["man ↔ woman", "direction 2", "warm ↔ cool"]
    assert d["labels"][0] == "bright ↔ dark"
    # metadata from someone else's file: whatever its shape, the app gets strings or nothing, never a crash
    assert shown_labels({"labels": "bright", "looked_at": ["x"]}) == []
    assert shown_labels({"labels": [1, "a"], "looked_at": {"1": 7}}) == ["7", "a"]


def test_names_stay_only_with_the_direction_they_were_given_to():
    v = torch.eye(4)
    old = {"vectors": v, "looked_at": {"1": "man ↔ woman", "2": "smiles", "4": "turns", "x": "junk"}}
    same = {"vectors": v.clone()}
    assert names_still_apply(old, same) == {"1": "man ↔ woman", "2": "smiles", "4": "turns"}
    moved = {"vectors": torch.stack([-v[0], (v[1] + v[2]) / 2 ** 0.5, v[2], v[3]])}
    assert names_still_apply(old, moved) == {"4": "turns"}      # flipped (its ends swapped) or turned: dropped
    assert names_still_apply(old, {"vectors": torch.eye(3)[:2]}) == {}               # another latent size
    assert names_still_apply({"vectors": v}, same) == {}


def test_a_name_is_one_short_line_that_fits_a_table_cell():
    assert check_name("  man  ↔\nwoman ") == "man ↔ woman"
    with pytest.raises(ValueError, match="at most 60 characters"):
        check_name("x" * 61)
    with pytest.raises(ValueError, match="cannot hold '|'"):
        check_name("a | b")
