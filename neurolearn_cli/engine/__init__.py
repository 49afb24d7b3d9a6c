"""Torch image engine: images, resampling, transforms, metrics and registration."""
