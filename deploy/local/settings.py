"""Settings only the local stack reads: where it keeps binaries, and its extra ports.

The same ``COC_`` environment variables as before, so nothing changes for a user;
the services never read these, so they live here and not in ``shared.settings``.
The state folder itself (``COC_STATE_DIR``) stays a shared setting: every process
reads the generated tokens from it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import PROJECT_ROOT, ServiceSettings


class StackSettings(ServiceSettings):
    """What ``coc stack`` needs besides the addresses every process knows."""

    cache_dir: Path = Field(PROJECT_ROOT / ".cache", description="Downloaded and built stack binaries")
    kafka_controller_port: int = Field(
        9093, description="Port of the local Kafka's KRaft controller listener (same host)"
    )
    ferretdb_debug_addr: str = Field(
        "-", description="Local FerretDB's metrics/debug HTTP address, host:port; '-' disables it"
    )
