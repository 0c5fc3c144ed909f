"""Typed handles to what the app factory builds (no globals)."""

from aiohttp import web

from ..accounts.service import AccountService
from ..config import Config
from ..devices.service import DeviceService
from ..events.hub import RegistrationEvents
from ..notify.service import NotifyService
from ..quickcall.service import QuickcallService
from ..registrar.guard import AuthGuard
from ..registrar.service import RegistrarService
from ..store import Stores
from ..transport.endpoint import SipEndpoint
from ..transport.listen import Listeners
from .metrics import Metrics

CONFIG = web.AppKey("config", Config)
ACCOUNTS = web.AppKey("accounts", AccountService)
DEVICES = web.AppKey("devices", DeviceService)
REGISTRAR = web.AppKey("registrar", RegistrarService)
NOTIFIER = web.AppKey("notifier", NotifyService)
QUICKCALL = web.AppKey("quickcall", QuickcallService)
STORES = web.AppKey("stores", Stores)
SIP_LISTENERS = web.AppKey("sip_listeners", Listeners)
SIP_ENDPOINT = web.AppKey("sip_endpoint", SipEndpoint)
METRICS = web.AppKey("metrics", Metrics)
EVENTS = web.AppKey("events", RegistrationEvents)
SECURITY = web.AppKey("security", AuthGuard)
