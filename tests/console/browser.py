"""Headless Chromium for the console's end-to-end tests: Debian's ``chromium`` driven through Debian's
``chromium-driver`` by Selenium (no test tool downloads a browser: the driver and the browser are named by path),
and the few steps every console test takes (sign in, open a view, wait for what a person would see)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 20
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", "/tmp/console-screenshots"))


def require_browser() -> None:
    """Fail, not skip, when the browser is missing: ``make test`` installs it (a skipped test proves nothing)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(f"{missing} not installed: apt-get install -y chromium chromium-driver (make test does it)")


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium window of ``width`` x ``height``, closed when the block ends."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


class Console:
    """One browser tab on a server's console, with the steps a person takes."""

    def __init__(self, driver: object, url: str) -> None:
        self.driver: Any = driver
        self.url = url

    def open(self, view: str = "") -> None:
        """Show ``#/view?...`` as a followed link does, and wait until the view is drawn."""
        with self.drawing():
            self.driver.execute_script(
                "if (location.hash === arguments[0]) dispatchEvent(new HashChangeEvent('hashchange'));"
                "else location.hash = arguments[0];",
                f"#/{view}",
            )

    @contextmanager
    def drawing(self) -> Iterator[None]:
        """Wait, after the block, until the console has drawn a view begun after the block started (the newest)."""
        count = "return Number(document.getElementById('main').dataset.started || 0)"
        before = self.driver.execute_script(count)
        yield
        drawn = (
            "const main = document.getElementById('main');"
            "return Number(main.dataset.started) > arguments[0] && main.dataset.rendered === main.dataset.started"
        )
        try:
            WebDriverWait(self.driver, WAIT_SECONDS).until(lambda d: d.execute_script(drawn, before))
        except TimeoutException:
            raise AssertionError(f"the view was not drawn; the page shows:\n{self.text()}") from None

    def sign_in(self, key_id: str, secret: str) -> None:
        self.driver.get(f"{self.url}/console/")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.refresh()
        self.fill("#sign-in", redraws=True, key_id=key_id, secret=secret)
        self.wait_for("#whoami", key_id)

    def follow(self, link_text: str) -> None:
        """Click the link showing ``link_text`` and wait until the view it leads to is drawn."""
        with self.drawing():
            self.find_link(link_text).click()

    def find_link(self, link_text: str) -> Any:
        try:
            return WebDriverWait(self.driver, WAIT_SECONDS).until(lambda d: d.find_element(By.LINK_TEXT, link_text))
        except TimeoutException:
            raise AssertionError(f"no link {link_text!r}; the page shows:\n{self.text()}") from None

    def sign_out(self) -> None:
        self.driver.find_element(By.ID, "sign-out").click()
        self.wait_for("h1", "Sign in")

    def fill(self, form: str, submit: bool = True, redraws: bool = False, **values: str) -> None:
        """Type ``values`` into the named fields of ``form`` (replacing what they held), then submit it; with
        ``redraws``, wait until the view the submission leads to is drawn."""
        for name, value in values.items():
            control = self.find(f"{form} [name={name}]")
            if control.tag_name == "select":
                Select(control).select_by_value(value)
            elif control.get_attribute("type") == "datetime-local":  # its typed form depends on the locale
                self.driver.execute_script("arguments[0].value = arguments[1]", control, value)
            else:
                control.clear()
                control.send_keys(value)
        if submit and redraws:
            with self.drawing():
                self.find(f"{form} button[type=submit]").click()
        elif submit:
            self.find(f"{form} button[type=submit]").click()

    def find(self, css: str) -> Any:
        """The element matching ``css``, once the view shows it."""
        try:
            return WebDriverWait(self.driver, WAIT_SECONDS).until(lambda d: d.find_element(By.CSS_SELECTOR, css))
        except TimeoutException:
            raise AssertionError(f"no {css} appeared; the page shows:\n{self.text()}") from None

    def wait_for(self, css: str, text: str = "") -> str:
        """Wait until an element matching ``css`` holds ``text``; returns the whole text of the view."""

        def shown(driver: Any) -> bool:  # read in one script: a re-render cannot leave a stale element half-read
            texts = driver.execute_script(
                "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText || e.textContent)", css
            )
            return any(text in shown for shown in texts)

        try:
            WebDriverWait(self.driver, WAIT_SECONDS).until(shown)
        except TimeoutException:
            raise AssertionError(f"{text!r} never appeared in {css}; the page shows:\n{self.text()}") from None
        return self.text()

    def error(self, containing: str) -> str:
        """The message of the error box that holds ``containing`` (waiting for it to appear)."""
        self.wait_for("[role=alert]", containing)
        alerts = self.driver.execute_script(
            "return [...document.querySelectorAll('[role=alert]')].map(e => e.innerText)"
        )
        return str(next(text for text in alerts if containing in text))

    def text(self) -> str:
        return str(self.driver.execute_script("return document.querySelector('main').innerText"))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path
