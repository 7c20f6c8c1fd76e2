"""Read models on collections of one test only, on the real FerretDB."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from services.status.adapters.store import StatusStore
from shared.mongo import database, make_client
from shared.settings import CocSettings

StoreFactory = Callable[[str], StatusStore]


@pytest.fixture
async def stores(settings: CocSettings, unique: str) -> AsyncIterator[StoreFactory]:
    """A status process's read model per call; the same name is the same collections (another process)."""
    client = make_client(settings)
    made: list[StatusStore] = []

    def make(name: str) -> StatusStore:
        store = StatusStore.on(database(client, settings)[f"status_records_{unique}_{name}"])
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            for collection in store.kept.all():
                await collection.drop()
        await client.close()


@pytest.fixture
async def store(stores: StoreFactory) -> StatusStore:
    made = stores("main")
    await made.setup()
    return made


@pytest.fixture
def vin(unique: str) -> Callable[[int], str]:
    return lambda n: f"WVW{unique.upper()}{n:02d}"
