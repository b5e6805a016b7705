"""Downstream probes of encoders on labelled stores (see :mod:`criss_cross.probe.run`)."""
