"""What a memory estimate says of one GPU of a worker, whichever engine's model made it.

An engine that can estimate its workers' memory answers with a :class:`Budget` (its model, figures and
sources live in its own package, beside its engine config); the compiler's memory rules (DYN140-142) read
only this.
"""

from __future__ import annotations

import msgspec

GIB = 1024**3
# Weights and working set above this share of the GPU leave a KV cache too small to batch well.
TIGHT_SHARE = 0.9


class Budget(msgspec.Struct, frozen=True):
    """Bytes on one GPU of the worker."""

    capacity: int
    weights: int
    working_set: int
    overhead: int
    kv_cache: int  # what the engine gives the KV cache: its fraction of what is left (0 if nothing is)
    kv_bytes_per_token: float  # per GPU, a full-attention token (all layers of the rank's stages)
    sequence_tokens: int  # tokens of one full-length request (max_seq_len, else max_num_tokens)
    sequence_bytes: int  # KV of one full-length request on this GPU
    batch: int  # max_batch_size in force
    free_fraction: float
    max_seq_len_set: bool
    kv_value_bytes: float = 2.0  # bytes per cached value in the KV cache type in force (1: FP8 already)

    @property
    def before_kv(self) -> int:
        return self.weights + self.working_set + self.overhead

    @property
    def sequences(self) -> int:
        """Full-length requests the KV cache holds at once."""
        return self.kv_cache // self.sequence_bytes if self.sequence_bytes else 0

    @property
    def kv_tokens(self) -> int:
        return int(self.kv_cache / self.kv_bytes_per_token) if self.kv_bytes_per_token else 0

    @property
    def fits(self) -> bool:
        """The worker starts and holds one full-length request."""
        return self.before_kv < self.capacity and self.kv_cache >= self.sequence_bytes

    @property
    def tight(self) -> bool:
        return self.fits and (self.before_kv > TIGHT_SHARE * self.capacity or self.sequences < self.batch)


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"
