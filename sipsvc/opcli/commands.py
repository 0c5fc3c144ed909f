"""The operator commands: each talks to the HTTP API of a running sipsvc.

Exit status: 0 done; 1 the API answered with an error (shown with Kazoo's message and
details); 2 a usage error (e.g. no token); 3 the API could not be reached.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import output
from .client import ApiClient, ApiError, UnreachableError

DEFAULT_API = "http://127.0.0.1:8000"
KAZOO_ID = re.compile(r"^[0-9a-zA-Z]{32}$")
EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
RETRY_SECONDS = 2.0
DEVICE_COLUMNS = [("id", "ID"), ("name", "NAME"), ("username", "USERNAME"), ("enabled", "ENABLED"),
                  ("mac_address", "MAC")]
REGISTRATION_COLUMNS = [("device_id", "DEVICE"), ("name", "NAME"), ("contact", "CONTACT"),
                        ("source", "SOURCE"), ("transport", "TRANSPORT"), ("expires", "EXPIRES IN"),
                        ("user_agent", "USER AGENT")]

BAN_COLUMNS = [("id", "ID"), ("scope", "SCOPE"), ("source", "SOURCE"), ("username", "USERNAME"),
               ("failures", "FAILURES"), ("expires", "EXPIRES IN")]


class UsageError(Exception):
    """The command line cannot be carried out as given."""


class Context:
    """The API client and the account the command works on."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = ApiClient(args.api or os.environ.get("SIPSVC_API") or DEFAULT_API,
                                args.token or os.environ.get("SIPSVC_TOKEN"))
        self._account = args.account or os.environ.get("SIPSVC_ACCOUNT")
        api_key = args.api_key or os.environ.get("SIPSVC_API_KEY")
        if api_key and not self.client.token:
            # An API key names its account: trade it for a token (and the account id).
            answer = self.client.request("PUT", "/v2/api_auth", data={"api_key": api_key})
            self.client.token = answer["auth_token"]
            self._account = self._account or answer["data"]["account_id"]
        if not self.client.token:
            raise UsageError("no token: set SIPSVC_TOKEN (or --token), or SIPSVC_API_KEY (or --api-key)")

    @property
    def account(self) -> str:
        if not self._account:
            raise UsageError("which account? set SIPSVC_ACCOUNT (or --account), or use an API key "
                             "(SIPSVC_API_KEY or --api-key), which names its account")
        return self._account

    def path(self, suffix: str = "") -> str:
        return f"/v2/accounts/{self.account}{suffix}"

    def device_id(self, ref: str) -> str:
        """A device by id, SIP username or name (the last two must be unambiguous)."""
        if KAZOO_ID.match(ref):
            return ref
        rows = self.client.data("GET", self.path("/devices"), query={"paginate": "false"})
        found = [r for r in rows if ref.lower() in (str(r.get("username", "")).lower(), str(r.get("name", "")).lower())]
        if len(found) != 1:
            raise UsageError(f"no device has the id, SIP username or name {ref!r}" if not found else
                             f"{len(found)} devices match {ref!r}; give the id ({', '.join(r['id'] for r in found)})")
        return found[0]["id"]


def accounts_create(ctx: Context) -> None:
    account = ctx.client.data("PUT", "/v2/accounts", data={"name": ctx.args.name, "realm": ctx.args.realm})
    if ctx.args.json:
        return output.as_json(account)
    output.pairs(account)
    print(f"\nexport SIPSVC_ACCOUNT={account['id']} SIPSVC_API_KEY={account['api_key']}")


def devices_list(ctx: Context) -> None:
    query = {"paginate": "false", "with_status": "true" if ctx.args.status else None}
    rows = ctx.client.data("GET", ctx.path("/devices"), query=query)
    if ctx.args.json:
        return output.as_json(rows)
    columns = DEVICE_COLUMNS + ([("registered", "REGISTERED")] if ctx.args.status else [])
    output.table(rows, columns, empty="(no devices)")


def devices_show(ctx: Context) -> None:
    device_id = ctx.device_id(ctx.args.device)
    device = ctx.client.data("GET", ctx.path(f"/devices/{device_id}"))
    registrations = ctx.client.data("GET", ctx.path(f"/devices/{device_id}/registrations"))
    if ctx.args.json:
        return output.as_json({"device": device, "registrations": registrations})
    output.pairs(device)
    print(f"\nregistrations ({len(registrations)}):")
    rows = [{**r, "expires": f"{r['expires_in']} s"} for r in registrations]
    output.table(rows, [c for c in REGISTRATION_COLUMNS if c[0] not in ("device_id", "name")],
                 empty="(not registered)")


def _registration_rows(ctx: Context) -> list[dict]:
    registered = [r["device_id"] for r in ctx.client.data("GET", ctx.path("/devices/status"))]
    names = {r["id"]: r.get("name") for r in ctx.client.data("GET", ctx.path("/devices"), query={"paginate": "false"})}
    with ThreadPoolExecutor(8) as pool:
        bindings = pool.map(lambda d: ctx.client.data("GET", ctx.path(f"/devices/{d}/registrations")), registered)
        rows = [{**b, "device_id": d, "name": names.get(d), "expires": f"{b['expires_in']} s"}
                for d, found in zip(registered, bindings) for b in found]
    return rows


def registrations(ctx: Context) -> None:
    if ctx.args.watch:
        return _watch(ctx)
    rows = _registration_rows(ctx)
    if ctx.args.json:
        return output.as_json([{k: v for k, v in r.items() if k != "expires"} for r in rows])
    output.table(rows, REGISTRATION_COLUMNS, empty="(no registrations)")


def _describe(event: str, data: dict, names: dict[str, str]) -> str:
    device = data.get("device_id", "")
    who = f"{names.get(device) or '?'} ({device})"
    detail = {"register": lambda: f"expires in {output.seconds_from_now(data.get('expires_at'), data['at'])}",
              "refresh": lambda: f"expires in {output.seconds_from_now(data.get('expires_at'), data['at'])}",
              "unregister": lambda: data.get("reason", "by the phone").replace("_", " "),
              "expired": lambda: "no refresh in time"}.get(event, lambda: "")()
    return f"{output.clock(data.get('at', time.time()))}  {event:<10}  {who}  {detail}".rstrip()


def _watch(ctx: Context) -> None:
    """The registrations now, then each change as it happens; reconnects when the stream
    breaks (each new stream starts with a snapshot)."""
    first = True
    while True:
        names = {r["id"]: r.get("name") for r in ctx.client.data("GET", ctx.path("/devices"), query={"paginate": "false"})}
        try:
            for event, data in ctx.client.events(ctx.path("/registrations/events")):
                if ctx.args.json:
                    output.as_json({"event": event, **data}, one_line=True)
                elif event == "snapshot":
                    if first:
                        output.table(_registration_rows(ctx), REGISTRATION_COLUMNS, empty="(no registrations)")
                        print("\nwatching for changes (Ctrl-C to stop)", flush=True)
                    else:
                        print(f"{output.clock(data['at'])}  reconnected: {len(data['registered'])} registered", flush=True)
                    first = False
                else:
                    if data.get("device_id") not in names:
                        names.update({r["id"]: r.get("name") for r in ctx.client.data(
                            "GET", ctx.path("/devices"), query={"paginate": "false"})})
                    print(_describe(event, data, names), flush=True)
        except UnreachableError as exc:
            print(f"sipsvc: {exc}; retrying in {RETRY_SECONDS:g} s", file=sys.stderr, flush=True)
        time.sleep(RETRY_SECONDS)


def sync(ctx: Context) -> None:
    device_id = ctx.device_id(ctx.args.device)
    query = {"reboot": "true" if ctx.args.reboot else None, "wait": "true" if ctx.args.wait else None}
    answer = ctx.client.data("POST", ctx.path(f"/devices/{device_id}/sync"), query=query)
    if ctx.args.json:
        return output.as_json(answer)
    if isinstance(answer, str):
        print(answer)
        return
    rows = [{**o, "elapsed": f"{o['elapsed_ms']} ms" if o.get("elapsed_ms") is not None else None} for o in answer]
    output.table(rows, [("contact", "CONTACT"), ("transport", "TRANSPORT"), ("status", "ANSWER"),
                        ("elapsed", "ELAPSED")])


def quickcall(ctx: Context) -> None:
    device_id = ctx.device_id(ctx.args.device)
    options = dict(option.split("=", 1) for option in ctx.args.option)
    path = ctx.path(f"/devices/{device_id}/quickcall/{ctx.args.number}")
    answer = ctx.client.data("GET" if ctx.args.dry_run else "POST", path, query=options)
    if ctx.args.json or isinstance(answer, (dict, list)):
        return output.as_json(answer)
    print(answer)


def bans_list(ctx: Context) -> None:
    path = "/v2/security/bans" if ctx.args.all else ctx.path("/security/bans")
    rows = ctx.client.data("GET", path)
    if ctx.args.json:
        return output.as_json(rows)
    columns = BAN_COLUMNS + ([("account_id", "ACCOUNT")] if ctx.args.all else [])
    output.table([{**r, "expires": f"{r['expires_in']} s"} for r in rows], columns, empty="(no bans)")


def bans_lift(ctx: Context) -> None:
    path = f"/v2/security/bans/{ctx.args.ban}" if ctx.args.all else ctx.path(f"/security/bans/{ctx.args.ban}")
    ban = ctx.client.data("DELETE", path)
    if ctx.args.json:
        return output.as_json(ban)
    who = f"username {ban['username']} from " if ban.get("username") else ""
    print(f"lifted ban {ban['id']}: {who}{ban['source']}")


def _option(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def add_commands(commands) -> None:
    """Add the operator commands to ``sipsvc``'s subcommand parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", metavar="URL", help=f"the API's address (env SIPSVC_API; default {DEFAULT_API})")
    common.add_argument("--token", help="auth or admin token (env SIPSVC_TOKEN)")
    common.add_argument("--account", metavar="ID", help="account id (env SIPSVC_ACCOUNT)")
    common.add_argument("--api-key", help="an account's API key, traded for a token (env SIPSVC_API_KEY)")
    common.add_argument("--json", action="store_true", help="print JSON (for scripts)")

    accounts = commands.add_parser("accounts", help="manage accounts (admin token)").add_subparsers(
        dest="accounts_command", required=True)
    create = accounts.add_parser("create", parents=[common], help="create an account; prints its API key")
    create.add_argument("name")
    create.add_argument("realm", help="its SIP realm (phones register to user@realm)")
    create.set_defaults(operate=accounts_create)

    devices = commands.add_parser("devices", help="list and show devices").add_subparsers(
        dest="devices_command", required=True)
    listing = devices.add_parser("list", parents=[common], help="the account's devices")
    listing.add_argument("--status", action="store_true", help="add whether each is registered")
    listing.set_defaults(operate=devices_list)
    show = devices.add_parser("show", parents=[common], help="one device and its registrations")
    show.add_argument("device", metavar="DEVICE", help="id, SIP username or name")
    show.set_defaults(operate=devices_show)

    regs = commands.add_parser("registrations", parents=[common], help="registered phones")
    regs.add_argument("--watch", action="store_true", help="then follow registration events live")
    regs.set_defaults(operate=registrations)

    check_sync = commands.add_parser("sync", parents=[common], help="check-sync NOTIFY to a registered phone")
    check_sync.add_argument("device", metavar="DEVICE", help="id, SIP username or name")
    check_sync.add_argument("--reboot", action="store_true", help="ask the phone to reboot")
    check_sync.add_argument("--wait", action="store_true", help="wait for the phones' answers and show them")
    check_sync.set_defaults(operate=sync)

    call = commands.add_parser("quickcall", parents=[common], help="ring a device, then connect it to a number")
    call.add_argument("device", metavar="DEVICE", help="id, SIP username or name")
    call.add_argument("number")
    call.add_argument("--dry-run", action="store_true", help="show the originate payload, place no call")
    call.add_argument("-o", "--option", action="append", default=[], type=_option, metavar="KEY=VALUE",
                      help="a quickcall option (timeout=20, cid-name=..., auto_answer=false, ...)")
    call.set_defaults(operate=quickcall)

    bans = commands.add_parser("bans", help="bans from password guessing").add_subparsers(
        dest="bans_command", required=True)
    ban_list = bans.add_parser("list", parents=[common], help="the bans in force")
    ban_list.add_argument("--all", action="store_true", help="of every account (admin token)")
    ban_list.set_defaults(operate=bans_list)
    lift = bans.add_parser("lift", parents=[common], help="lift a ban now, on every node")
    lift.add_argument("ban", metavar="ID")
    lift.add_argument("--all", action="store_true", help="any ban, whole sources too (admin token)")
    lift.set_defaults(operate=bans_lift)


def _explain(exc: ApiError) -> str:
    lines = [f"sipsvc: error: {exc}"]
    data = exc.data
    if isinstance(data, dict):
        if exc.message == "validation error":
            for field, rules in sorted(data.items()):
                for rule, detail in (rules.items() if isinstance(rules, dict) else [("", rules)]):
                    message = detail.get("message", "") if isinstance(detail, dict) else detail
                    lines.append(f"  {field}: {message} ({rule})")
        elif data.get("message"):
            cause = f" [{data['cause']}]" if data.get("cause") else ""
            lines[0] += f": {data['message']}{cause}"
    if exc.status == 401:
        lines.append("  the token is missing, unknown or expired: use an account's API key "
                     "(SIPSVC_API_KEY) or a fresh token")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        args.operate(Context(args))
        return 0
    except ApiError as exc:
        print(_explain(exc), file=sys.stderr)
        return EXIT_API_ERROR
    except UsageError as exc:
        print(f"sipsvc: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnreachableError as exc:
        print(f"sipsvc: error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # e.g. piped into head
        return 0
