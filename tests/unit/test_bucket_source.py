"""What a bucket import (and a label import's `images` source) may name: S3 bucket names and host[:port] endpoints,
checked as the request is read."""

import ipaddress
import random

import msgspec
import pytest

from proto.ingest import ImportBucket
from proto.releases import ImageSource

decoder = msgspec.json.Decoder(ImportBucket)


def read(**fields: object) -> ImportBucket:
    return decoder.decode(msgspec.json.encode({"bucket": "raw-frames", "endpoint": "s3.amazonaws.com", **fields}))


def refused_at(**fields: object) -> str:
    with pytest.raises(msgspec.ValidationError) as caught:
        read(**fields)
    return str(caught.value).rsplit("at `", 1)[1].rstrip("`")


@pytest.mark.parametrize("name", ["abc", "raw-frames", "my.bucket.2024", "0-9", "a" * 63, "1.2.3", "1.2.3.4.5"])
def test_valid_bucket_names(name: str) -> None:
    assert read(bucket=name).bucket == name


@pytest.mark.parametrize("name", [
    "ab", "a" * 64, "Raw-Frames", "raw_frames", "-raw", "raw-", ".raw", "raw.", "raw..frames", "raw.-frames",
    "raw-.frames", "192.168.1.1", "10.0.0.1", "raw frames", "raw/frames", "café", ""])
def test_invalid_bucket_names(name: str) -> None:
    assert refused_at(bucket=name) == "$.bucket"


@pytest.mark.parametrize("endpoint", [
    "s3.amazonaws.com", "S3.AmazonAWS.com", "minio", "minio:9000", "minio.example.com.:443", "localhost:1",
    "host-1.example.com:65535", "8.8.8.8", "127.0.0.1:8333", "255.255.255.255:80", "[::1]:8333", "[::]",
    "[2606:4700:4700::1111]:443", "[1:2:3:4:5:6:7:8]:9", "[fe80::]", "xn--bcher-kva.example"])
def test_valid_endpoints(endpoint: str) -> None:
    assert read(endpoint=endpoint).endpoint == endpoint


@pytest.mark.parametrize("endpoint", [
    "", "https://s3.amazonaws.com", "s3.amazonaws.com/bucket", "host:0", "host:65536", "host:080", "host:", ":80",
    "host:80:80", "256.1.1.1", "1.2.3", "127.1", "0x7f000001", "2130706433", "010.0.0.1", "-host.example.com",
    "host-.example.com", "a..b", ".host", "host..", "white space", "host_name", "[::1", "::1", "[::1]]", "[:::]",
    "[1:2:3:4:5:6:7:8:9]", "[1:2:3:4:5:6:7::8]", "[12345::]", "[fe80::1%eth0]", "[::ffff:127.0.0.1]", "[g::1]",
    "a" * 64 + ".com", "user@host", "host?x=1"])
def test_invalid_endpoints(endpoint: str) -> None:
    assert refused_at(endpoint=endpoint) == "$.endpoint"


def test_every_ipv6_endpoint_accepted_is_an_ipv6_address() -> None:
    """The pattern never lets through a bracketed host that is not an address, and takes the usual forms."""
    rng = random.Random(7)
    for _ in range(3000):
        groups = [rng.choice(["0", "0", "1", "ff", "abcd", "FFFF"]) for _ in range(8)]
        address = ipaddress.IPv6Address(":".join(groups))
        for text in (address.compressed, address.exploded):
            assert read(endpoint=f"[{text}]:443").endpoint
        noise = "".join(rng.choice("0123456789abcdef::") for _ in range(rng.randrange(1, 20)))
        try:
            read(endpoint=f"[{noise}]")
        except msgspec.ValidationError:
            continue
        ipaddress.IPv6Address(noise)  # accepted, so it must parse


def test_endpoint_and_keys_may_be_left_out_for_ingest_to_explain() -> None:
    """A missing endpoint is ingest's to refuse, with a hint; the request itself reads."""
    assert decoder.decode(b'{"bucket": "raw-frames"}').endpoint is None


@pytest.mark.parametrize("fields", [{"bucket": "Raw_Frames"}, {"endpoint": "127.1"}, {"endpoint": "https://s3"}])
def test_a_label_imports_images_source_follows_the_same_rules(fields: dict) -> None:
    [(name, value)] = fields.items()
    body = msgspec.json.encode({"bucket": "raw-frames", "endpoint": "s3.amazonaws.com", **fields})
    with pytest.raises(msgspec.ValidationError, match=rf"at `\$\.{name}`"):
        msgspec.json.decode(body, type=ImageSource)
    assert refused_at(**fields) == f"$.{name}"


def test_only_a_service_hands_ingest_sealed_keys_or_staged_files() -> None:
    """Neither is a field of a request body: an import body naming one is refused."""
    for field in ("credentials", "staged", "metadata"):
        with pytest.raises(msgspec.ValidationError, match=f"unknown field `{field}`"):
            msgspec.json.decode(msgspec.json.encode({"bucket": "raw-frames", field: "x"}), type=ImageSource)
    for field in ("credentials", "staged"):
        with pytest.raises(msgspec.ValidationError, match=f"unknown field `{field}`"):
            read(**{field: "x"})
