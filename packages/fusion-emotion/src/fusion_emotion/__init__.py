"""fusion-emotion: DREAMER emotion recognition with EEG+ECG encoders and concatenation fusion."""

__version__ = "0.1.0"
