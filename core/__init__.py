"""alive's core: the pipeline from a photo to a signed clip, free of any chat platform."""

__version__ = "0.1.0"
