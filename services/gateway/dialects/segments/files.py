"""Files the SDK downloads without an API key: images and release files, through this listener.

They are Loupe's own presigned S3 URLs, wrapped in a path of this listener that ends with a file
extension: `SegmentsDataset` names its cached copy of an image after the extension of the URL's path,
and a presigned URL's path is a content hash without one. The wrapped URL is its own credential (S3
checks its signature when it is followed); the listener only unwraps it, and only towards Loupe's own S3
endpoint, so it cannot be made to redirect anywhere else.

A release file is passed through rather than redirected to, with each image URL in it wrapped the
same way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import io
import json
import os
import time
import zipfile
from typing import Any

import msgspec
from aiohttp import web

from proto import subjects
from proto.annotation import Label, LabelRef
from proto.samples import SampleRef
from services.gateway.dialects.segments import policy
from services.gateway.dialects.segments.labels import render_bitmap
from services.gateway.uploads import HTTP_CLIENT
from shared.callers import service_caller
from shared.errors import LoupeError
from shared.service import RUNTIME

PREFIX = "/files/"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
PUBLIC_URL = web.AppKey("segments_public_url", str)
BITMAP_EXPIRES_S = 3600


def _token(url: str) -> str:
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _s3_origin(request: web.Request) -> str:
    settings = request.config_dict[RUNTIME].settings
    return f"{'https' if settings.s3_secure else 'http'}://{settings.s3_public_endpoint or settings.s3_endpoint}/"


def unwrapped(request: web.Request, token: str) -> str:
    token = os.path.splitext(token)[0]
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        url = ""
    if not url.startswith(_s3_origin(request)):
        raise LoupeError("not_found", "no such file: the link is not one Loupe gave out")
    return url


def image_suffix(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".png"


def image_link(request: web.Request, presigned: str | None, name: str) -> str | None:
    """The image's presigned URL, wrapped so its path ends like an image file; external URLs as they are."""
    if presigned is None or not presigned.startswith(_s3_origin(request)):
        return presigned
    return f"{request.app[PUBLIC_URL]}{PREFIX}images/{_token(presigned)}{image_suffix(name)}"


def release_link(request: web.Request, presigned: str) -> str:
    return f"{request.app[PUBLIC_URL]}{PREFIX}releases/{_token(presigned)}/release.json"


async def get_image(request: web.Request) -> web.Response:
    raise web.HTTPFound(unwrapped(request, request.match_info["token"]))


async def fetched(request: web.Request, url: str) -> bytes:
    async with request.config_dict[HTTP_CLIENT].get(url) as response:
        if response.status != 200:
            raise LoupeError("not_found", f"the file is gone or its link expired ({response.status})")
        return await response.read()


async def get_release_file(request: web.Request) -> web.Response:
    """The release file with its image URLs wrapped, and in a segmentation-bitmap dataset's release (a zip of
    release.json and bitmaps/) its bitmaps linked to the zip's members. Read whole: the SDK reads it whole."""
    token = request.match_info["token"]
    release: dict[str, Any] = json.loads(await _release_member(request, token, "release.json"))
    for sample in release.get("dataset", {}).get("samples", []):
        image = sample.get("attributes", {}).get("image", {})
        image["url"] = image_link(request, image.get("url"), sample.get("name", ""))
        for label in (sample.get("labels") or {}).values():
            bitmap = (label or {}).get("attributes", {}).get("segmentation_bitmap") or {}
            if isinstance(bitmap.get("url"), str) and bitmap["url"].startswith("bitmaps/"):
                bitmap["url"] = f"{request.app[PUBLIC_URL]}{PREFIX}releases/{token}/{bitmap['url']}"
    return web.json_response(release)


async def get_release_bitmap(request: web.Request) -> web.Response:
    """One bitmap of a segmentation-bitmap release, out of its zip (fetched again for each)."""
    member = f"bitmaps/{request.match_info['labelset']}/{request.match_info['name']}"
    return web.Response(
        body=await _release_member(request, request.match_info["token"], member), content_type="image/png"
    )


async def _release_member(request: web.Request, token: str, member: str) -> bytes:
    data = await fetched(request, unwrapped(request, token))
    if not data.startswith(b"PK"):
        if member != "release.json":
            raise LoupeError("not_found", f"this release has no {member}")
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            return archive.read(member)
        except KeyError:
            raise LoupeError("not_found", f"this release has no {member}") from None


# -- segmentation bitmaps, drawn when fetched -----------------------------------------------------------


class BitmapRef(msgspec.Struct, frozen=True, array_like=True):
    org_id: str
    project_id: str
    sample_id: str
    labelset: str
    expires: int


def bitmap_link(request: web.Request, org_id: str, label: Label) -> str:
    """A link that draws the label's instance bitmap for an hour, signed like the asset policies."""
    ref = BitmapRef(org_id, label.project_id, label.sample_id, label.labelset, int(time.time()) + BITMAP_EXPIRES_S)
    payload = _token(msgspec.json.encode(ref).decode())
    signature = policy.sign(request.config_dict[RUNTIME].settings.secrets_key, payload)
    return f"{request.app[PUBLIC_URL]}{PREFIX}bitmaps/{payload}.{signature}.png"


async def get_bitmap(request: web.Request) -> web.Response:
    """The label drawn as it is now, read as the organisation's own service (the link is the credential)."""
    rt = request.config_dict[RUNTIME]
    payload, _, signature = os.path.splitext(request.match_info["token"])[0].partition(".")
    if not hmac.compare_digest(policy.sign(rt.settings.secrets_key, payload), signature):
        raise LoupeError("not_found", "no such bitmap: the link is not one Loupe gave out")
    ref = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)), type=BitmapRef)
    if ref.expires < time.time():
        raise LoupeError("not_found", "the bitmap link expired; read the label again for a new one")
    caller = service_caller("gateway", ref.org_id)
    label_ref = LabelRef(project_id=ref.project_id, sample_id=ref.sample_id, labelset=ref.labelset)
    label, sample = await asyncio.gather(
        rt.nats.request(subjects.GET_LABEL, label_ref, caller=caller),
        rt.nats.request(
            subjects.GET_SAMPLE, SampleRef(project_id=ref.project_id, sample_id=ref.sample_id), caller=caller
        ),
    )
    png = await asyncio.to_thread(render_bitmap, label, sample.height, sample.width)
    return web.Response(body=png, content_type="image/png")
