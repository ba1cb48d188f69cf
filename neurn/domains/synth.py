"""Offline generators for MNIST-M (digits over photo patches) and SYN (font-rendered digits).

Both work in chunks seeded by (domain, split, chunk index), so the first N images of a split can
be produced, and cached, without generating the rest.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from neurn.errors import DomainUnavailable

# Photos shipped inside installed packages (no pooch/network); checked to open offline.
PHOTOS = [
    ("skimage.data", "astronaut.png"),
    ("skimage.data", "chelsea.png"),
    ("skimage.data", "coffee.png"),
    ("skimage.data", "rocket.jpg"),
    ("skimage.data", "motorcycle_left.png"),
    ("skimage.data", "motorcycle_right.png"),
    ("skimage.data", "ihc.png"),
    ("sklearn.datasets.images", "china.jpg"),
    ("sklearn.datasets.images", "flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
]


def _photo_path(package: str, name: str) -> Path:
    """Filesystem path of a photo bundled in an installed package."""
    return Path(str(files(package).joinpath(name)))


@lru_cache(maxsize=1)
def background_photos() -> tuple[np.ndarray, ...]:
    """The natural photos MNIST-M backgrounds are cropped from, as uint8 (H, W, 3) arrays."""
    photos = []
    for package, name in PHOTOS:
        path = _photo_path(package, name)
        if not path.is_file():
            raise DomainUnavailable(
                f"MNIST-M background photo {path} is missing; reinstall the package that ships it "
                f"(pip install --force-reinstall {package.split('.')[0].replace('sklearn', 'scikit-learn').replace('skimage', 'scikit-image')})"
            )
        with Image.open(path) as im:
            photos.append(np.asarray(im.convert("RGB")))
    return tuple(photos)


def photos_fingerprint() -> str:
    """Short hash of the background photos, part of the MNIST-M cache key."""
    h = hashlib.sha256()
    for p in background_photos():
        h.update(str(p.shape).encode())
        h.update(p[::7, ::7].tobytes())
    return h.hexdigest()[:12]


def mnistm_chunk(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST-M recipe (Ganin & Lempitsky 2015): |photo patch − 255·binarized digit|, uint8 (n, h, w, 3)."""
    n, h, w = digits.shape
    photos = background_photos()
    which = rng.integers(0, len(photos), size=n)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    ink = (digits > 0.5)[..., None].astype(np.int16) * 255
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    for p, photo in enumerate(photos):
        idx = np.flatnonzero(which == p)
        if idx.size == 0:
            continue
        top = rng.integers(0, photo.shape[0] - h + 1, size=idx.size)[:, None, None]
        left = rng.integers(0, photo.shape[1] - w + 1, size=idx.size)[:, None, None]
        patch = photo[top + rows, left + cols].astype(np.int16)  # (k, h, w, 3) gathered in one go
        out[idx] = np.abs(patch - ink[idx]).astype(np.uint8)
    return out


# --- SYN digits ------------------------------------------------------------------------------

_CANVAS = 64  # render at 2x then downsample, so strokes are anti-aliased like real crops


def _candidate_fonts() -> list[Path]:
    """Every TrueType/OpenType font matplotlib bundles or finds on the system."""
    import matplotlib
    from matplotlib import font_manager

    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = set(bundled.glob("*.ttf")) | {Path(p) for p in font_manager.findSystemFonts(fontext="ttf")}
    return sorted(found, key=lambda p: (p.name, str(p)))


def _glyph_vectors(font: ImageFont.FreeTypeFont, chars: str) -> np.ndarray | None:
    """Each char rendered, cropped to its ink and resized to 16x16, as unit vectors; None if any is blank."""
    vecs = []
    for ch in chars:
        im = Image.new("L", (96, 96))
        ImageDraw.Draw(im).text((16, 8), ch, font=font, fill=255)
        box = im.getbbox()
        if box is None:
            return None
        v = np.asarray(im.crop(box).resize((16, 16), Image.BILINEAR), dtype=np.float64).ravel()
        v -= v.mean()
        norm = np.linalg.norm(v)
        if norm == 0:
            return None
        vecs.append(v / norm)
    return np.stack(vecs)


@lru_cache(maxsize=1)
def digit_fonts() -> tuple[Path, ...]:
    """Fonts that really draw 0-9 (checked against DejaVu Sans), deduplicated by face name."""
    import matplotlib

    ref_path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    ref = _glyph_vectors(ImageFont.truetype(str(ref_path), 48), "0123456789")
    keep, seen = [], set()
    for path in _candidate_fonts():
        try:
            font = ImageFont.truetype(str(path), 48)
            name = font.getname()
        except OSError:
            continue
        if name in seen:  # the same face installed twice (bundled + system)
            continue
        vecs = _glyph_vectors(font, "0123456789")
        if vecs is None:
            continue
        # Symbol fonts map '0'-'9' to other shapes: require the digits to look like DejaVu's digits
        # (9 of 10, since a cropped italic "1" resembles an upright "7") and to differ from each other.
        recognised = (np.argmax(vecs @ ref.T, axis=1) == np.arange(10)).sum()
        self_sim = vecs @ vecs.T - np.eye(10)
        if recognised >= 9 and self_sim.max() < 0.95:
            keep.append(path)
            seen.add(name)
    if not keep:
        raise DomainUnavailable("no font that draws the digits 0-9 was found; reinstall matplotlib (it bundles DejaVu)")
    return tuple(keep)


def fonts_fingerprint() -> str:
    """Short hash of the usable font faces, part of the SYN cache key."""
    faces = [(p.name, p.stat().st_size) for p in digit_fonts()]
    return hashlib.sha256(json.dumps(faces).encode()).hexdigest()[:12]


@lru_cache(maxsize=512)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """Cached font object (loading a face is the slowest step otherwise)."""
    return ImageFont.truetype(str(path), size)


def _syn_mask(text: str, centre: int, font: ImageFont.FreeTypeFont, dx: float, dy: float,
              angle: float, blur: float, out_size: int) -> np.ndarray:
    """Grey ink mask (out_size²) of ``text`` with character ``centre`` centred, rotated and blurred."""
    im = Image.new("L", (_CANVAS, _CANVAS))
    left, top, right, bottom = font.getbbox(text[centre])
    x = _CANVAS / 2 + dx - font.getlength(text[:centre]) - (left + right) / 2
    y = _CANVAS / 2 + dy - (top + bottom) / 2
    ImageDraw.Draw(im).text((x, y), text, font=font, fill=255)
    im = im.rotate(angle, resample=Image.BILINEAR).resize((out_size, out_size), Image.LANCZOS)
    if blur > 0:
        im = im.filter(ImageFilter.GaussianBlur(float(blur)))
    return np.asarray(im, dtype=np.float32) / 255.0


def _contrasting_colours(rng: np.random.Generator, n: int, min_gap: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Background and stroke RGB colours in [0,1] whose luminances differ by at least min_gap."""
    lum = np.array([0.299, 0.587, 0.114])
    bg, fg = rng.random((n, 3)), rng.random((n, 3))
    bad = np.abs((bg - fg) @ lum) < min_gap
    while bad.any():  # resample only the failures; converges in a few rounds
        bg[bad], fg[bad] = rng.random((bad.sum(), 3)), rng.random((bad.sum(), 3))
        bad = np.abs((bg - fg) @ lum) < min_gap
    return bg, fg


def syn_chunk(rng: np.random.Generator, n: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic house-number style digits: uint8 (n, size, size, 3) images and int64 labels."""
    fonts = digit_fonts()
    labels = rng.integers(0, 10, size=n)
    n_digits = rng.choice([1, 2, 3], size=n, p=[0.3, 0.35, 0.35])
    neighbours = rng.integers(0, 10, size=(n, 2))
    left_side = rng.random(n) < 0.5
    font_idx = rng.integers(0, len(fonts), size=n)
    font_size = rng.integers(36, 58, size=n)
    shift = rng.normal(0, 2.0, size=(n, 2))
    angle = rng.uniform(-15, 15, size=n)
    blur = rng.choice([0.0, 0.4, 0.7, 1.0], size=n)
    masks = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        d, a, b = str(labels[i]), str(neighbours[i, 0]), str(neighbours[i, 1])
        if n_digits[i] == 1:
            text, centre = d, 0
        elif n_digits[i] == 2:
            text, centre = (a + d, 1) if left_side[i] else (d + b, 0)
        else:
            text, centre = a + d + b, 1
        font = _font(fonts[font_idx[i]], int(font_size[i]))
        masks[i] = _syn_mask(text, centre, font, shift[i, 0], shift[i, 1], angle[i], blur[i], size)
    bg, fg = _contrasting_colours(rng, n)
    # A soft left-right shading gradient and sensor noise, as in real street-number crops.
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)[None, None, :, None]
    shade = rng.uniform(-0.15, 0.15, size=(n, 1, 1, 1)).astype(np.float32) * ramp
    m = masks[..., None]
    img = bg[:, None, None, :] * (1 - m) + fg[:, None, None, :] * m + shade
    img += rng.normal(0, 0.02, size=img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), labels.astype(np.int64)
