"""Quality metrics: Fréchet distance and KID on features, the MNIST classifier judge, evaluation of a checkpoint."""
from .frechet import feature_stats, frechet_distance, kernel_inception_distance

__all__ = ["feature_stats", "frechet_distance", "kernel_inception_distance"]
