"""Pure numpy/scipy steps on one record's arrays, in the order a record meets them.

- :mod:`.qc`: non-finite values, flat and clipped leads, amplitude plausibility.
- :mod:`.filters`: band-pass and notch design, zero-phase filtering with even edge padding.
- :mod:`.leads`: lead names into the canonical 12-lead layout; a stream's channels.
- :mod:`.montage`: the EEG stream's channel set by majority of files, each file placed by name.
- :mod:`.resample`: polyphase resampling with a short anti-aliasing FIR per rate pair.
- :mod:`.windows`: the (C, n_patches, patch_size) window grid and the tail policy.
- :mod:`.stream`: the same steps on a live signal, chunk by chunk (overlap-save segments,
  an explicit filter lookahead), giving the windows ``convert`` would store.

No I/O: arrays in, arrays and reasons out (``filters`` and ``qc`` take their own section of
the config). The per-record pipeline that calls them in order is
:mod:`biosig_prep.processing`.
"""
