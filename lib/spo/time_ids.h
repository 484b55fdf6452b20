/* time_ids.h — SDXL's added time ids, as
 * StableDiffusionXLPipeline._get_add_time_ids (diffusers 0.26.1) makes them:
 *
 *   time_ids = [original_h, original_w, crop_top, crop_left, target_h, target_w]   float32
 *
 * The official SPO sampler (multi_sample_pipeline_sdxl) passes no sizes:
 * original = target = (height, width), crop (0, 0), height and width the
 * image size (default unet sample_size * vae_scale_factor, 1024 for SDXL);
 * the negative time ids are the same as the positive ones. The UNet's
 * add_embedding takes addition_time_embed_dim * 6 + E inputs (E the pooled
 * text width, text_encoder_2's projection_dim); the pipeline refuses
 * another UNet. */
#ifndef SPO_TIME_IDS_H
#define SPO_TIME_IDS_H

typedef struct {
    int original[2]; /* (height, width) */
    int crop[2];     /* (top, left) */
    int target[2];   /* (height, width) */
} spo_time_size;

/* what the official sampler uses for an image of height x width */
spo_time_size spo_time_size_default(int height, int width);
void spo_time_ids(float ids[6], const spo_time_size *s);
/* SPO_EINVAL (the pipeline's check) unless add_in_features ==
 * addition_time_embed_dim * 6 + pooled_dim. */
int spo_time_ids_check(int addition_time_embed_dim, int pooled_dim, int add_in_features);

#endif
