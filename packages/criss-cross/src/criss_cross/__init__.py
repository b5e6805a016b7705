"""criss-cross: a CBraMod-compatible criss-cross transformer encoder and its objectives."""

__version__ = "0.1.0"
