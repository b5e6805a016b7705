"""Dual-masking pretraining of the criss-cross encoder on biosig-prep stores.

``pretrain(config, out_dir)`` trains :class:`criss_cross.CrissCrossEncoder` to reconstruct
masked patches (patch masking with ratio ``r`` united with whole-channel masking of proportion
``r_c``, loss ½·L_patch + ½·L_channel, see :mod:`criss_cross.losses`) on windows streamed by
:mod:`criss_cross.data`. Defaults follow CBraMod's recipe where the paper (Ghallab et al.,
arXiv 2512.15250) is silent: AdamW, lr 5e-4, weight decay 0.05, cosine schedule to 1e-5 after a
short linear warm-up, gradient clipping at 1, batch 128, r = 0.5, r_c = 0.25.

What a run directory holds::

    config.json            the resolved PretrainConfig
    metrics.jsonl          one line every ``log_every`` steps: loss (mean over the interval),
                           each loss term, zero_mse, lr, grad norm, samples/s, data-wait
                           fraction
    loss_curve.png         the loss against steps (like the paper's Figure 2), at the end,
                           with zero_mse dashed
    checkpoints/latest     name of the newest complete checkpoint
    checkpoints/step_NNNNNNNN/
        model.safetensors + model.json   weights + EncoderConfig (criss_cross.load_checkpoint)
        optimizer.safetensors            AdamW moments and step counts (tensors only)
        rng.safetensors                  torch RNG states
        trainer.json                     step, config, optimizer hyper-parameters; the
                                         learning rate is get_lr(step), so the step is the
                                         whole scheduler state

The reference a loss is read against. ``zero_mse`` is the same dual-masking loss for a model
that predicts zeros, over the same masked positions of the same batch (the mean square of the
target there; windows are band-passed, so about their variance). A loss near it means the model
has learnt the output scale, not the signal; the progress bar shows both.

The reconstruction head starts at zero (``head_init="zero"``, the default). CBraMod's
kaiming-normal (fan_out) init of ``proj_out`` makes a fresh model predict patches of ~300x the
variance of ECG in mV (loss ~8 mV^2 against a zero predictor's ~0.024 on the small preset),
and the first few hundred steps go into shrinking that output. Measured with the small preset
at batch 16 (loss / zero_mse, mean of steps 91-100 and 291-300): synthetic 12-lead ECG, 3.3
and 1.5 with CBraMod's head, 0.48 and 0.31 with a zero head; the 50 real CinC records, 2.1 and
1.3 against 0.76 and 0.55. Scaling the input to unit variance (input_scale 6) did not fix the
kaiming head (1.05 and 0.90) nor improve the zero head (0.50 and 0.30), so ECG stays in mV.
Only the head of a fresh run changes: the rest keeps CBraMod's init, key names and shapes are
unchanged (official weights still load), and ``head_init="cbramod"`` restores the original.

Reproducibility and resume. Every random draw of a step is derived from ``(seed, rank, step)``:
the data order (the loader's plan, see :mod:`criss_cross.data`), the dual masks (an explicit
``torch.Generator``) and dropout (the global generator is re-seeded each step). A checkpoint is
written to a temporary directory and renamed into place, so a run killed at any moment (SIGKILL
included) leaves only complete checkpoints; ``resume=True`` restores weights and optimizer
state from the newest intact one (a damaged newer one is passed over, with a note) and
continues with the same batches and masks, so the loss curve is the one an uninterrupted run
draws.

Padded patches (store schema 2: ``patch_mask`` False, the zero padding of a record's last
partial window) are never masked and count in no loss term nor in ``zero_mse``; zero-filled
leads (``channel_mask`` False) are never chosen for whole-lead masking and count nowhere
either. A batch without ``patch_mask`` has every patch valid.

Scale. One process by default. Under ``torchrun --nproc-per-node N`` (``RANK``/``WORLD_SIZE``/
``LOCAL_RANK`` set) the model is wrapped in DistributedDataParallel (gloo on CPU, nccl on GPU),
``batch_size`` is the global batch (each rank takes ``batch_size / N``) and every rank reads a
disjoint part of each epoch. bf16 autocast on GPU. Only rank 0 writes logs and checkpoints.

Layout: :mod:`.loop` (the run), :mod:`.step` (one typed training step), :mod:`.schedule`
(``get_lr``, seeds), :mod:`.distributed` (DDP set-up), :mod:`.metrics` (log and plot);
checkpoints live in :mod:`criss_cross.checkpoint`, the config in :mod:`criss_cross.config`.
"""

from criss_cross.checkpoint import latest_checkpoint
from criss_cross.config import RESUMABLE_CHANGES, SMALL_PRESET, PretrainConfig, apply_preset
from criss_cross.pretrain.loop import RunSummary, parameter_digest, pretrain
from criss_cross.pretrain.metrics import plot_loss_curve
from criss_cross.pretrain.schedule import get_lr
from criss_cross.pretrain.step import loss_terms

_loss_terms = loss_terms  # the name tests and notebooks used before the split

__all__ = [
    "PretrainConfig",
    "RESUMABLE_CHANGES",
    "RunSummary",
    "SMALL_PRESET",
    "apply_preset",
    "get_lr",
    "latest_checkpoint",
    "loss_terms",
    "parameter_digest",
    "plot_loss_curve",
    "pretrain",
]
