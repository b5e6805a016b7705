"""Building blocks of the encoder that are about *how* the work is done, not the architecture:
attention kernels and their dispatch (:mod:`.attention_dispatch`, with a fused-attention switch) and a
fast CPU dropout (:mod:`.dropout`)."""

from criss_cross.layers.attention_dispatch import (
    CPU_MATH_MAX_LEN,
    attention,
    attention_math,
    padded_sdpa,
    set_fused_attn,
    use_fused_attn,
)
from criss_cross.layers.dropout import Dropout, dropout, residual_dropout

__all__ = [
    "CPU_MATH_MAX_LEN",
    "Dropout",
    "attention",
    "attention_math",
    "dropout",
    "padded_sdpa",
    "residual_dropout",
    "set_fused_attn",
    "use_fused_attn",
]
