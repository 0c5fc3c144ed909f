"""Creates the SIPp ladder's users in a running sipsvc: one account with realm REALM and devices
user0000..user9999 with password "pw"+user (as registrar-kit/sipp/users.csv expects).

    python bench/provision_users.py http://127.0.0.1:18080 ADMIN_TOKEN REALM [COUNT]
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp


async def main(base: str, admin: str, realm: str, count: int) -> None:
    async with aiohttp.ClientSession(base) as http:
        async with http.put("/v2/accounts", headers={"X-Auth-Token": admin},
                            json={"data": {"name": "ladder", "realm": realm}}) as response:
            body = await response.json()
            if response.status != 201:
                sys.exit(f"account: {response.status} {body}")
        account = body["data"]["id"]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(count):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                user = f"user{n:04d}"
                data = {"name": user, "sip": {"username": user, "password": f"pw{user}"}}
                async with http.put(f"/v2/accounts/{account}/devices", headers={"X-Auth-Token": admin},
                                    json={"data": data}) as response:
                    if response.status != 201:
                        sys.exit(f"{user}: {response.status} {await response.text()}")

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(32)))
        print(f"# provisioned {count} devices in realm {realm} (account {account}) "
              f"in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 10000))
