"""A pjsua2 phone for the integration tests, run as its own process (pjsua2 owns threads and
global state): registers to a registrar, reports, and unregisters when told.

    python tests/pjsua_phone.py HOST:PORT udp|tcp USER PASSWORD REALM

Prints ``REGISTERED <status>`` after each registration result; reading a line ``unregister``
on stdin unregisters and prints ``UNREGISTERED <status>``; then it exits. Bounded: it gives up
after 20 s without an answer.
"""

from __future__ import annotations

import select
import sys
import time

import pjsua2 as pj


class Phone(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.results: list[tuple[int, int]] = []  # (status, expires)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 - pjsua2's name
        self.results.append((prm.code, prm.expiration))


def pump(endpoint: pj.Endpoint, phone: Phone, seen: int, limit: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + limit
    while len(phone.results) <= seen:
        if time.monotonic() > deadline:
            print("TIMEOUT", flush=True)
            sys.exit(2)
        endpoint.libHandleEvents(20)
    return phone.results[seen]


def main() -> int:
    server, transport, user, password, realm = sys.argv[1:6]
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.userAgent = "pjsua2-tests"
    config.logConfig.level = 1
    config.logConfig.consoleLevel = 1
    endpoint.libInit(config)
    endpoint.audDevManager().setNullDev()
    kind = pj.PJSIP_TRANSPORT_TCP if transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    transport_config = pj.TransportConfig()
    transport_config.port = 0
    transport_config.boundAddress = "127.0.0.1"
    endpoint.transportCreate(kind, transport_config)
    endpoint.libStart()

    account_config = pj.AccountConfig()
    account_config.idUri = f"sip:{user}@{realm}"
    account_config.regConfig.registrarUri = f"sip:{server};transport={transport}"
    account_config.regConfig.timeoutSec = 300
    account_config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
    phone = Phone()
    phone.create(account_config)
    status, expires = pump(endpoint, phone, 0)
    print(f"REGISTERED {status} {expires}", flush=True)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        endpoint.libHandleEvents(20)
        if select.select([sys.stdin], [], [], 0)[0]:
            if sys.stdin.readline().strip() == "unregister":
                phone.setRegistration(False)
                status, _ = pump(endpoint, phone, 1)
                print(f"UNREGISTERED {status}", flush=True)
                break
    phone.shutdown()
    endpoint.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
