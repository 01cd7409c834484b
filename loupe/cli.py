"""`loupe`: run the local stack, and write the documents generated from the code."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from shared.settings import settings_table

DEFAULT_DATA_DIR = ".loupe"
DEFAULT_BASE_PORT = 7400


def _up(args: argparse.Namespace) -> int:
    from loupe.stack import Stack, StackError, StackPorts, run_until_signal

    # The supervisor's restarts and give-ups, on the runner's stderr.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    stack = Stack(Path(args.data_dir).resolve(), StackPorts.from_base(args.base_port), triton=not args.no_triton)
    try:
        run_until_signal(stack)
    except StackError as exc:
        print(f"loupe up failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    from loupe.asyncapi import asyncapi_document

    text = json.dumps(asyncapi_document(), indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
    return 0


def _settings(args: argparse.Namespace) -> int:
    print(settings_table())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loupe", description="Loupe, the self-hosted vision data engine")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start NATS, Postgres, S3, Triton and the six services; Ctrl-C stops all")
    up.add_argument("--data-dir", default=os.environ.get("LOUPE_STACK_DATA_DIR", DEFAULT_DATA_DIR),
                    help="folder that keeps every server's data (env LOUPE_STACK_DATA_DIR; default %(default)s)")
    up.add_argument("--base-port", type=int, default=int(os.environ.get("LOUPE_STACK_BASE_PORT", DEFAULT_BASE_PORT)),
                    help="first of the ports the stack uses; the gateway is on this port "
                         "(env LOUPE_STACK_BASE_PORT; default %(default)s)")
    up.add_argument("--no-triton", action="store_true", help="do not start Triton (inference reports not ready)")
    up.set_defaults(run=_up)

    asyncapi = commands.add_parser("asyncapi", help="write the bus contract as an AsyncAPI 3.0 document")
    asyncapi.add_argument("--out", default="-", help="file to write, or - for stdout (default)")
    asyncapi.set_defaults(run=_asyncapi)

    settings = commands.add_parser("settings", help="print the configuration table (Markdown)")
    settings.set_defaults(run=_settings)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
