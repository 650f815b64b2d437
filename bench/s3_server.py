"""moto's S3 server on loopback for the bench, in a process of its own (it keeps every object in
memory, so its memory is not the portal's): prints the portal's ``PORTAL_*`` settings for a
fresh bucket as one JSON line, then serves until its standard input closes."""

import json
import sys

from portal.testing import running_s3_server


def main() -> None:
    with running_s3_server() as server:
        bucket = server.create_bucket("sinetti-bench")
        settings = server.portal_config(bucket)
        print(json.dumps({f"PORTAL_{k.upper()}": v for k, v in settings.items()}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
