"""A server process freezes the objects its startup built, so later full collections skip them."""

import asyncio
import gc

from adapters.server.services import ServerConfig
from adapters.server.workers import build_app
from settlement.paths import bundled_rules_dir


async def _lifespan(app, *messages: str) -> list[dict]:
    """Feed the app the given lifespan messages and return what it sent back."""
    inbox: asyncio.Queue = asyncio.Queue()
    for kind in messages:
        inbox.put_nowait({"type": kind})
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, inbox.get, send)
    return sent


def test_startup_freezes_loaded_rules(tmp_path):
    config = ServerConfig(ledger_dsn=f"sqlite:///{tmp_path / 'ledger.sqlite3'}", rules_dir=str(bundled_rules_dir()))
    app = build_app(config)
    gc.unfreeze()
    try:
        sent = asyncio.run(_lifespan(app, "lifespan.startup", "lifespan.shutdown"))

        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
        # The rules the services loaded are frozen, so no generation of the collector contains them.
        rules = app.inner.services.rules
        assert gc.is_tracked(rules)
        assert not any(obj is rules for obj in gc.get_objects())
    finally:
        gc.unfreeze()
