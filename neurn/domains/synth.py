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


# The SYN fonts come only from these pinned PyPI packages (fontpkg's unmodified Google Fonts
# releases, each with its LICENSE), never from the system or matplotlib, so every machine that
# installs the pins draws the same faces. Keep in sync with setup.cfg's install_requires.
FONT_PACKAGES: dict[str, str] = {
    # serif
    "fontpkg-pt-serif": "1.0",
    "fontpkg-libre-baskerville": "2.5",
    "fontpkg-roboto-slab": "2.2",
    # sans
    "fontpkg-pt-sans": "2.3",
    "fontpkg-roboto": "3.15",
    # condensed
    "fontpkg-pt-sans-narrow": "2.003",
    "fontpkg-oswald": "4.103",
    "fontpkg-bebas-neue": "2.0",
    "fontpkg-anton": "2.116",
    # monospace
    "fontpkg-space-mono": "1.003",
    "fontpkg-roboto-mono": "3.1",
    # heavy display
    "fontpkg-archivo-black": "1.6",
    "fontpkg-alfa-slab-one": "2.0",
    # handwriting / script
    "fontpkg-kalam": "2.001",
    "fontpkg-dancing-script": "2.1",
    "fontpkg-satisfy": "1.001",
    "fontpkg-pacifico": "3.001",
}
# Every face's digits are matched against these faces' digits (sans, serif, condensed, two hands),
# which tells real text fonts from symbol fonts that map '0'-'9' to other shapes.
REFERENCE_FONTS = (
    ("fontpkg-pt-sans", "PT_Sans-Web-Regular.ttf"),
    ("fontpkg-pt-serif", "PT_Serif-Web-Regular.ttf"),
    ("fontpkg-oswald", "Oswald[wght].ttf"),
    ("fontpkg-kalam", "Kalam-Regular.ttf"),
    ("fontpkg-dancing-script", "DancingScript[wght].ttf"),
)
# Pillow's basic layout (no libraqm, which depends on the machine) keeps rendering identical everywhere.
_LAYOUT = ImageFont.Layout.BASIC


def font_package_dir(package: str) -> Path:
    """Folder holding the font files of an installed font package (``fontpkg-x`` -> ``fontpkg_x/files``)."""
    module = package.replace("-", "_")
    try:
        folder = Path(str(files(module).joinpath("files")))
    except ModuleNotFoundError:
        folder = None
    if folder is None or not folder.is_dir():
        raise DomainUnavailable(
            f"SYN font package {package} is not installed; install the pinned fonts with: "
            f"pip install {package}=={FONT_PACKAGES.get(package, '?')}  (or reinstall archsim-neurn)"
        )
    return folder


def _candidate_fonts() -> list[Path]:
    """Every .ttf/.otf file of the pinned font packages, in a fixed (package, file name) order."""
    found = []
    for package in sorted(FONT_PACKAGES):
        folder = font_package_dir(package)
        found += sorted((p for p in folder.iterdir() if p.suffix.lower() in {".ttf", ".otf"}), key=lambda p: p.name)
    return found


def _load_font(path: Path | str, size: int) -> ImageFont.FreeTypeFont:
    """A face at a pixel size, with the machine-independent basic layout."""
    return ImageFont.truetype(str(path), size, layout_engine=_LAYOUT)


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
def _reference_digits() -> np.ndarray:
    """Glyph vectors of 0-9 in every reference face, (10 * len(REFERENCE_FONTS), 256); row i is digit i % 10."""
    return np.concatenate([
        _glyph_vectors(_load_font(font_package_dir(package) / name, 48), "0123456789")
        for package, name in REFERENCE_FONTS
    ])


def draws_digits(path: Path | str) -> bool:
    """Whether the font file really draws 0-9: at least 7 digits look most like that digit in a reference
    face (symbol fonts score 0-2) and no two of its digits are near-identical. False if it cannot load."""
    try:
        vecs = _glyph_vectors(_load_font(path, 48), "0123456789")
    except OSError:
        return False
    if vecs is None:
        return False
    recognised = (np.argmax(vecs @ _reference_digits().T, axis=1) % 10 == np.arange(10)).sum()
    self_sim = vecs @ vecs.T - np.eye(10)
    return bool(recognised >= 7 and self_sim.max() < 0.95)


@lru_cache(maxsize=1)
def digit_fonts() -> tuple[Path, ...]:
    """The pinned packages' fonts that pass :func:`draws_digits`, deduplicated by face name.

    Returns:
        The font files in a fixed order (sorted by package, then file name), so that a seeded
        generator picks the same face on every machine.
    """
    keep, seen = [], set()
    for path in _candidate_fonts():
        try:
            face = _load_font(path, 48).getname()
        except OSError:
            continue
        if face not in seen and draws_digits(path):  # the same face shipped twice is kept once
            keep.append(path)
            seen.add(face)
    if not keep:
        raise DomainUnavailable("no pinned SYN font draws the digits 0-9; reinstall archsim-neurn's font packages")
    return tuple(keep)


def font_package_versions() -> dict[str, str | None]:
    """Installed version of each SYN font package (None when missing)."""
    from archsim._io import installed_version

    return {package: installed_version(package) for package in sorted(FONT_PACKAGES)}


def fonts_fingerprint() -> str:
    """Short hash of the usable font faces and their packages' versions, part of the SYN cache key."""
    faces = [(p.parent.parent.name, p.name, p.stat().st_size) for p in digit_fonts()]
    blob = json.dumps({"faces": faces, "versions": font_package_versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@lru_cache(maxsize=512)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """Cached font object (loading a face is the slowest step otherwise)."""
    return _load_font(path, size)


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
