"""The operator page ``/ui/`` in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium): it lists the account's devices, and a phone that
registers over real SIP flips its row to registered without a reload."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.sipclient import SipClient

PASSWORD = "secret123"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("headless Chromium is missing: apt-get install chromium chromium-driver "
                    "(scripts/test.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    # An explicit driver path: Selenium Manager never goes looking for (or downloading) one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def row_class(driver, device_id: str) -> str:
    rows = driver.find_elements(By.CSS_SELECTOR, f'tr[data-device-id="{device_id}"]')
    return rows[0].get_attribute("class") if rows else ""


async def wait_for(driver, condition, timeout: float = 10.0):
    """WebDriverWait off the event loop, which keeps serving the page and the SIP phone."""
    return await asyncio.to_thread(WebDriverWait(driver, timeout, poll_frequency=0.1).until, condition)


async def test_a_registering_phone_flips_its_row_without_a_reload(api, browser):
    account = await api.new_account()
    alice = await api.new_device(account, {"name": "Alice desk", "sip": {"username": "alice", "password": PASSWORD}})
    bob = await api.new_device(account, {"name": "Bob desk", "sip": {"username": "bob", "password": PASSWORD}})
    url = str(api.client.make_url("/ui/")) + f"#account={account['id']}&token={account['token']}"
    await asyncio.to_thread(browser.get, url)
    await wait_for(browser, lambda d: "unregistered" in row_class(d, alice["id"]))
    await wait_for(browser, lambda d: d.find_element(By.ID, "state").text == "live")
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#devices td.name")]
    assert sorted(names) == ["Alice desk", "Bob desk"]
    assert "#" not in browser.current_url  # the token left the address bar
    browser.execute_script("window.notReloaded = true;")

    async with SipClient(api.sip_address) as phone:
        assert (await phone.register("alice", PASSWORD, account["realm"], expires=300)).status == 200
        await wait_for(browser, lambda d: "registered" in row_class(d, alice["id"]).split())
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-device-id="{alice["id"]}"]')
        assert row.find_element(By.CSS_SELECTOR, "td.status").text == "registered"
        assert row.find_element(By.CSS_SELECTOR, "td.event").text.startswith("register at")
        assert "unregistered" in row_class(browser, bob["id"])
        assert browser.execute_script("return window.notReloaded === true;")

        assert (await phone.register("alice", PASSWORD, account["realm"], expires=0)).status == 200
        await wait_for(browser, lambda d: "unregistered" in row_class(d, alice["id"]))
    assert browser.execute_script("return window.notReloaded === true;")
    assert browser.find_element(By.ID, "summary").text == "2 devices, 0 registered"


async def test_an_api_key_signs_in_and_a_bad_token_is_explained(api, browser):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "Lobby"})
    await asyncio.to_thread(browser.get, str(api.client.make_url("/ui/")))
    await asyncio.to_thread(browser.execute_script, "sessionStorage.clear();")
    await asyncio.to_thread(browser.get, str(api.client.make_url("/ui/")) + "#account=x&token=wrong")
    await wait_for(browser, lambda d: d.find_element(By.ID, "error").text != "")
    assert "HTTP 401" in browser.find_element(By.ID, "error").text

    browser.find_element(By.ID, "api_key").send_keys(account["api_key"])
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    await wait_for(browser, lambda d: "unregistered" in row_class(d, device["id"]))
    assert browser.find_element(By.ID, "account").get_attribute("value") == account["id"]
    assert browser.find_element(By.ID, "error").is_displayed() is False
