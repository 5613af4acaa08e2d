"""Generate CURVE key pairs for the policy link: `python -m deploy.keys DIR [--name server --name robot]`."""

from __future__ import annotations

import argparse
import sys

from deploy.curve import generate_keypair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.keys",
        description="Write ZeroMQ CURVE key pairs (<name>.key public, <name>.key_secret private). "
        "Give the server `server.key_secret` and the public `.key` of every allowed client; "
        "give each robot client its own `.key_secret` and the server's public `server.key`.",
    )
    parser.add_argument("directory", help="where to write the key files (created if missing)")
    parser.add_argument(
        "--name", action="append", help="key pair name; repeat for several (default: server, client)"
    )
    args = parser.parse_args(argv)
    for name in args.name or ["server", "client"]:
        try:
            public, secret = generate_keypair(args.directory, name)
        except FileExistsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"wrote {public} and {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
