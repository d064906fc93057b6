"""`limr operator`: run the kopf operator with /healthz (liveness) and /metrics (Prometheus)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os

HELP = "run the kopf operator with /healthz and /metrics"


def _interval(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0.1 <= value <= 3600.0:
        raise argparse.ArgumentTypeError(f"{text!r}: the reconcile interval must be between 0.1 and 3600 seconds")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="limr operator", description=__doc__.splitlines()[0])
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable; globs allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    p.add_argument("--metrics-port", type=_port, default=9090, help="port of /metrics (default 9090; 0: off)")
    p.add_argument("--health-port", type=_port, default=8080, help="port of /healthz (default 8080)")
    p.add_argument("--standalone", action="store_true", help="no peering: for one replica or tests")
    p.add_argument("--peering-name", default=os.environ.get("LIMR_PEERING_NAME", "limr-operator"),
                   help="KopfPeering object shared by the replicas (one is active at a time)")
    p.add_argument("--interval", type=_interval, default=os.environ.get("LIMR_RECONCILE_INTERVAL", "10"),
                   help="seconds between level-triggered reconciles of each job (default 10)")
    p.add_argument("--verbose", "-v", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        args = parse(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.interval <= 0 or not (0 <= args.metrics_port < 65536) or not (0 < args.health_port < 65536):
        print("limr operator: --interval must be > 0 and ports in range")
        return 2
    # The handlers module reads these when imported (timer interval) and at startup (metrics).
    os.environ["LIMR_RECONCILE_INTERVAL"] = str(args.interval)
    # Exact namespace names: no dynamic scanning, so kopf never lists namespaces (it would retry a
    # forbidden list for about a minute before it starts); glob patterns need the scan.
    exact = bool(args.namespace) and not any(set(ns) & set("*?!,") for ns in args.namespace)
    os.environ["LIMR_OPERATOR_SCANNING"] = "off" if exact else "on"
    os.environ["LIMR_PEERING_NAME"] = args.peering_name
    if args.metrics_port:
        os.environ["LIMR_OPERATOR_METRICS_PORT"] = str(args.metrics_port)
    import kopf

    from limr_operator import handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=args.verbose)
    logging.getLogger("limr_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    asyncio.run(kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        # A peering name makes peering mandatory (kopf.dev KopfPeering CRDs must be installed).
        peering_name=None if args.standalone else args.peering_name,
        liveness_endpoint=f"http://0.0.0.0:{args.health_port}/healthz",
    ))
    return 0
