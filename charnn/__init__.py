"""charnn: train recurrent language models on your own text, from the terminal."""

__version__ = "0.1.0"
