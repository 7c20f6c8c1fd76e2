"""How fast the workspace's pages answer with a large read model: the board, a worklist page, a record page.

    python -m bench.pages --records 1000000 [--db NAME] [--reuse] [--calls 20]

The read model is the one ``bench.readmodel`` fills (the same database, resumable,
``--reuse`` to time an existing one). The status API runs over it and the
workspace over the status API, each in this process on its own HTTP port, as
they run in the stack: a page costs the workspace's own work (session, template)
plus its HTTP calls to status. The board is timed with the status service's
two-second shared count switched off, so every call counts afresh from the
counters. The archive and validation are not part of this bench: a record page
asks them and is told there is nothing (404), which costs a round trip each.

Needs only the database (``coc stack up --infra``); Kafka is not used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi import FastAPI

from bench.readmodel import fill, vin_of
from bench.readmodel import timed as timed_calls
from services.status import routes as status_routes
from services.status.adapters.documents import COLLECTION
from services.status.adapters.store import StatusStore
from services.status.adapters.worklists import Worklists
from services.workspace import routes as workspace_routes
from services.workspace.adapters.audit import AuditLog
from services.workspace.adapters.pipeline import PipelineApi
from services.workspace.adapters.sessions import COLLECTION as SESSIONS
from services.workspace.adapters.sessions import SessionStore
from services.workspace.adapters.users import UserStore
from services.workspace.approvals import ApprovalBook
from services.workspace.identity import Throttle
from services.workspace.live import LiveFeed
from services.workspace.settings import WorkspaceSettings
from shared.auth import Authenticator, Role
from shared.mongo import make_client
from shared.policy_table import PolicyTable
from shared.settings import CocSettings
from shared.stage import Stage
from shared.xml import load_ivi_schema

USER, PASSWORD = "bench viewer", "bench-password-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a free local port until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def timed(client: httpx.AsyncClient, path: str, calls: int) -> tuple[float, float]:
    """Median and 95th percentile, in ms, of ``calls`` GETs of ``path``; any answer but 200 stops the bench."""

    async def get(_n: int) -> None:
        response = await client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:300]}")

    return await timed_calls(get, calls)


async def run(args: argparse.Namespace) -> int:
    settings = CocSettings()
    client = make_client(settings, serverSelectionTimeoutMS=30_000, socketTimeoutMS=600_000)
    try:
        db = client[args.db]
        store = StatusStore.on(db[COLLECTION])
        if not args.reuse:
            await fill(store, db["bench_progress"], args.records)
            while not await store.counters.recount(grace_s=0):
                await asyncio.sleep(1)
        total = (await store.counters.readiness())["total"]
        token = secrets.token_urlsafe(24)
        worklists = Worklists(store.listed, store.journal)
        status_app = FastAPI()
        status_app.include_router(
            status_routes.router(
                store.records,
                store.counters,
                worklists,
                Authenticator({Role.VIEWER: token}),
                readiness_ttl=0,
            )
        )
        users = UserStore(db["workspace_users"])
        if await users.get(USER) is None:
            await users.add(USER, ["viewer"], PASSWORD, created_by="bench")
        else:
            await users.set_password(USER, PASSWORD)
        async with serving(status_app) as status_url:
            workspace_settings = WorkspaceSettings(workspace_secret=secrets.token_urlsafe(48))
            api = PipelineApi(status_url, status_url, status_url, {Role.VIEWER: token})
            workspace = workspace_routes.deps.Workspace(
                settings=workspace_settings,
                users=users,
                audit=AuditLog(db["workspace_audit"]),
                api=api,
                feed=LiveFeed(api.readiness, 1.0),
                emitter=Stage("workspace", workspace_settings).emitter,
                schema=lambda: load_ivi_schema(workspace_settings.xsd_path()),
                throttle=Throttle(),
                policies=PolicyTable(),
                approvals=ApprovalBook(),
                sessions=SessionStore(db[SESSIONS], workspace_settings.session_rules()),
            )
            pages = FastAPI()
            workspace_routes.include(pages, workspace)
            async with serving(pages) as base, httpx.AsyncClient(base_url=base, timeout=120) as browser:
                form = await browser.get("/signin")
                csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
                assert csrf is not None
                signed = await browser.post(
                    "/signin", data={"name": USER, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"}
                )
                assert signed.status_code == 303, signed.text
                began = time.perf_counter()
                worklists.prime()  # as the status service does when it starts
                first = await browser.get("/worklists/production")
                first_ms = (time.perf_counter() - began) * 1000
                while "is not ready" in (await browser.get("/worklists/production")).text:
                    await asyncio.sleep(1)
                ready_s = time.perf_counter() - began
                cases = [
                    ("board (/)", "/"),
                    ("production worklist, page 1", "/worklists/production"),
                    ("production worklist, page 40", "/worklists/production?page=40"),
                    (
                        "worklist, group + code + age filters, page 3",
                        "/worklists/production?group=CHR&code=MASS_ABOVE_MAX&min_age_h=24&page=3",
                    ),
                    ("state list (board link): blocked in VAN", "/states/blocked?group=VAN"),
                    ("record page", f"/records/{vin_of(args.records // 2)}"),
                ]
                print(f"\n{total} records in {args.db}; each page {args.calls} times, median and p95\n")
                print(f"{'page':48} {'median ms':>10} {'p95 ms':>10}")
                said = "says the lists are being read" if "is not ready" in first.text else "lists"
                print(f"{'first worklist page after start (once)':48} {first_ms:10.1f}   ({said})")
                print(f"{'lists ready after start (once, s)':48} {ready_s:10.1f}")
                for name, path in cases:
                    median, p95 = await timed(browser, path, args.calls)
                    print(f"{name:48} {median:10.1f} {p95:10.1f}")
            await api.close()
    finally:
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="status records in the read model")
    parser.add_argument("--db", default="coc_bench_readmodel", help="database (bench.readmodel's by default)")
    parser.add_argument("--reuse", action="store_true", help="time an existing filled database")
    parser.add_argument("--calls", type=int, default=20, help="calls per page")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
