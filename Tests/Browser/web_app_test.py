#!/usr/bin/env python3
"""The web app in a real browser (Debian's Chromium, headless, driven by Selenium), against a
running chat-server, with a second user on a plain IRC-over-TLS socket written here (no code shared
with the server or its Swift test client).

Usage: web_app_test.py --port PORT --ca CA.crt --cert SERVER.crt --alice NAME:PASSWORD --bob NAME:PASSWORD
Exit status 0 when every check passed; each failed check says what it expected and what it saw.
Every wait is bounded (WAIT seconds) and waits for an event, never for a fixed time.
"""

import argparse
import base64
import hashlib
import http.client
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 45


class IRC:
    """A minimal IRC client over TLS that logs in with SASL PLAIN."""

    def __init__(self, port, ca, account, password):
        context = ssl.create_default_context(cafile=ca)
        raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""
        self.seen = []
        self.send("CAP LS 302")
        self.send("CAP REQ :sasl server-time message-tags")
        self.send(f"NICK {account}")
        self.send(f"USER {account} 0 * :{account}")
        self.wait(lambda m: m.startswith("CAP") or " CAP " in m)
        self.send("AUTHENTICATE PLAIN")
        self.wait(lambda m: m.startswith("AUTHENTICATE"))
        token = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()
        self.send(f"AUTHENTICATE {token}")
        self.wait(lambda m: " 903 " in m)
        self.send("CAP END")
        self.wait(lambda m: " 001 " in m)

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def lines(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        text = line.rstrip(b"\r").decode()
        if text.startswith("PING") or " PING " in text.split(" :")[0]:
            self.send("PONG :" + text.split(":")[-1])
        return text

    def wait(self, predicate, what="a matching line"):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            line = self.lines()
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"IRC: timed out waiting for {what}; last lines: {self.seen[-10:]}")

    def close(self):
        try:
            self.send("QUIT :done")
            self.sock.close()
        except OSError:
            pass


failures = []


def check(condition, text):
    print(("ok: " if condition else "FAILED: ") + text, flush=True)
    if not condition:
        failures.append(text)


def spki_hash(cert_path):
    """base64 SHA-256 of the certificate's public key: what Chromium is told to trust."""
    der = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"], check=True, capture_output=True).stdout
    key = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der, check=True, capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--alice", required=True)
    parser.add_argument("--bob", required=True)
    args = parser.parse_args()
    alice, alice_password = args.alice.split(":", 1)
    bob, bob_password = args.bob.split(":", 1)
    url = f"https://localhost:{args.port}/"

    # The headers, as any HTTP client sees them.
    connection = http.client.HTTPSConnection("localhost", args.port, context=ssl.create_default_context(cafile=args.ca), timeout=WAIT)
    connection.request("GET", "/")
    response = connection.getresponse()
    body = response.read()
    csp = response.getheader("Content-Security-Policy") or ""
    check(response.status == 200 and b"<script type=\"module\"" in body, "GET / serves the app")
    check("script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, f"a strict CSP: {csp}")
    check(response.getheader("X-Content-Type-Options") == "nosniff", "nosniff")
    check((response.getheader("Strict-Transport-Security") or "").startswith("max-age="), "HSTS")
    connection.close()

    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--ignore-certificate-errors-spki-list={spki_hash(args.cert)}", f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    # The app re-renders lists as messages arrive: an element found a moment ago may be gone.
    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    bob_irc = None
    try:
        def find(css):
            return driver.find_element(By.CSS_SELECTOR, css)

        def texts(css):
            # One script call: a re-render cannot come between finding and reading.
            return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)", css)

        def until(predicate, what):
            try:
                wait.until(lambda d: predicate())
                return True
            except TimeoutException:
                check(False, f"timed out waiting for {what}")
                return False

        driver.get(url)
        until(lambda: find("#account").is_displayed(), "the sign-in form")

        # A wrong password: the server's answer in words, and the form stays.
        find("#account").send_keys(alice)
        find("#password").send_keys("not the password" + Keys.ENTER)
        until(lambda: "Wrong account name or password" in find("#signin-error").text, "the wrong-password message")
        check(find("#password").get_attribute("value") == "", "the password field is emptied after a try")

        find("#password").send_keys(alice_password + Keys.ENTER)
        until(lambda: find("#chat").is_displayed(), "the chat after signing in")
        until(lambda: "Connected as" in find("#connection-state").text, "the connection state")
        check(driver.execute_script("return localStorage.getItem('securechat.account')") == alice, "only the account name is remembered")
        check(alice_password not in str(driver.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")),
              "the password is in no storage")

        find("#join-name").send_keys("#web" + Keys.ENTER)
        until(lambda: find("#conversation-title").text == "#web", "#web in front after joining")

        bob_irc = IRC(args.port, args.ca, bob, bob_password)
        bob_irc.send("JOIN #web")
        bob_irc.wait(lambda m: " 366 " in m, "bob's NAMES end")
        until(lambda: any(bob in t for t in texts("#member-list li")), "bob in the member list")
        check(any(t.startswith("@") and alice in t for t in texts("#member-list li")), f"alice is the room's operator: {texts('#member-list li')}")

        evil = "hello from bob <b>not bold</b> <img src=x onerror=alert(1)> https://example.org/x?a=1."
        bob_irc.send(f"PRIVMSG #web :{evil}")
        until(lambda: any("hello from bob" in t for t in texts("#messages .message .text")), "bob's message")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#messages b, #messages img")) == 0, "markup from the network stays text")
        check(any("<b>not bold</b>" in t for t in texts("#messages .text")), "the markup is shown as typed")
        links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#messages a")]
        check(links == ["https://example.org/x?a=1"], f"the link is clickable, without the full stop: {links}")
        check(any(t == "Today" for t in texts("#messages .day")), "a day separator")

        composer = find("#input")
        composer.send_keys("hi bob" + Keys.ENTER)
        line = bob_irc.wait(lambda m: "PRIVMSG #web :hi bob" in m, "alice's message")
        check(line.endswith(":hi bob"), "Enter sends")
        composer.send_keys("/me waves" + Keys.ENTER)
        bob_irc.wait(lambda m: "PRIVMSG #web :\x01ACTION waves\x01" in m, "alice's action")
        composer.send_keys("line one")
        composer.send_keys(Keys.SHIFT, Keys.ENTER)
        composer.send_keys("line two" + Keys.ENTER)
        bob_irc.wait(lambda m: m.endswith(":line one"), "the first of two lines")
        bob_irc.wait(lambda m: m.endswith(":line two"), "the second line, as its own message")

        # Tab completes a member's name.
        composer.send_keys(bob[:2], Keys.TAB)
        check(composer.get_attribute("value") == f"{bob}: ", f"Tab completes the name: {composer.get_attribute('value')!r}")
        composer.send_keys("completed" + Keys.ENTER)
        bob_irc.wait(lambda m: m.endswith(f":{bob}: completed"), "the completed message")
        composer.send_keys(Keys.ARROW_UP)
        check(composer.get_attribute("value") == f"{bob}: completed", "↑ brings back the last message")
        composer.clear()

        # The topic, edited by the room's operator.
        until(lambda: find("#edit-topic").is_displayed(), "the edit-topic button for the operator")
        find("#edit-topic").click()
        find("#topic-input").send_keys("Web topic" + Keys.ENTER)
        bob_irc.wait(lambda m: "TOPIC #web :Web topic" in m, "the new topic")
        until(lambda: find("#topic").text == "Web topic", "the topic shown")

        # A private message: its own conversation in the list, counted as unread and for you.
        bob_irc.send(f"PRIVMSG {alice} :psst, a private word")
        until(lambda: any(bob in t for t in texts("#conversations li")), "bob's conversation in the list")
        until(lambda: any("@1" in t for t in texts("#conversations .badge")), f"the mention badge: {texts('#conversations li')}")

        # The connection drops (alice logs in elsewhere, which replaces this session); bob speaks
        # meanwhile; the page reconnects by itself and catches up, showing each message once.
        other = IRC(args.port, args.ca, alice, alice_password)
        until(lambda: "Connected as" not in find("#connection-state").text, "the page noticing the drop")
        bob_irc.send("PRIVMSG #web :said while alice was away")
        other.close()
        until(lambda: "Connected as" in find("#connection-state").text, "the page reconnecting by itself")
        driver.execute_script("document.querySelector('#conversations button').click()")  # #web sorts first
        until(lambda: any("said while alice was away" in t for t in texts("#messages .text")), "the catch-up after the reconnect")
        check(texts("#messages .text").count("hi bob") == 1, f"nothing shown twice after the reconnect: {texts('#messages .text')}")

        # Older messages load when scrolling up (CHATHISTORY BEFORE).
        for i in range(70):
            bob_irc.send(f"PRIVMSG #web :filler {i}")
        bob_irc.send("PING :filled")
        bob_irc.wait(lambda m: "PONG" in m and "filled" in m, "the fillers sent")
        until(lambda: any("filler 69" in t for t in texts("#messages .text")), "the last filler")
        driver.refresh()
        find("#password").send_keys(alice_password + Keys.ENTER)
        until(lambda: find("#conversation-title").text == "#web", "#web again after signing in anew")
        until(lambda: any("filler 69" in t for t in texts("#messages .text")), "the backlog after signing in")
        check(not any("hello from bob" in t for t in texts("#messages .text")), "only the latest page is loaded at first")
        driver.execute_script("document.getElementById('messages').scrollTop = 0")
        until(lambda: any("hello from bob" in t for t in texts("#messages .text")), "older messages after scrolling up")

        # A phone's width: one column, nothing wider than the screen.
        driver.set_window_size(375, 812)
        until(lambda: find("#toggle-sidebar").is_displayed(), "the conversations button on a phone")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        check(width <= 375, f"no sideways scrolling at 375 px: {width}")

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        check(not errors, f"no errors in the browser console (a CSP violation would be one): {errors}")
    finally:
        if bob_irc:
            bob_irc.close()
        driver.quit()
    if failures:
        print(f"{len(failures)} checks failed", flush=True)
        sys.exit(1)
    print("all checks passed", flush=True)


if __name__ == "__main__":
    main()
