"""Content checks of uploaded materials, without a database."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from records.errors import ValidationError
from records.materials import inspect_content


def image_bytes(fmt: str, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, content_type, suffix",
                         [("PNG", "image/png", ".png"), ("JPEG", "image/jpeg", ".jpg"),
                          ("WEBP", "image/webp", ".webp")])
def test_real_images_pass_with_their_pixel_size(fmt, content_type, suffix):
    check = inspect_content(image_bytes(fmt), content_type)
    assert (check.suffix, check.width, check.height) == (suffix, 40, 30)


def test_pdf_passes_without_pixel_size():
    check = inspect_content(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "application/pdf")
    assert (check.suffix, check.width, check.height) == (".pdf", None, None)


@pytest.mark.parametrize("data, content_type, code", [
    (b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10, "image/png", "content_mismatch"),
    (image_bytes("JPEG"), "image/png", "content_mismatch"),
    (image_bytes("PNG")[:60], "image/png", "content_mismatch"),
    (b"<html>hi</html>", "application/pdf", "content_mismatch"),
    (image_bytes("PNG"), "image/gif", "content_type_not_allowed"),
    (image_bytes("PNG"), "text/html", "content_type_not_allowed"),
    (b"", "image/png", "empty_file"),
])
def test_bad_content_is_refused(data, content_type, code):
    with pytest.raises(ValidationError) as info:
        inspect_content(data, content_type)
    assert info.value.code == code


def test_size_limit():
    with pytest.raises(ValidationError) as info:
        inspect_content(image_bytes("PNG"), "image/png", max_bytes=10)
    assert info.value.code == "file_too_large"
