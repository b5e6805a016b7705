"""Datasets with a layout of their own, each in one module.

:mod:`biosig_prep.datasets.dreamer`: the DREAMER emotion dataset (``DREAMER.mat``): its layout,
reading it once, the Shimmer2 ECG counts-to-mV factor, per-trial problems. Its synthetic twin
is :mod:`biosig_prep.synth.dreamer`; its paired, labelled windows are cut by
:func:`biosig_prep.processing.process_dreamer_trial`.
"""
