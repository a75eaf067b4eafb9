"""photosort: sort your photos into folders with CLIP, by typed categories or a few clicks."""

__version__ = "0.1.0"
