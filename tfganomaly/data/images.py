"""Image decoding and preprocessing with TensorFlow: the one definition of "what the model sees".

Any PNG, JPEG, BMP or GIF, of any size, with 1 to 4 channels and 8 or 16 bits, becomes a uint8
image of (isize, isize, nc). The TFLite export and the device script follow the recorded
spec (size, channels, resize method) so that cameras see exactly what training saw.
"""

from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np
import tensorflow as tf

from ..errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_PIXELS = 64_000_000  # about 8000 x 8000: larger headers are refused before decoding
_MAGIC = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpeg", b"BM": "bmp", b"GIF8": "gif"}


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """Model input contract: square size, channels and resize method."""

    isize: int
    nc: int
    resize: str = "bilinear"

    @classmethod
    def of(cls, config) -> "ImageSpec":
        return cls(config.isize, config.nc, config.resize)


def to_channels(image, nc: int):
    """HWC uint8 with 1-4 channels -> HWC with nc channels (alpha dropped, RGB<->grey)."""
    if image.shape[-1] is not None:  # arrays: the channel count is known while tracing
        image = image[..., :1] if image.shape[-1] == 2 else image[..., :3]
        if image.shape[-1] != nc:
            image = tf.image.rgb_to_grayscale(image) if nc == 1 else tf.tile(image, [1, 1, 3])
        return image
    channels = tf.shape(image)[-1]  # decoded files: known only at run time
    image = tf.cond(channels == 2, lambda: image[..., :1], lambda: image[..., :3])
    if nc == 1:
        image = tf.cond(tf.shape(image)[-1] == 3, lambda: tf.image.rgb_to_grayscale(image), lambda: image)
    else:
        image = tf.cond(tf.shape(image)[-1] == 1, lambda: tf.tile(image, [1, 1, 3]), lambda: image)
    return tf.ensure_shape(image, [None, None, nc])


def resize_to_spec(image, spec: ImageSpec):
    """HWC or NHWC uint8 -> uint8 at spec.isize; antialiased so downscaling matches Pillow."""
    resized = tf.image.resize(image, [spec.isize, spec.isize], method=spec.resize,
                              antialias=spec.resize != "nearest")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def prepare_array_image(image, spec: ImageSpec):
    """A decoded HWC uint8 image -> the model's input."""
    return resize_to_spec(to_channels(image, spec.nc), spec)


def decode_image_bytes(contents, spec: ImageSpec):
    """Encoded file bytes -> the model's input (graph-safe, used inside tf.data)."""
    image = tf.io.decode_image(contents, channels=0, dtype=tf.uint8, expand_animations=False)
    return prepare_array_image(image, spec)


def resize_images(images: np.ndarray, spec: ImageSpec, chunk: int = 4096) -> np.ndarray:
    """NHW or NHWC uint8 array -> uint8 (N, isize, isize, nc), in chunks to bound memory."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    out = [tf.map_fn(lambda im: prepare_array_image(im, spec), tf.convert_to_tensor(images[i:i + chunk]),
                     fn_output_signature=tf.TensorSpec([spec.isize, spec.isize, spec.nc], tf.uint8)).numpy()
           for i in range(0, len(images), chunk)]
    return np.concatenate(out) if out else np.zeros((0, spec.isize, spec.isize, spec.nc), np.uint8)


def image_header(path: str) -> tuple[str, int, int]:
    """(format, width, height) from the file header, without decoding: refuses non-images,
    empty files and decompression bombs cheaply."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror}") from None
    if size == 0:
        raise DataError(f"image file {path} is empty (0 bytes); remove it or pass --skip-bad-images")
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None:
        raise DataError(f"{path} is not a PNG, JPEG, BMP or GIF image; remove it or pass --skip-bad-images")
    width = height = 0
    if kind == "png" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
    elif kind == "bmp" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
    elif kind == "gif" and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
    elif kind == "jpeg":
        width, height = _jpeg_size(head)
    if kind != "jpeg" and (width == 0 or height == 0):
        raise DataError(f"image {path} has a truncated header; remove it or pass --skip-bad-images")
    if abs(width) * abs(height) > MAX_PIXELS:
        raise DataError(f"image {path} is {abs(width)}x{abs(height)} pixels, over the limit of "
                        f"{MAX_PIXELS:,}; downscale it before use")
    return kind, abs(width), abs(height)


def _jpeg_size(head: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return 0, 0
        marker = head[i + 1]
        length = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return width, height
        i += 2 + length
    return 0, 0


def load_image_file(path: str, spec: ImageSpec) -> np.ndarray:
    """One file -> the model's input, with an error that names the file."""
    image_header(path)
    try:
        return decode_image_bytes(tf.io.read_file(path), spec).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        reason = e.message.splitlines()[0] if e.message else "cannot be decoded"
        raise DataError(f"cannot decode image {path} ({reason}); remove it or pass --skip-bad-images") from None


def load_images(paths, spec: ImageSpec, skip_bad: bool = False):
    """Files -> (uint8 array, the paths kept, {path: error} for those skipped)."""
    images, kept, errors = [], [], {}
    for path in paths:
        try:
            images.append(load_image_file(path, spec))
            kept.append(path)
        except DataError as e:
            if not skip_bad:
                raise
            errors[path] = str(e)
    array = np.stack(images) if images else np.zeros((0, spec.isize, spec.isize, spec.nc), np.uint8)
    return array, kept, errors


def list_images(directory: str) -> list[str]:
    """Image files directly in a directory, sorted; symlink loops and sub-folders are not followed."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise DataError(f"cannot list {directory}: {e.strerror}") from None
    return [os.path.join(directory, n) for n in names
            if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, n))]
