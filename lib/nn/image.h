/* image.h — image preprocessing for the CLIP image tower of the step-aware
 * preference model (SPM), on the CPU, fp32, NCHW.
 *
 * The official SPO code (spo/preference_models/models/
 * step_aware_preference_model.py, get_preference_score) does, for images
 * in [-1, 1]:
 *   scale = 224 / min(H, W)
 *   new = (int(H * scale + 0.5), int(W * scale + 0.5))
 *   x = F.interpolate(x, size=new, mode='bicubic', align_corners=False)
 *   if new[0] != new[1]: x = CenterCrop(224)(x)
 *   x = ((x / 2 + 0.5).clamp(0, 1) - mean) / std        (CLIP mean/std)
 * spo_clip_preprocess does exactly that; the pieces are public for tests
 * and other callers.
 *
 * Bicubic equals PyTorch's CPU upsample_bicubic2d with align_corners=False
 * and no antialias: scale = in / out (float), source coordinate
 * (dst + 0.5) * scale - 0.5, the cubic convolution kernel with A = -0.75
 * over the 4 neighbours floor(src) - 1 .. floor(src) + 2, indices clamped
 * to the border, rows interpolated first, then the column (weights with
 * fused multiply-adds as PyTorch's x86 build computes them). Works for
 * up- and downscaling (downscaling without antialias aliases, as PyTorch).
 * CenterCrop as torchvision: top = round_half_even((H - size) / 2). */
#ifndef SPO_IMAGE_H
#define SPO_IMAGE_H

#include "core/err.h"

#define SPO_CLIP_SIZE 224

extern const float spo_clip_mean[3], spo_clip_std[3];

/* The size the SPO preprocessing resizes an h x w image to (short side = size). */
void spo_clip_resize_size(int h, int w, int size, int *oh, int *ow);

/* in [n,c,h,w] -> out [n,c,oh,ow], bicubic as above. */
int spo_resize_bicubic(const float *in, int n, int c, int h, int w, int oh, int ow, float *out);

/* The window [top, top + ch) x [left, left + cw) of the oh x ow bicubic
 * resize of in, without computing the rest: out [n,c,ch,cw]. */
int spo_resize_bicubic_window(const float *in, int n, int c, int h, int w, int oh, int ow, int top, int left,
                              int ch, int cw, float *out);

/* Top-left corner of torchvision's CenterCrop(size) of an h x w image. */
void spo_center_crop_origin(int h, int w, int ch, int cw, int *top, int *left);

/* The whole SPM preprocessing: img [n,3,h,w] in [-1,1] -> out [n,3,size,size]. */
int spo_clip_preprocess(const float *img, int n, int h, int w, int size, float *out);

#endif
