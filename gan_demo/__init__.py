"""gan_demo: the inference side of the project: model zoo, registry, checkpoints, latent maths, the app."""
import importlib

# name → the module that defines it, imported on first use: `gan_demo.registry` or `gan_demo.paths` load without
# torch, so a command that only reads a plan or checks its arguments answers in a moment, not after torch's import
_EXPORTS = {
    "CheckpointError": "checkpoint", "read_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "GanGenerator": "generator", "generator_from_checkpoint": "generator", "load_generator": "generator",
    "weights_dir": "generator",
    "interpolation_path": "latents", "lerp": "latents", "seed_latents": "latents", "slerp": "latents",
    "truncate": "latents", "walk": "latents",
    "REGISTRY": "registry", "ModelEntry": "registry", "Recipe": "registry", "get_entry": "registry",
    "list_models": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gan_demo' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value              # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
