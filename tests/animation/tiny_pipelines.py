"""Tiny random-weight image-to-video pipelines, built in code as diffusers' own fast tests do.

Each builder returns a real diffusers pipeline with toy channel sizes (a few hundred thousand
parameters) that runs on the CPU in about a second. Nothing is downloaded: the text tokenizer is
a word-level ``tokenizers`` model made here instead of ``hf-internal-testing/tiny-random-t5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# NOTE: words the tiny tokenizer knows; anything else maps to <unk>, which is fine for noise.
_WORDS = [
    "a",
    "the",
    "camera",
    "slowly",
    "zooms",
    "pans",
    "in",
    "out",
    "left",
    "right",
    "up",
    "down",
    "clouds",
    "water",
    "moves",
]


def tiny_tokenizer(max_length: int = 16) -> Any:
    """A T5-shaped tokenizer (pad 0, eos 1, unk 2) with a tiny word-level vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def tiny_t5(vocab_size: int = 32, umt5: bool = False) -> Any:
    """A 1-layer T5 (or UMT5, as Wan uses) encoder with 32-wide embeddings."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    config = (UMT5Config if umt5 else T5Config)(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return (UMT5EncoderModel if umt5 else T5EncoderModel)(config).eval()


def tiny_ltx(pipeline: str = "LTXConditionPipeline") -> Any:
    """LTX-Video with the components of ``test_ltx_condition.py`` (VAE 4x space, 4x time)."""
    import diffusers
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,  # FirstBlockCache needs a first block and at least one more
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    cls = getattr(diffusers, pipeline)
    return cls(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=tiny_t5(),
        tokenizer=tiny_tokenizer(),
    )


def tiny_svd() -> Any:
    """Stable Video Diffusion with the fast tests' UNet and VAE, and a 224/14 CLIP encoder.

    The pipeline resizes a PIL photo to 224 px before the image encoder, so the CLIP config
    uses ``image_size=224, patch_size=14`` (research/feasibility.md section 5).
    """
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        trained_betas=None,
        use_karras_sigmas=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            num_hidden_layers=5,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=14,
        )
    ).eval()
    return StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )


def tiny_wan() -> Any:
    """Wan 2.1 image-to-video with the components of ``test_wan_image_to_video.py``."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    torch.manual_seed(0)
    encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    ).eval()
    return WanImageToVideoPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=tiny_t5(umt5=True),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=encoder,
        transformer=transformer,
    )


BUILDERS = {
    "ltx": tiny_ltx,
    "ltx-i2v": lambda: tiny_ltx("LTXImageToVideoPipeline"),
    "svd": tiny_svd,
    "wan": tiny_wan,
}


def save_tiny(kind: str, directory: Path) -> Path:
    """Build a tiny pipeline of ``kind`` and write it with ``save_pretrained``; return the dir."""
    BUILDERS[kind]().save_pretrained(directory)
    return directory
