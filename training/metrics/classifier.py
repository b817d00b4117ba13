"""The project's own MNIST classifier: the judge for digit quality (accuracy, class histogram, classifier-FID)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from gan_demo.checkpoint import atomic_write
from gan_demo.generator import DEFAULT_WEIGHTS_DIR, weights_dir

CLASSIFIER_FILE = "mnist-classifier.safetensors"


class MnistClassifier(nn.Module):
    """Two 3×3 conv blocks with max-pooling, a 128-unit hidden layer (the features), 10 logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)

    def features(self, x):          # x in [-1, 1], N×1×28×28
        return self.body(x)

    def forward(self, x):
        return self.head(self.drop(self.features(x)))


def _to_input(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float().div(127.5).sub(1.0)


def train_classifier(train, test, epochs: int = 3, batch: int = 128, seed: int = 0, out=None) -> dict:
    """Adam, random ±2-pixel shifts; returns {"test_accuracy", …} and writes weights/mnist-classifier.safetensors."""
    torch.manual_seed(seed)
    model = MnistClassifier()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * (len(train.images) // batch))
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train.images), generator=g)
        for i in range(len(train.images) // batch):
            idx = perm[i * batch:(i + 1) * batch]
            x = _to_input(train.images[idx])
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(x, (dx, dy), (2, 3))
            loss = nn.functional.cross_entropy(model(x), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, test.images, test.labels)
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}", flush=True)
    info = {"test_accuracy": acc, "epochs": epochs, "wall_time_s": round(time.time() - t0, 1)}
    path = Path(out) if out else weights_dir() / CLASSIFIER_FILE
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"info": json.dumps(info)}))
    return info


@torch.no_grad()
def accuracy(model, images, labels) -> float:
    return (predict(model, images) == labels).float().mean().item()


@torch.no_grad()
def predict(model, images_uint8, batch: int = 1000) -> torch.Tensor:
    return probabilities(model, images_uint8, batch).argmax(1)


@torch.no_grad()
def probabilities(model, images_uint8, batch: int = 1000) -> torch.Tensor:
    """N×10 class probabilities (softmax of the logits)."""
    model.eval()
    return torch.cat([model(_to_input(images_uint8[i:i + batch])).softmax(1)
                      for i in range(0, len(images_uint8), batch)])


@torch.no_grad()
def features(model, images_uint8, batch: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(_to_input(images_uint8[i:i + batch]))
                      for i in range(0, len(images_uint8), batch)])


def load_classifier(path=None) -> tuple[MnistClassifier, dict]:
    """From `path`, else the weights folder in use, else the repository's weights/."""
    if path is None:
        path = next((p for p in (weights_dir() / CLASSIFIER_FILE, DEFAULT_WEIGHTS_DIR / CLASSIFIER_FILE)
                     if p.is_file()), weights_dir() / CLASSIFIER_FILE)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the MNIST classifier is missing; train it with "
                                f"`python -m training train-classifier --data DATA`")
    model = MnistClassifier()
    with safe_open(str(path), "pt") as f:
        model.load_state_dict({k: f.get_tensor(k) for k in f.keys()})
        info = json.loads((f.metadata() or {}).get("info", "{}"))
    return model.eval(), info
