/* mkmodel_cfg.c — the config files spo-mkmodel writes, per preset. */
#include "nn/mkmodel_impl.h"

#include <string.h>

static const char *unet_tiny =
    "{\n  \"_class_name\": \"UNet2DConditionModel\",\n  \"_diffusers_version\": \"0.26.1\",\n"
    "  \"act_fn\": \"silu\",\n  \"attention_head_dim\": 2,\n  \"block_out_channels\": [32, 64],\n"
    "  \"center_input_sample\": false,\n  \"cross_attention_dim\": 32,\n"
    "  \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],\n  \"downsample_padding\": 1,\n"
    "  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0,\n  \"in_channels\": 4,\n  \"layers_per_block\": 1,\n"
    "  \"mid_block_scale_factor\": 1,\n  \"norm_eps\": 1e-05,\n  \"norm_num_groups\": 8,\n  \"out_channels\": 4,\n"
    "  \"sample_size\": 16,\n  \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"]\n}\n";

static const char *unet_sd15 =
    "{\n  \"_class_name\": \"UNet2DConditionModel\",\n  \"_diffusers_version\": \"0.26.1\",\n"
    "  \"act_fn\": \"silu\",\n  \"attention_head_dim\": 8,\n  \"block_out_channels\": [320, 640, 1280, 1280],\n"
    "  \"center_input_sample\": false,\n  \"cross_attention_dim\": 768,\n"
    "  \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
    "\"DownBlock2D\"],\n  \"downsample_padding\": 1,\n  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0,\n"
    "  \"in_channels\": 4,\n  \"layers_per_block\": 2,\n  \"mid_block_scale_factor\": 1,\n  \"norm_eps\": 1e-05,\n"
    "  \"norm_num_groups\": 32,\n  \"out_channels\": 4,\n  \"sample_size\": 64,\n"
    "  \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"]\n}\n";

/* stabilityai/stable-diffusion-xl-base-1.0 unet/config.json, key for key
 * (2,567,463,684 parameters in 1680 tensors). */
static const char *unet_sdxl =
    "{\n  \"_class_name\": \"UNet2DConditionModel\",\n  \"_diffusers_version\": \"0.19.0.dev0\",\n"
    "  \"act_fn\": \"silu\",\n  \"addition_embed_type\": \"text_time\",\n  \"addition_embed_type_num_heads\": 64,\n"
    "  \"addition_time_embed_dim\": 256,\n  \"attention_head_dim\": [5, 10, 20],\n"
    "  \"block_out_channels\": [320, 640, 1280],\n  \"center_input_sample\": false,\n  \"class_embed_type\": null,\n"
    "  \"class_embeddings_concat\": false,\n  \"conv_in_kernel\": 3,\n  \"conv_out_kernel\": 3,\n"
    "  \"cross_attention_dim\": 2048,\n  \"cross_attention_norm\": null,\n"
    "  \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"],\n"
    "  \"downsample_padding\": 1,\n  \"dual_cross_attention\": false,\n  \"encoder_hid_dim\": null,\n"
    "  \"encoder_hid_dim_type\": null,\n  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0,\n  \"in_channels\": 4,\n"
    "  \"layers_per_block\": 2,\n  \"mid_block_only_cross_attention\": null,\n  \"mid_block_scale_factor\": 1,\n"
    "  \"mid_block_type\": \"UNetMidBlock2DCrossAttn\",\n  \"norm_eps\": 1e-05,\n  \"norm_num_groups\": 32,\n"
    "  \"num_attention_heads\": null,\n  \"num_class_embeds\": null,\n  \"only_cross_attention\": false,\n"
    "  \"out_channels\": 4,\n  \"projection_class_embeddings_input_dim\": 2816,\n  \"resnet_out_scale_factor\": 1.0,\n"
    "  \"resnet_skip_time_act\": false,\n  \"resnet_time_scale_shift\": \"default\",\n  \"sample_size\": 128,\n"
    "  \"time_cond_proj_dim\": null,\n  \"time_embedding_act_fn\": null,\n  \"time_embedding_dim\": null,\n"
    "  \"time_embedding_type\": \"positional\",\n  \"timestep_post_act\": null,\n"
    "  \"transformer_layers_per_block\": [1, 2, 10],\n"
    "  \"up_block_types\": [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"],\n"
    "  \"upcast_attention\": null,\n  \"use_linear_projection\": true\n}\n";

/* a tiny SDXL UNet with every SDXL feature (as tests/fixtures/tiny-sdxl/unet):
 * no attention at level 0, 2 transformer layers in the last level, linear
 * projections, text_time conditioning of 6 ids x 8 + the pooled 32 */
static const char *unet_sdxl_tiny =
    "{\n  \"_class_name\": \"UNet2DConditionModel\",\n  \"_diffusers_version\": \"0.26.1\",\n"
    "  \"act_fn\": \"silu\",\n  \"addition_embed_type\": \"text_time\",\n  \"addition_time_embed_dim\": 8,\n"
    "  \"attention_head_dim\": [1, 2, 4],\n  \"block_out_channels\": [8, 16, 16],\n  \"cross_attention_dim\": 64,\n"
    "  \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"],\n"
    "  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0,\n  \"in_channels\": 4,\n  \"layers_per_block\": 2,\n"
    "  \"norm_eps\": 1e-05,\n  \"norm_num_groups\": 4,\n  \"out_channels\": 4,\n"
    "  \"projection_class_embeddings_input_dim\": 80,\n  \"sample_size\": 8,\n"
    "  \"transformer_layers_per_block\": [1, 1, 2],\n"
    "  \"up_block_types\": [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"],\n"
    "  \"use_linear_projection\": true\n}\n";

static const char *vae_tiny =
    "{\n  \"_class_name\": \"AutoencoderKL\",\n  \"_diffusers_version\": \"0.26.1\",\n  \"act_fn\": \"silu\",\n"
    "  \"block_out_channels\": [32, 64],\n  \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n"
    "  \"in_channels\": 3,\n  \"latent_channels\": 4,\n  \"layers_per_block\": 1,\n  \"norm_num_groups\": 8,\n"
    "  \"out_channels\": 3,\n  \"sample_size\": 32,\n  \"scaling_factor\": 0.18215,\n"
    "  \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]\n}\n";

static const char *vae_sd15 =
    "{\n  \"_class_name\": \"AutoencoderKL\",\n  \"_diffusers_version\": \"0.26.1\",\n  \"act_fn\": \"silu\",\n"
    "  \"block_out_channels\": [128, 256, 512, 512],\n  \"down_block_types\": [\"DownEncoderBlock2D\", "
    "\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n  \"in_channels\": 3,\n"
    "  \"latent_channels\": 4,\n  \"layers_per_block\": 2,\n  \"norm_num_groups\": 32,\n  \"out_channels\": 3,\n"
    "  \"sample_size\": 512,\n  \"scaling_factor\": 0.18215,\n  \"up_block_types\": [\"UpDecoderBlock2D\", "
    "\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]\n}\n";

/* SD v1.5's text encoder says eos_token_id 2 (transformers then pools at
 * the highest id, 49407 = eos); the tiny one names its real eos. */
static const char *text_tiny =
    "{\n  \"architectures\": [\"CLIPTextModel\"],\n  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 512,\n"
    "  \"eos_token_id\": 513,\n  \"hidden_act\": \"quick_gelu\",\n  \"hidden_size\": 32,\n"
    "  \"initializer_factor\": 1.0,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 64,\n"
    "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": 77,\n  \"model_type\": \"clip_text_model\",\n"
    "  \"num_attention_heads\": 4,\n  \"num_hidden_layers\": 2,\n  \"pad_token_id\": 513,\n"
    "  \"projection_dim\": 512,\n  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.40.1\",\n"
    "  \"vocab_size\": 514\n}\n";

static const char *text_sd15 =
    "{\n  \"architectures\": [\"CLIPTextModel\"],\n  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 0,\n"
    "  \"dropout\": 0.0,\n  \"eos_token_id\": 2,\n  \"hidden_act\": \"quick_gelu\",\n  \"hidden_size\": 768,\n"
    "  \"initializer_factor\": 1.0,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 3072,\n"
    "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": 77,\n  \"model_type\": \"clip_text_model\",\n"
    "  \"num_attention_heads\": 12,\n  \"num_hidden_layers\": 12,\n  \"pad_token_id\": 1,\n"
    "  \"projection_dim\": 768,\n  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.40.1\",\n"
    "  \"vocab_size\": 49408\n}\n";

/* SDXL's second text encoder (OpenCLIP bigG as CLIPTextModelWithProjection),
 * tiny and full; SDXL's first is CLIP ViT-L, SD v1.5's text_sd15 */
static const char *text2_tiny =
    "{\n  \"architectures\": [\"CLIPTextModelWithProjection\"],\n  \"bos_token_id\": 512,\n  \"eos_token_id\": 513,\n"
    "  \"hidden_act\": \"gelu\",\n  \"hidden_size\": 32,\n  \"intermediate_size\": 80,\n  \"layer_norm_eps\": 1e-05,\n"
    "  \"max_position_embeddings\": 77,\n  \"model_type\": \"clip_text_model\",\n  \"num_attention_heads\": 2,\n"
    "  \"num_hidden_layers\": 3,\n  \"pad_token_id\": 1,\n  \"projection_dim\": 32,\n  \"torch_dtype\": \"float32\",\n"
    "  \"transformers_version\": \"4.40.1\",\n  \"vocab_size\": 514\n}\n";

static const char *text2_sdxl =
    "{\n  \"architectures\": [\"CLIPTextModelWithProjection\"],\n  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 0,\n"
    "  \"dropout\": 0.0,\n  \"eos_token_id\": 2,\n  \"hidden_act\": \"gelu\",\n  \"hidden_size\": 1280,\n"
    "  \"initializer_factor\": 1.0,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": 5120,\n"
    "  \"layer_norm_eps\": 1e-05,\n  \"max_position_embeddings\": 77,\n  \"model_type\": \"clip_text_model\",\n"
    "  \"num_attention_heads\": 20,\n  \"num_hidden_layers\": 32,\n  \"pad_token_id\": 1,\n"
    "  \"projection_dim\": 1280,\n  \"torch_dtype\": \"float16\",\n  \"transformers_version\": \"4.40.1\",\n"
    "  \"vocab_size\": 49408\n}\n";

/* SDXL's VAE: SD v1.5's architecture with its own scaling factor */
static const char *vae_sdxl =
    "{\n  \"_class_name\": \"AutoencoderKL\",\n  \"_diffusers_version\": \"0.26.1\",\n  \"act_fn\": \"silu\",\n"
    "  \"block_out_channels\": [128, 256, 512, 512],\n  \"down_block_types\": [\"DownEncoderBlock2D\", "
    "\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n  \"force_upcast\": true,\n"
    "  \"in_channels\": 3,\n  \"latent_channels\": 4,\n  \"layers_per_block\": 2,\n  \"norm_num_groups\": 32,\n"
    "  \"out_channels\": 3,\n  \"sample_size\": 1024,\n  \"scaling_factor\": 0.13025,\n"
    "  \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]\n}\n";

static const char *vae_sdxl_tiny =
    "{\n  \"_class_name\": \"AutoencoderKL\",\n  \"_diffusers_version\": \"0.26.1\",\n  \"act_fn\": \"silu\",\n"
    "  \"block_out_channels\": [32, 64],\n  \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n"
    "  \"force_upcast\": true,\n  \"in_channels\": 3,\n  \"latent_channels\": 4,\n  \"layers_per_block\": 1,\n"
    "  \"norm_num_groups\": 8,\n  \"out_channels\": 3,\n  \"sample_size\": 16,\n  \"scaling_factor\": 0.13025,\n"
    "  \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]\n}\n";

static const char *model_index_sdxl =
    "{\n  \"_class_name\": \"StableDiffusionXLPipeline\",\n  \"_diffusers_version\": \"0.26.1\",\n"
    "  \"feature_extractor\": [null, null],\n  \"force_zeros_for_empty_prompt\": true,\n"
    "  \"image_encoder\": [null, null],\n  \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],\n"
    "  \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
    "  \"text_encoder_2\": [\"transformers\", \"CLIPTextModelWithProjection\"],\n"
    "  \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n  \"tokenizer_2\": [\"transformers\", \"CLIPTokenizer\"],\n"
    "  \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n  \"vae\": [\"diffusers\", \"AutoencoderKL\"]\n}\n";

static const char *scheduler =
    "{\n  \"_class_name\": \"DDIMScheduler\",\n  \"_diffusers_version\": \"0.26.1\",\n  \"beta_end\": 0.012,\n"
    "  \"beta_schedule\": \"scaled_linear\",\n  \"beta_start\": 0.00085,\n  \"clip_sample\": false,\n"
    "  \"num_train_timesteps\": 1000,\n  \"prediction_type\": \"epsilon\",\n  \"set_alpha_to_one\": false,\n"
    "  \"steps_offset\": 1,\n  \"timestep_spacing\": \"leading\",\n  \"trained_betas\": null\n}\n";

static const char *model_index =
    "{\n  \"_class_name\": \"StableDiffusionPipeline\",\n  \"_diffusers_version\": \"0.26.1\",\n"
    "  \"feature_extractor\": [null, null],\n  \"image_encoder\": [null, null],\n"
    "  \"requires_safety_checker\": false,\n  \"safety_checker\": [null, null],\n"
    "  \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],\n  \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
    "  \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n  \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
    "  \"vae\": [\"diffusers\", \"AutoencoderKL\"]\n}\n";

/* The step-aware preference model's CLIP: tiny (ViT 28 px, patch 14) and
 * PickScore_v1's ViT-H/14 sizes. */
static const char *spm_tiny =
    "{\n  \"architectures\": [\"CLIPModel\"],\n  \"logit_scale_init_value\": 2.6592,\n  \"model_type\": \"clip\",\n"
    "  \"projection_dim\": 16,\n  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.40.1\",\n"
    "  \"text_config\": {\"bos_token_id\": 512, \"eos_token_id\": 513, \"pad_token_id\": 513, \"hidden_act\": \"gelu\",\n"
    "    \"hidden_size\": 32, \"intermediate_size\": 64, \"layer_norm_eps\": 1e-05, \"max_position_embeddings\": 77,\n"
    "    \"model_type\": \"clip_text_model\", \"num_attention_heads\": 4, \"num_hidden_layers\": 2,\n"
    "    \"projection_dim\": 16, \"vocab_size\": 514},\n"
    "  \"vision_config\": {\"hidden_act\": \"gelu\", \"hidden_size\": 32, \"image_size\": 28,\n"
    "    \"intermediate_size\": 64, \"layer_norm_eps\": 1e-05, \"model_type\": \"clip_vision_model\",\n"
    "    \"num_attention_heads\": 4, \"num_channels\": 3, \"num_hidden_layers\": 2, \"patch_size\": 14,\n"
    "    \"projection_dim\": 16}\n}\n";

static const char *spm_full =
    "{\n  \"architectures\": [\"CLIPModel\"],\n  \"logit_scale_init_value\": 2.6592,\n  \"model_type\": \"clip\",\n"
    "  \"projection_dim\": 1024,\n  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.40.1\",\n"
    "  \"text_config\": {\"bos_token_id\": 49406, \"eos_token_id\": 49407, \"pad_token_id\": 1, \"hidden_act\": \"gelu\",\n"
    "    \"hidden_size\": 1024, \"intermediate_size\": 4096, \"layer_norm_eps\": 1e-05,\n"
    "    \"max_position_embeddings\": 77, \"model_type\": \"clip_text_model\", \"num_attention_heads\": 16,\n"
    "    \"num_hidden_layers\": 24, \"projection_dim\": 1024, \"vocab_size\": 49408},\n"
    "  \"vision_config\": {\"hidden_act\": \"gelu\", \"hidden_size\": 1280, \"image_size\": 224,\n"
    "    \"intermediate_size\": 5120, \"layer_norm_eps\": 1e-05, \"model_type\": \"clip_vision_model\",\n"
    "    \"num_attention_heads\": 16, \"num_channels\": 3, \"num_hidden_layers\": 32, \"patch_size\": 14,\n"
    "    \"projection_dim\": 1024}\n}\n";

int spo_mk_preset(mk_preset_t *p, const char *name)
{
    memset(p, 0, sizeof *p);
    p->scheduler = scheduler;
    p->model_index = model_index;
    if (!strcmp(name, "tiny")) {
        p->unet = unet_tiny, p->vae = vae_tiny, p->text = text_tiny, p->spm = spm_tiny;
        p->bos = 512, p->eos = 513;
        return SPO_OK;
    }
    if (!strcmp(name, "sd15")) {
        p->unet = unet_sd15, p->vae = vae_sd15, p->text = text_sd15, p->spm = spm_full;
        p->bos = 49406, p->eos = 49407;
        return SPO_OK;
    }
    /* SDXL: two text encoders; the second tokenizer pads with "!" (id 0) */
    if (!strcmp(name, "sdxl-tiny")) {
        p->unet = unet_sdxl_tiny, p->vae = vae_sdxl_tiny, p->text = text_tiny, p->text2 = text2_tiny;
        p->spm = spm_tiny, p->model_index = model_index_sdxl;
        p->bos = 512, p->eos = 513;
        return SPO_OK;
    }
    if (!strcmp(name, "sdxl")) {
        p->unet = unet_sdxl, p->vae = vae_sdxl, p->text = text_sd15, p->text2 = text2_sdxl;
        p->spm = spm_full, p->model_index = model_index_sdxl;
        p->bos = 49406, p->eos = 49407;
        return SPO_OK;
    }
    return spo_err(SPO_EINVAL, "unknown preset '%s' (tiny, sd15, sdxl-tiny or sdxl)", name);
}

const char *spo_mkmodel_unet_config(const char *name)
{
    static const struct { const char *name, **json; } t[] = {{"tiny", &unet_tiny}, {"sd15", &unet_sd15},
                                                             {"sdxl", &unet_sdxl}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(name, t[i].name)) return *t[i].json;
    return NULL;
}
