"""Command-line options that choose weights, size and device, shared by every command that builds an engine."""

from __future__ import annotations

import argparse

from sonosteer.engine.settings import DEFAULT_DECODER, DEFAULT_MODEL, DEFAULT_SAES, EngineSettings


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """--model / --decoder / --saes / --variant: Hugging Face ids or local folders."""
    group = parser.add_argument_group("model weights (Hugging Face ids or local folders)")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"SDXL-Turbo, diffusers layout (default {DEFAULT_MODEL})")
    group.add_argument("--decoder", default=DEFAULT_DECODER, help=f"TAESDXL decoder (default {DEFAULT_DECODER})")
    group.add_argument("--saes", default=DEFAULT_SAES, help=f"sdxl-unbox SAEs (default {DEFAULT_SAES})")
    group.add_argument("--variant", default="fp16", help="weights variant of a hub model ('none' for full precision)")


def add_exact_argument(parser: argparse.ArgumentParser) -> None:
    """--exact: the published fp16 path instead of the fast one (for commands that render)."""
    parser.add_argument(
        "--exact",
        action="store_true",
        help="render with the exact published fp16 path (diffusers attention, no float8): slower, for comparison",
    )


def settings_from_args(args: argparse.Namespace, **overrides) -> EngineSettings:
    """EngineSettings from the options of add_weights_arguments and add_exact_argument (plus keyword overrides)."""
    variant = None if str(args.variant).lower() in ("", "none") else args.variant
    path = {"attention": "reference"} if getattr(args, "exact", False) else {}  # quantize "auto" is fp16 there
    return EngineSettings(
        model=args.model, decoder=args.decoder, saes=args.saes, model_variant=variant, **{**path, **overrides}
    )
