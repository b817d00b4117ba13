"""gan_demo: the inference side of the project: model zoo, registry, checkpoints, latent maths, the app."""
from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .generator import GanGenerator, generator_from_checkpoint, load_generator, weights_dir
from .latents import interpolation_path, lerp, seed_latents, slerp, truncate, walk
from .registry import REGISTRY, ModelEntry, Recipe, get_entry, list_models

__all__ = ["CheckpointError", "GanGenerator", "ModelEntry", "REGISTRY", "Recipe", "generator_from_checkpoint",
           "get_entry", "interpolation_path", "lerp", "list_models", "load_generator", "read_checkpoint",
           "save_checkpoint", "seed_latents", "slerp", "truncate", "walk", "weights_dir"]
