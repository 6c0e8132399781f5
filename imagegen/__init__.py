"""imagegen: generate images with GPT Image 2 (and other providers) from Django."""

__version__ = "0.1.0"
