"""Signing: wiring only. The key (a file or a PKCS#11 token) is opened in the lifespan, once, and handed
to the seal; the approval holders' seals of the registry are opened as they are registered."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

from services.signing import routes, subscribers
from services.signing.adapters.keys import (
    SealHolder,
    SealNotConfigured,
    load_seal,
    load_tsa,
    registered_opener,
)
from services.signing.adapters.waiting import WaitingDocuments
from services.signing.registry import SealBook
from services.signing.seal import SigningError
from services.signing.settings import SigningSettings
from shared import topics
from shared.observability.metrics import seal_readings
from shared.stage import CannotStart, HeldPartitions, Stage


def create_app(settings: SigningSettings | None = None) -> FastAPI:
    stage = Stage("signing", settings or SigningSettings())
    holder = SealHolder()
    book = SealBook(default_holder=stage.settings.seal_holder)
    waiting = WaitingDocuments(stage.database())
    # The partitions of coc.documents.rendered.v1 this instance holds: the waiting documents it seals (of two, one).
    held = HeldPartitions(topics.RENDERED, ready=stage.tables_read)

    def check_seal() -> None:
        """Read the seal once; a key or certificate that cannot seal stops the service before it starts."""
        try:
            holder.timestamp = load_tsa(stage.settings)
            holder.seal = load_seal(stage.settings)
        except (SigningError, SealNotConfigured, OSError) as exc:
            raise CannotStart(f"seal: {exc}") from None

    async def read_seal() -> None:
        if holder.seal is None:
            check_seal()
        book.default = holder.seal

    async def close_seal() -> None:
        holder.close(book.all_seals())  # the token's sessions and the signing threads

    def seals_in_use() -> list[tuple[str, dt.datetime]]:
        """The settings' seal and each holder's current one, for /metrics (days to expiry)."""
        in_use = {seal.fingerprint: seal for seal in (book.default, *book.seals.values()) if seal is not None}
        return [(fingerprint, seal.certificate.not_valid_after_utc) for fingerprint, seal in in_use.items()]

    stage.metrics.seal_expiry.add(seal_readings(seals_in_use))
    stage.preflight.append(check_seal)
    stage.on_start.append(read_seal)
    stage.on_stop.append(close_seal)
    stage.on_start.append(
        subscribers.register(stage, holder, book, waiting, registered_opener(stage.settings), held)
    )
    app = stage.asgi()
    key = routes.key_of(stage.settings)
    app.include_router(routes.router(lambda: book.default, book.default_holder, key, stage.authenticator()))
    return app
