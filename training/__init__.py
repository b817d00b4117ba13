"""training: data, losses, the training loop, export and the CLI (`python -m training`). Imports gan_demo."""
