"""The encoder's hyper-parameters: :class:`EncoderConfig`, the bottom of criss-cross's design.

Everything that builds, sizes or checks an encoder reads it (:mod:`criss_cross.encoder`,
:mod:`criss_cross.checkpoint`, the run configuration :mod:`criss_cross.config`), and it reads
nothing of criss-cross, so none of them import each other for it. Import it from
:mod:`criss_cross` or :mod:`criss_cross.config` as before.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EncoderConfig"]


class EncoderConfig(BaseModel):
    """Hyper-parameters of :class:`criss_cross.CrissCrossEncoder`.

    Parameters
    ----------
    d_model : int
        Width of the token embeddings. It is split in two halves: the first ``d_model // 2``
        features attend across channels (spatial attention), the last ``d_model // 2`` across
        patches (temporal attention). Must be even and equal to ``patch_size``: the patch
        embedding's convolutions produce 25 maps of ``patch_size / 25`` samples that are
        flattened into ``d_model`` features.
    n_layers : int
        Number of criss-cross transformer layers.
    n_heads : int
        Total number of attention heads; ``n_heads // 2`` heads per half, each of dimension
        ``d_model / n_heads``. Must be even and divide the halves.
    dim_feedforward : int
        Hidden width of each layer's feed-forward block.
    patch_size : int
        Samples per patch (the last dimension of the input). A multiple of 25 (the stride of
        the first convolution), so that the conv branch yields ``patch_size`` features.
    dropout : float
        Dropout of attention probabilities, residual branches, the feed-forward block and the
        spectral branch of the patch embedding.
    proj_out : bool
        True: a ``Linear(d_model, patch_size)`` reconstruction head (CBraMod's pretraining
        head); ``model(x)`` returns reconstructed patches. False: the head is the identity and
        ``model(x)`` returns the embeddings.
    input_scale : float
        Factor applied to the input by the code that feeds the model (pretraining, embedding,
        fusion), never inside :class:`CrissCrossEncoder`: stores keep physical units and the
        scale belongs to the model. ECG is stored in mV and fed as is (1.0); CBraMod's official
        EEG weights were trained on µV divided by 100, so an EEG encoder uses 0.01.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(200, gt=0)
    n_layers: int = Field(12, ge=1)
    n_heads: int = Field(8, ge=2)
    dim_feedforward: int = Field(800, gt=0)
    patch_size: int = Field(200, gt=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    proj_out: bool = True
    input_scale: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _check_shapes(self) -> EncoderConfig:
        if self.d_model % 2:
            raise ValueError(
                f"d_model ({self.d_model}) must be even: half the features attend across "
                "channels, half across patches"
            )
        if self.n_heads % 2:
            raise ValueError(
                f"n_heads ({self.n_heads}) must be even: n_heads // 2 heads attend across "
                "channels, n_heads // 2 across patches"
            )
        half = self.d_model // 2
        if half % (self.n_heads // 2):
            raise ValueError(
                f"each half of d_model ({half}) must be divisible by n_heads // 2 "
                f"({self.n_heads // 2}); got d_model={self.d_model}, n_heads={self.n_heads}"
            )
        if self.patch_size % 25:
            raise ValueError(
                f"patch_size ({self.patch_size}) must be a multiple of 25, the stride of the "
                "patch embedding's first convolution"
            )
        if self.d_model != self.patch_size:
            raise ValueError(
                f"d_model ({self.d_model}) must equal patch_size ({self.patch_size}): the conv "
                "branch of the patch embedding yields 25 maps of patch_size / 25 samples"
            )
        return self

    @property
    def head_dim(self) -> int:
        """Dimension of one attention head (25 with the defaults)."""
        return self.d_model // self.n_heads

    @property
    def n_freq_bins(self) -> int:
        """Bins of the one-sided spectrum of a patch: ``patch_size // 2 + 1``."""
        return self.patch_size // 2 + 1
