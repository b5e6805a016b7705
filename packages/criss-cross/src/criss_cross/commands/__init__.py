"""The commands of ``criss-cross``, one module each; :mod:`criss_cross.cli` holds the root app.

Each command only parses its options and calls a plain importable function
(:func:`criss_cross.pretrain.pretrain`, :func:`criss_cross.embed.embed_store`,
:func:`criss_cross.hub.export_run`, :func:`criss_cross.probe.run_probe`).
"""
