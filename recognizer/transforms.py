"""Frame-group augmentation with GluonCV's semantics, kept in uint8.

GluonCV's VideoGroupTrainTransform crops, resizes, flips, then converts every
frame to float64 and normalises on the host. We draw the same random choices
(crop size from ``scale_ratios`` x short side, one of GluonCV's fixed-corner
offsets, flip with probability 0.5; one draw per clip so every frame gets the
same crop and flip) but return uint8 pixels: batches travel to the device at a
quarter of the size and are normalised there (``normalize_on_device``).
"""
import cv2
import numpy as np

MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)


def crop_sizes(image_h, image_w, scale_ratios, max_distort=1):
    """Candidate (crop_h, crop_w) pairs, as GluonCV's ``fillCropSize``."""
    base = min(image_h, image_w)
    sizes = []
    for i, ratio_h in enumerate(scale_ratios):
        for j, ratio_w in enumerate(scale_ratios):
            if abs(i - j) <= max_distort:
                sizes.append((int(base * ratio_h), int(base * ratio_w)))
    return sizes


def fixed_offsets(image_h, image_w, crop_h, crop_w, more_fix_crop=True):
    """Candidate (y, x) corners, as GluonCV's ``fillFixOffset``: a 4x4 grid of quarter steps."""
    h_q = (image_h - crop_h) // 4
    w_q = (image_w - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
    if more_fix_crop:
        grid += [(0, 2), (4, 2), (2, 0), (2, 4), (1, 1), (1, 3), (3, 1), (3, 3)]
    return [(gy * h_q, gx * w_q) for gy, gx in grid]


def draw_train_crop(image_h, image_w, rng, scale_ratios, max_distort=1,
                    fix_crop=True, more_fix_crop=True, flip_prob=0.5):
    """One random multi-scale crop for a whole clip: (y, x, crop_h, crop_w, flip)."""
    sizes = crop_sizes(image_h, image_w, scale_ratios, max_distort)
    crop_h, crop_w = sizes[rng.integers(len(sizes))]
    flip = bool(rng.random() < flip_prob)
    if fix_crop:
        offsets = fixed_offsets(image_h, image_w, crop_h, crop_w, more_fix_crop)
        y, x = offsets[rng.integers(len(offsets))]
    else:
        y = int(rng.integers(image_h - crop_h + 1))
        x = int(rng.integers(image_w - crop_w + 1))
    return y, x, crop_h, crop_w, flip


def crop_resize_flip(frames, y, x, crop_h, crop_w, out_h, out_w, flip):
    """Apply one crop/resize/flip to every frame; returns uint8 (N, out_h, out_w, 3).

    Writes straight into the output (no per-frame temporaries); pixels equal GluonCV's
    crop -> cv2.resize (INTER_LINEAR, its default) -> np.flip.
    """
    out = np.empty((len(frames), out_h, out_w, 3), dtype=np.uint8)
    resize = crop_h != out_h or crop_w != out_w
    scratch = np.empty((out_h, out_w, 3), dtype=np.uint8) if resize and flip else None
    for k, frame in enumerate(frames):
        patch = frame[y:y + crop_h, x:x + crop_w]
        if resize:
            target = scratch if flip else out[k]
            cv2.resize(patch, (out_w, out_h), dst=target)
            patch = target
        if flip:
            cv2.flip(patch, 1, dst=out[k])
        elif not resize:
            out[k] = patch
    return out


def center_crop(frames, size):
    """GluonCV's VideoGroupValTransform crop (no resize); uint8 (N, size, size, 3)."""
    h, w = frames[0].shape[:2]
    y = int(round((h - size) / 2.))
    x = int(round((w - size) / 2.))
    return np.stack([f[y:y + size, x:x + size] for f in frames])


def train_transform(frames, rng, size, scale_ratios, max_distort=1, more_fix_crop=True):
    """The training augmentation for one clip (list of HxWx3 RGB uint8 frames)."""
    h, w = frames[0].shape[:2]
    y, x, ch, cw, flip = draw_train_crop(h, w, rng, scale_ratios, max_distort,
                                         more_fix_crop=more_fix_crop)
    return crop_resize_flip(frames, y, x, ch, cw, size, size, flip)


def normalize_on_device(batch, dtype='float32'):
    """uint8 NDArray (..., H, W, 3) -> normalised float (..., 3, H, W) on batch's context.

    Same arithmetic as GluonCV's host-side ToTensor + Normalize, in float32.
    """
    from mxnet import nd
    axes = tuple(range(batch.ndim - 3)) + (batch.ndim - 1, batch.ndim - 3, batch.ndim - 2)
    x = nd.transpose(batch.astype('float32'), axes=axes) / 255.0
    shape = (1,) * (batch.ndim - 3) + (3, 1, 1)
    mean = nd.array(MEAN_RGB, ctx=batch.context).reshape(shape)
    std = nd.array(STD_RGB, ctx=batch.context).reshape(shape)
    x = nd.broadcast_div(nd.broadcast_sub(x, mean), std)
    return x if dtype == 'float32' else x.astype(dtype)


def network_input(clips, new_length=1, input_5d=False, dtype='float32'):
    """uint8 NDArray (..., S*L, H, W, 3) -> normalised network input on the same device.

    2-D networks get (N*S, 3, H, W); clips of several frames (or --input-5d) give 3-D networks
    their (N*S, 3, L, H, W).
    """
    x = normalize_on_device(clips.reshape((-1, new_length) + clips.shape[-3:]), dtype)   # (N, L, 3, H, W)
    if new_length == 1 and not input_5d:
        return x.reshape((-1,) + x.shape[2:])
    return x.transpose((0, 2, 1, 3, 4))
