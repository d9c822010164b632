"""Model configurations: the real SDXL-Turbo / TAESDXL ones and a tiny one with the same structure.

The real configs are those published with `stabilityai/sdxl-turbo` (unet/config.json,
scheduler/scheduler_config.json) and `madebyollin/taesdxl` (config.json). They let the benchmark
build the full-size architecture with random weights (timing does not depend on weight values)
and give the scheduler a documented fallback. The tiny configs keep every module name and block
structure the engine relies on (`down_blocks.2.attentions.1`, `mid_block.attentions.0`,
`up_blocks.0.attentions.0/1`) at small widths, for CPU tests and smoke runs.
"""

from __future__ import annotations

from typing import Any

SDXL_TURBO_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 64,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}

SDXL_TURBO_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
}

TAESDXL_CONFIG: dict[str, Any] = {
    "act_fn": "relu",
    "decoder_block_out_channels": [64, 64, 64, 64],
    "encoder_block_out_channels": [64, 64, 64, 64],
    "force_upcast": False,
    "in_channels": 3,
    "latent_channels": 4,
    "latent_magnitude": 3,
    "latent_shift": 0.5,
    "num_decoder_blocks": [3, 3, 3, 1],
    "num_encoder_blocks": [1, 3, 3, 3],
    "out_channels": 3,
    "scaling_factor": 1.0,
    "upsampling_scaling_factor": 2,
}

SDXL_SEQUENCE_LENGTH = 77
"""CLIP context length: both tokenizers pad and truncate prompts to 77 tokens."""

# Tiny: two 32-wide CLIP text encoders concatenate to a 64-wide context; pooled 32 + 6 time ids x 8.
TINY_TEXT_WIDTH = 32
TINY_BLOCK_CHANNELS = 64
"""Channel count of the four steered blocks in the tiny UNet: the tiny SAEs' d_model."""

TINY_UNET_CONFIG: dict[str, Any] = {
    **SDXL_TURBO_UNET_CONFIG,
    "attention_head_dim": [2, 4, 4],
    "block_out_channels": [16, 32, TINY_BLOCK_CHANNELS],
    "cross_attention_dim": 2 * TINY_TEXT_WIDTH,
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": TINY_TEXT_WIDTH + 6 * 8,
    "norm_num_groups": 8,
    "transformer_layers_per_block": [1, 1, 1],
    "sample_size": 8,
}

TINY_TAESD_CONFIG: dict[str, Any] = {
    **TAESDXL_CONFIG,
    "decoder_block_out_channels": [8, 8, 8, 8],
    "encoder_block_out_channels": [8, 8, 8, 8],
    "num_decoder_blocks": [1, 1, 1, 1],
    "num_encoder_blocks": [1, 1, 1, 1],
}

_TINY_CLIP_TEXT: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": TINY_TEXT_WIDTH,
    "intermediate_size": 37,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "max_position_embeddings": SDXL_SEQUENCE_LENGTH,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}
TINY_TEXT_ENCODER_CONFIG: dict[str, Any] = {**_TINY_CLIP_TEXT, "hidden_act": "quick_gelu", "projection_dim": 32}
TINY_TEXT_ENCODER_2_CONFIG: dict[str, Any] = {**_TINY_CLIP_TEXT, "hidden_act": "gelu", "projection_dim": 32}


def pooled_width(unet_config: dict[str, Any]) -> int:
    """Width of the pooled text embedding the UNet expects (its added-condition input minus 6 time ids)."""
    return int(unet_config["projection_class_embeddings_input_dim"]) - 6 * int(unet_config["addition_time_embed_dim"])
