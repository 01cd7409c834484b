import hashlib
import io
import struct
import time
import warnings
import zlib

import pytest
from PIL import Image, ImageFile, JpegImagePlugin

from services.ingest.media import ImageLimits, MediaError, process_image
from shared.image_formats import sniff_format
from shared import thumbnails


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def photo(size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Noise over a gradient: enough entropy that JPEG scans are long and truncation lands in pixel data."""
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    return Image.blend(gradient, Image.effect_noise(size, 40).convert("RGB"), 0.5)


def halves(size: tuple[int, int], left: str, right: str) -> Image.Image:
    img = Image.new("RGB", size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return img


def rgb(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = img.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """A valid 30000×30000 1-bit PNG: 900 megapixels, about 110 KB on disk."""
    row = bytes(1 + 30000 // 8)  # filter byte + 3750 bytes of black
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(30)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def error_code(data: bytes, limits: ImageLimits = ImageLimits()) -> str:
    with pytest.raises(MediaError) as caught:
        process_image(data, limits)
    assert caught.value.message
    return caught.value.code


@pytest.mark.parametrize(("fmt", "mime"), [
    ("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("TIFF", "image/tiff"),
    ("BMP", "image/bmp"), ("GIF", "image/gif"),
])
def test_each_format_decodes_with_its_size_and_a_thumbnail(fmt: str, mime: str) -> None:
    data = encode(photo((1000, 300)), fmt)
    result = process_image(data)
    assert (result.format, result.mime, result.width, result.height) == (fmt.lower(), mime, 1000, 300)
    assert (result.size, result.orientation) == (len(data), 1)
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert (thumb.format, thumb.mode, thumb.size) == ("JPEG", "RGB", (256, 77))


def test_format_comes_from_magic_bytes_only() -> None:
    assert sniff_format(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_format(b"RIFF\x10\x00\x00\x00WAVEfmt ") is None
    assert sniff_format(b"MM\x00*\x00\x00\x00\x08") == "tiff"
    assert sniff_format(b"") is None
    assert error_code(b"just some notes, saved as photo.jpg\n") == "unsupported_format"


def test_small_images_are_not_upscaled() -> None:
    thumb = Image.open(io.BytesIO(process_image(encode(photo((40, 30)), "PNG")).thumbnail))
    assert thumb.size == (40, 30)


@pytest.mark.parametrize("size", [(512, 256), (1024, 512)])
def test_exif_orientation_6_swaps_sides_and_turns_the_thumbnail(size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display is the stored image turned 90° clockwise
    result = process_image(encode(halves(size, "red", "blue"), "JPEG", exif=exif.tobytes()))
    assert (result.orientation, result.width, result.height) == (6, size[1], size[0])
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert thumb.width / thumb.height == pytest.approx(size[1] / size[0], abs=0.02)
    top, bottom = rgb(thumb, (thumb.width // 2, 2)), rgb(thumb, (thumb.width // 2, thumb.height - 3))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the stored left (red) is now on top


@pytest.mark.parametrize("size", [(64, 64), (256, 100), (100, 256)])
def test_a_small_jpeg_is_its_own_thumbnail_but_still_fully_decoded(size: tuple[int, int]) -> None:
    data = encode(photo(size), "JPEG")
    result = process_image(data)
    assert (result.width, result.height, result.thumbnail) == (*size, None)
    assert error_code(data[: len(data) * 2 // 3]) == "corrupt"


@pytest.mark.parametrize(("size", "fmt"), [((257, 64), "JPEG"), ((64, 64), "PNG")])
def test_larger_jpegs_and_other_formats_get_a_thumbnail(size: tuple[int, int], fmt: str) -> None:
    thumb = Image.open(io.BytesIO(process_image(encode(photo(size), fmt)).thumbnail or b""))
    assert (thumb.format, max(thumb.size)) == ("JPEG", min(256, max(size)))


@pytest.mark.parametrize(("size", "fmt"), [((64, 48), "JPEG"), ((256, 256), "JPEG"), ((300, 64), "JPEG"),
                                           ((64, 48), "PNG"), ((64, 48), "WEBP"), ((64, 48), "GIF")])
def test_the_catalog_serves_the_original_exactly_where_ingest_made_no_thumbnail(size: tuple[int, int], fmt: str) -> None:
    result = process_image(encode(photo(size), fmt))
    bucket, key = thumbnails.location(result.sha256, result.format, result.width, result.height)
    assert key == result.sha256 and bucket == ("media" if result.thumbnail is None else "thumbs")


def test_invalid_orientation_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 9
    result = process_image(encode(photo((64, 32)), "JPEG", exif=exif.tobytes()))
    assert (result.orientation, result.width, result.height) == (1, 64, 32)


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg_is_corrupt_on_the_draft_path(progressive: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    reductions = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(img: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        changed = draft(img, mode, size)
        reductions.append(changed is not None)
        return changed

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = encode(photo((1024, 768)), "JPEG", quality=90, progressive=progressive)
    assert process_image(data).width == 1024 and reductions == [True]
    for cut in (len(data) // 2, len(data) - 200, len(data) - 1):
        assert error_code(data[:cut]) == "corrupt"
    assert all(reductions)


def test_truncated_png_is_corrupt() -> None:
    data = encode(photo(), "PNG")
    for cut in (len(data) // 2, len(data) - 20, len(data) - 1):
        assert error_code(data[:cut]) == "corrupt"


def test_truncation_is_caught_even_if_someone_loosened_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encode(photo(), "JPEG")
    assert error_code(data[: len(data) // 2]) == "corrupt"


def test_garbage_behind_good_magic_is_corrupt() -> None:
    assert error_code(b"BM" + bytes(range(256)) * 4) == "corrupt"
    assert error_code(b"\xff\xd8\xff\xe0" + b"\x00" * 500) == "corrupt"


def test_empty_and_oversized_files_are_refused() -> None:
    assert error_code(b"") == "empty"
    assert error_code(encode(photo(), "PNG"), ImageLimits(max_bytes=1000)) == "too_large"


def test_png_bomb_is_refused_from_its_header(png_bomb: bytes) -> None:
    started = time.perf_counter()
    assert error_code(png_bomb) == "image_too_large"
    assert time.perf_counter() - started < 0.5


def test_side_and_pixel_limits(recwarn: pytest.WarningsRecorder) -> None:
    assert error_code(encode(Image.new("1", (20_001, 1)), "PNG")) == "image_too_large"
    square = encode(Image.new("L", (100, 100)), "PNG")
    assert error_code(square, ImageLimits(max_side=99)) == "image_too_large"
    # Between max_pixels and twice it Pillow only warns: the warning must become the error, not leak.
    assert error_code(square, ImageLimits(max_pixels=8000)) == "image_too_large"
    assert error_code(square, ImageLimits(max_pixels=1000)) == "image_too_large"
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    assert process_image(square, ImageLimits(max_pixels=10_000, max_side=100)).width == 100


def test_sha256_is_of_the_original_bytes() -> None:
    data = encode(photo(), "JPEG")
    first, again = process_image(data), process_image(bytes(data))
    assert first.sha256 == again.sha256 == hashlib.sha256(data).hexdigest()
    assert process_image(encode(photo(), "JPEG")).sha256 != first.sha256


def test_alpha_is_flattened_on_white() -> None:
    img = Image.new("RGBA", (300, 200), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (150, 0, 300, 200))
    thumb = Image.open(io.BytesIO(process_image(encode(img, "PNG")).thumbnail))
    assert thumb.mode == "RGB"
    assert min(rgb(thumb, (10, 10))) > 240  # transparent red → white
    assert rgb(thumb, (thumb.width - 10, 10))[2] > 200


def test_transparent_palette_gif_is_flattened_on_white() -> None:
    img = Image.new("P", (64, 64), 0)
    img.putpalette([0, 0, 0, 0, 255, 0])
    img.paste(1, (32, 0, 64, 64))
    thumb = Image.open(io.BytesIO(process_image(encode(img, "GIF", transparency=0)).thumbnail))
    assert thumb.mode == "RGB" and min(rgb(thumb, (5, 5))) > 240 and rgb(thumb, (60, 5))[1] > 200


def test_sixteen_bit_grey_is_stretched_not_clipped() -> None:
    img = Image.linear_gradient("L").resize((256, 64)).convert("I").point(lambda v: v * 200 + 1000)  # all > 255
    thumb = Image.open(io.BytesIO(process_image(encode(img.convert("I;16"), "PNG")).thumbnail))
    assert max(rgb(thumb, (10, 0))) < 10 and min(rgb(thumb, (10, thumb.height - 1))) > 245  # the gradient is vertical


def test_no_warnings_escape(recwarn: pytest.WarningsRecorder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        process_image(encode(photo(), "WEBP"))
    assert not recwarn
