"""One process of the concurrent-refresh test: asks for a valid token N times at once, prints the tokens."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

from hub.config import Settings
from tests.conftest import make_hub


async def main(database_url: str, key: str, provider_url: str, home: str, connection_id: str, n: int) -> None:
    from hub.tokens import valid_access_token

    hub = make_hub(Settings(home=Path(home), database_url=database_url, encryption_keys=(key,), admin_token="x",
                            environ={"TESTPROVIDER_URL": provider_url}))
    try:
        print("ready", flush=True)
        sys.stdin.readline()  # start together with the other processes
        tokens = await asyncio.gather(*(valid_access_token(hub, uuid.UUID(connection_id)) for _ in range(n)))
        print(json.dumps(tokens), flush=True)
    finally:
        await hub.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6], int(sys.argv[6])))
