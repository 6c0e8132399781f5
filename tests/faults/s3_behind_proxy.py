"""imagegen's storage on a fresh bucket of moto's S3 server, reached through a
:class:`~tests.faults.proxy.TCPProxy` the fault tests can cut, stall or choke."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .proxy import TCPProxy


@contextlib.contextmanager
def s3_behind_proxy(
    settings: Any, moto_endpoint: str, bucket: str, **options: Any
) -> Iterator[tuple[Any, TCPProxy]]:
    """Create ``bucket`` on moto's server and make it STORAGES["imagegen"]
    (django-storages' S3Storage, ``options`` added to its OPTIONS) through a
    new proxy; yield ``(boto3 client straight to moto, proxy)``. Afterwards the
    proxy is closed and the bucket emptied and removed."""
    # Imported here: the modules using this skip themselves without the s3 extra.
    import boto3

    parts = urlsplit(moto_endpoint)
    proxy = TCPProxy(parts.hostname or "127.0.0.1", parts.port or 80)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "imagegen": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": f"http://127.0.0.1:{proxy.port}",
                "region_name": "us-east-1",
                "file_overwrite": True,
                **options,
            },
        },
    }
    try:
        yield client, proxy
    finally:
        proxy.close()
        for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
