"""sonosteer: a music visualizer played like an instrument."""

__version__ = "0.1.0"
