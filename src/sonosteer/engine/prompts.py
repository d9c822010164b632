"""Prompt text -> SDXL conditioning: both CLIP encoders' penultimate hidden states and the pooled embedding.

Computed once per prompt and kept in an LRU cache on the engine's device, so changing the prompt
pair is a cache lookup plus a device copy, never a text-encoder pass in the frame loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sonosteer.engine.lru_cache import LruCache


@dataclass(frozen=True)
class PromptEmbedding:
    """tokens: (1, 77, context) float32 (both encoders concatenated); pooled: (1, pooled) float32."""

    tokens: torch.Tensor
    pooled: torch.Tensor


class PromptEncoder:
    """Encodes prompts with SDXL's two tokenizer/encoder pairs, like diffusers' SDXL pipeline (no clip skip)."""

    def __init__(self, tokenizers: list, text_encoders: list, cache_size: int = 32):
        if len(tokenizers) != 2 or len(text_encoders) != 2:
            raise ValueError("SDXL needs two tokenizers and two text encoders")
        self.tokenizers = tokenizers
        self.text_encoders = text_encoders
        self.device = next(text_encoders[0].parameters()).device
        self.cache: LruCache[str, PromptEmbedding] = LruCache(self._encode, cache_size)

    def __call__(self, prompt: str) -> PromptEmbedding:
        return self.cache.get(prompt)

    @property
    def sequence_length(self) -> int:
        return int(self.tokenizers[0].model_max_length)

    @torch.no_grad()
    def _encode(self, prompt: str) -> PromptEmbedding:
        hidden, pooled = [], None
        for tokenizer, encoder in zip(self.tokenizers, self.text_encoders):
            ids = tokenizer(
                prompt,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(self.device)
            out = encoder(ids, output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
            pooled = getattr(out, "text_embeds", None)  # the projection model (encoder 2) gives the pooled vector
        if pooled is None:
            raise ValueError("the second text encoder must be a CLIPTextModelWithProjection (it gives SDXL's pooled text)")
        return PromptEmbedding(torch.cat(hidden, dim=-1).float(), pooled.float())
