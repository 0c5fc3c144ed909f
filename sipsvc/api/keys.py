"""Typed handles to what the app factory builds (no globals)."""

from aiohttp import web

from ..accounts.service import AccountService
from ..config import Config
from ..devices.service import DeviceService
from ..quickcall.service import QuickcallService
from ..registrar.service import RegistrarService

CONFIG = web.AppKey("config", Config)
ACCOUNTS = web.AppKey("accounts", AccountService)
DEVICES = web.AppKey("devices", DeviceService)
REGISTRAR = web.AppKey("registrar", RegistrarService)
QUICKCALL = web.AppKey("quickcall", QuickcallService)
