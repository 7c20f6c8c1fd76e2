"""``coc service NAME`` runs one service; ``coc docs`` writes the AsyncAPI document of all topics."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from shared.cli import CommandError

SERVICES = ("intake", "validation", "render", "signing", "archive", "status")


def register(subparsers: Any) -> None:
    run = subparsers.add_parser("service", help="run one service in the foreground")
    run.add_argument("name", choices=SERVICES)
    run.add_argument("--port", type=int, help="HTTP port (default: the service's own, or COC_HTTP_PORT)")
    run.set_defaults(func=run_service)

    docs = subparsers.add_parser("docs", help="the AsyncAPI document of every topic, from the code")
    docs.add_argument("--out", type=Path, help="output file (default: standard output)")
    docs.set_defaults(func=run_docs)


def create_app(name: str) -> Any:
    module = importlib.import_module(f"services.{name}.app")
    return module.create_app()


def run_service(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from shared.service import port_of
    from shared.settings import ServiceSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = ServiceSettings()
    try:
        app = create_app(args.name)
    except (ValidationError, FileNotFoundError, OSError) as exc:
        raise CommandError(f"{args.name} cannot start: {exc}") from None
    port = args.port or port_of(args.name, settings)
    uvicorn.run(app, host=settings.http_host, port=port, log_level="warning", lifespan="on")
    return 0


def asyncapi_document() -> dict[str, Any]:
    """One AsyncAPI 3.0 document: the channels and messages of every service, merged."""
    merged: dict[str, Any] = {}
    for name in SERVICES:
        spec = importlib.import_module(f"services.{name}.app").create_app().state.service.asyncapi()
        if not merged:
            merged = spec
            merged["info"] = {
                "title": "eCoC pipeline topics",
                "version": "1.0.0",
                "description": "Every Kafka topic of the eCoC pipeline; coc.status.v1 is the contract ops dashboards read.",
            }
            continue
        for section in ("channels", "operations"):
            merged.setdefault(section, {}).update(spec.get(section, {}))
        for part, items in spec.get("components", {}).items():
            merged.setdefault("components", {}).setdefault(part, {}).update(items)
    return merged


def run_docs(args: argparse.Namespace) -> int:
    text = json.dumps(asyncapi_document(), indent=2, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0
