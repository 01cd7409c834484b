"""`loupe`: run the local stack, load synthetic data into it, tour it, and write the documents generated from the
code."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shared.settings import settings_table

if TYPE_CHECKING:
    from loupe.stack import Stack

DEFAULT_DATA_DIR = ".loupe"
DEFAULT_BASE_PORT = 7400


def _up(args: argparse.Namespace) -> int:
    from loupe.stack import Stack, StackError, StackPorts

    # The supervisor's restarts and give-ups, on the runner's stderr.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        stack = Stack(Path(args.data_dir).resolve(), StackPorts.from_base(args.base_port),
                      triton=not args.no_triton, replicas=args.replicas)
    except ValueError as exc:  # what was asked for makes no stack: --replicas naming the gateway, say
        print(f"loupe up: {exc}", file=sys.stderr)
        return 2
    try:
        run_until_signal(stack)
    except StackError as exc:
        print(f"loupe up failed: {exc}", file=sys.stderr)
        return 1
    return 0


def run_until_signal(stack: Stack) -> None:
    """``loupe up``: start, say where everything is, run until SIGINT or SIGTERM, stop."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM means what Ctrl-C means. Both are set here, as a runner started in the background
    # inherits SIGINT ignored.
    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    began = time.monotonic()
    try:
        stack.start()  # a Ctrl-C while starting stops what was started
        print(f"Loupe is up ({time.monotonic() - began:.1f} s)\n"
              f"  gateway    {stack.gateway_url}\n"
              f"  segments   {stack.segments_url}\n"
              f"  admin key  {stack.admin_key}\n"
              f"  data       {stack.data_dir}\n"
              f"  logs       {stack.log_dir}\n"
              f"{replica_lines(stack)}"
              "Ctrl-C stops everything.", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        # A second Ctrl-C must not cut the ordered stop short; it is bounded by the grace periods.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def replica_lines(stack: Stack) -> str:
    """The port of each extra replica (its /metrics, /healthz, /readyz); nothing when every service runs once."""
    from loupe.stack import service_of

    extra = [f"{name} :{port}" for name, port in stack.replica_ports.items() if name != service_of(name)]
    return f"  replicas   {', '.join(extra)}\n" if extra else ""


def replicas(text: str) -> int | dict[str, int]:
    """An argparse type: ``N`` (every worker service) or ``service=N,...`` (those named; the rest run once)."""
    if text.isdigit():
        return int(text)
    counts: dict[str, int] = {}
    for item in text.split(","):
        service, _, count = item.partition("=")
        if not count.isdigit():
            raise argparse.ArgumentTypeError(f"{item!r}: write N, or service=N separated by commas "
                                             "(e.g. ingest=2,annotation=3)")
        counts[service.strip()] = int(count)
    return counts


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


def _synth(args: argparse.Namespace) -> int:
    from loupe.synth import run_command

    return run_command(args)


def _demo(args: argparse.Namespace) -> int:
    from loupe.demo import run_command

    return run_command(args)


def add_gateway_options(parser: argparse.ArgumentParser) -> None:
    """--url and --token of the commands that talk to a running Loupe."""
    parser.add_argument("--url", default=os.environ.get("LOUPE_URL", f"http://127.0.0.1:{DEFAULT_BASE_PORT}"),
                        help="the gateway (env LOUPE_URL; default %(default)s)")
    parser.add_argument("--token", default=os.environ.get("LOUPE_API_KEY"),
                        help="API key of a project manager (env LOUPE_API_KEY; `loupe up` prints the admin key)")


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`, refused before anything is done."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {low} to {high}" if high is not None else f"must be at least {low}")
        return value

    parse.__name__ = "integer"  # argparse's message names the type: "invalid integer value: 'x'"
    return parse


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
    up.add_argument("--replicas", type=replicas, default=1, metavar="N|SERVICE=N,...",
                    help="processes of each worker service, as Kubernetes runs pods: N for every one, or e.g. "
                         "ingest=2,annotation=3 (the others run once); replica k > 1 is SERVICE#k, on a port "
                         "of its own that `loupe up` prints (default %(default)s)")
    up.set_defaults(run=_up)

    asyncapi = commands.add_parser("asyncapi", help="write the bus contract as an AsyncAPI 3.0 document")
    asyncapi.add_argument("--out", default="-", help="file to write, or - for stdout (default)")
    asyncapi.set_defaults(run=_asyncapi)

    settings = commands.add_parser("settings", help="print the configuration table (Markdown)")
    settings.set_defaults(run=_settings)

    synth = commands.add_parser("synth", help="make synthetic images of shapes and load them, labelled, into a project")
    synth.add_argument("--count", type=int, default=200, help="how many images (default %(default)s)")
    synth.add_argument("--size", type=int, default=64, help="side of the square images in pixels (default %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="the same seed makes the same images (default %(default)s)")
    synth.add_argument("--shift", action="store_true", help="another palette and background: a distribution shift")
    synth.add_argument("--objects", type=int, nargs=2, default=[1, 3], metavar=("MIN", "MAX"),
                       help="objects per image (default 1 3)")
    synth.add_argument("--val-fraction", type=float, default=0.2,
                       help="share of the images in dataset val, the rest in train (default %(default)s)")
    synth.add_argument("--project", help="id of a project to add to (default: make a new one)")
    synth.add_argument("--name", default="synthetic shapes", help="name of the new project (default %(default)s)")
    add_gateway_options(synth)
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(run=_synth)

    demo = commands.add_parser(
        "demo", help="the five-minute tour of a running Loupe: train, auto-label, tag, rank and embed synthetic images"
    )
    demo.add_argument("--images", type=integer(10), default=400,
                      help="labelled images to train on, a fifth of them for validation (default %(default)s)")
    demo.add_argument("--new", type=integer(1), default=200,
                      help="new unlabelled images to auto-label, plus one in ten as many shifted ones "
                           "(default %(default)s)")
    demo.add_argument("--epochs", type=integer(1, 1000), default=15,
                      help="epochs of the detector and of the tagger (default %(default)s)")
    add_gateway_options(demo)
    demo.add_argument("--quiet", action="store_true", help="no progress: only where to look at the end")
    demo.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
