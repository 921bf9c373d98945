#!/usr/bin/env python3
"""The web app in a real browser (Debian's Chromium, headless, driven by Selenium), against a
running chat-server, with a second user on a plain IRC-over-TLS socket written here (no code shared
with the server or its Swift test client).

The script starts chat-server itself (so that it can restart it) with a config whose users file
has these accounts, password "NAME password" each: alice and dave (in browsers), bob (a raw IRC
socket), erin (chat-client, the terminal client, in script mode), carol (locked).

Usage: web_app_test.py --server BIN --client BIN --config FILE --port PORT --ca CA.crt --cert SERVER.crt
                       [--screenshots DIR] [--timings FILE]
Exit status 0 when every check passed; each failed check says what it expected and what it saw.
Every wait is bounded (WAIT seconds) and waits for an event, never for a fixed time.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import signal
import threading
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
from selenium.webdriver.common.action_chains import ActionChains
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

# The contrast ratio (WCAG 2) of each visible element's own text with the first opaque background
# behind it; returns those under 4.5:1.
CONTRAST_JS = """
const lum = (c) => {
  const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = (e) => {
  for (; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && c !== 'transparent' && !/rgba\\(.*, 0\\)$/.test(c)) return c;
  }
  return 'rgb(255, 255, 255)';
};
const low = [];
for (const e of document.querySelectorAll('body *')) {
  const ownText = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!ownText || !e.getClientRects().length || getComputedStyle(e).visibility === 'hidden') continue;
  const s = getComputedStyle(e);
  if (s.opacity !== '1' || e.closest('[hidden]')) continue;
  const [a, b] = [lum(s.color), lum(background(e))].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  if (ratio < 4.5) low.push(`${e.tagName.toLowerCase()}.${e.className} "${e.textContent.trim().slice(0, 20)}" ${s.color} on ${background(e)}: ${ratio.toFixed(2)}`);
}
return low;
"""


def check(condition, text):
    print(("ok: " if condition else "FAILED: ") + text, flush=True)
    if not condition:
        failures.append(text)


def spki_hash(cert_path):
    """base64 SHA-256 of the certificate's public key: what Chromium is told to trust."""
    der = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"], check=True, capture_output=True).stdout
    key = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der, check=True, capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


class Process:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, arguments, env=None, stdin=False):
        self.lines = []
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if any(predicate(line) for line in list(self.lines)):
                return True
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; output: {self.lines[-15:]}")

    def send(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(args):
    server = Process([args.server, "--config", args.config])
    server.wait_for(lambda l: "listening on" in l, "chat-server to listen")
    return server


def browser(args, width=1280, height=900):
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 f"--ignore-certificate-errors-spki-list={spki_hash(args.cert)}", f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


class Page:
    """One browser tab on the app, with bounded waits that tolerate re-rendering."""

    def __init__(self, driver, name):
        self.driver = driver
        self.name = name
        self.wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def texts(self, css):
        # One script call: a re-render cannot come between finding and reading.
        return self.driver.execute_script("return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)", css)

    def until(self, predicate, what):
        try:
            self.wait.until(lambda d: predicate())
            return True
        except TimeoutException:
            check(False, f"{self.name}: timed out waiting for {what}")
            return False

    def sign_in(self, account, keyboard_only=False):
        self.until(lambda: self.find("#account").is_displayed(), "the sign-in form")
        if keyboard_only:
            # Only keys, as someone without a mouse: the form puts the caret where to type.
            active = self.driver.switch_to.active_element
            if active.get_attribute("id") == "account":
                active.send_keys(account, Keys.TAB)
            self.driver.switch_to.active_element.send_keys(f"{account} password", Keys.ENTER)
        else:
            self.find("#account").clear()
            self.find("#account").send_keys(account)
            self.find("#password").send_keys(f"{account} password" + Keys.ENTER)
        return self.until(lambda: "Connected as" in self.find("#connection-state").text, f"{account} signed in")

    def join(self, room):
        self.find("#join-name").send_keys(room + Keys.ENTER)
        return self.until(lambda: self.find("#conversation-title").text == room, f"{room} in front")

    def say(self, text):
        self.find("#input").send_keys(text + Keys.ENTER)

    def shows(self, text):
        return any(text in t for t in self.texts("#messages .text"))

    def open(self, name):
        self.driver.execute_script(
            "[...document.querySelectorAll('#conversations button')].find((b) => b.querySelector('.name').textContent === arguments[0]).click()", name)
        return self.until(lambda: self.find("#conversation-title").text == name, f"{name} in front")


def main():
    parser = argparse.ArgumentParser()
    for name in ["--server", "--client", "--config", "--ca", "--cert"]:
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--screenshots")
    parser.add_argument("--timings")
    args = parser.parse_args()
    url = f"https://localhost:{args.port}/"
    server = start_server(args)
    drivers = []
    others = []
    try:
        # The headers, as any HTTP client sees them.
        connection = http.client.HTTPSConnection("localhost", args.port, context=ssl.create_default_context(cafile=args.ca), timeout=WAIT)
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        csp = response.getheader("Content-Security-Policy") or ""
        check(response.status == 200 and b"<script type=\"module\"" in body, "GET / serves the app")
        check("script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, f"a strict CSP: {csp}")
        check(response.getheader("X-Content-Type-Options") == "nosniff", "nosniff")
        check(response.getheader("Strict-Transport-Security") is None, "no HSTS for localhost (it would pin every port of the name)")
        connection.close()

        a = Page(browser(args), "alice")
        b = Page(browser(args), "dave")
        drivers += [a.driver, b.driver]
        a.driver.get(url)
        b.driver.get(url)

        # Wrong password, then a locked account: each in words; the form stays.
        a.until(lambda: a.find("#account").is_displayed(), "the sign-in form")
        a.find("#account").send_keys("alice")
        a.find("#password").send_keys("not the password" + Keys.ENTER)
        a.until(lambda: "Wrong account name or password" in a.find("#signin-error").text, "the wrong-password message")
        check(a.find("#password").get_attribute("value") == "", "the password field is emptied after a try")
        b.until(lambda: b.find("#account").is_displayed(), "the sign-in form")
        b.find("#account").send_keys("carol")
        b.find("#password").send_keys("carol password" + Keys.ENTER)
        b.until(lambda: "locked" in b.find("#signin-error").text, "the locked-account message")

        # dave's tab loaded the app cold (a new browser profile): what that cost.
        timing = b.driver.execute_script("""
            const nav = performance.getEntriesByType('navigation')[0];
            const form = performance.getEntriesByName('securechat-signin-form')[0];
            const files = performance.getEntriesByType('resource').filter((r) => r.name.startsWith(location.origin));
            return { formMs: form.startTime, files: files.length + 1,
                     transferBytes: nav.transferSize + files.reduce((n, r) => n + r.transferSize, 0),
                     bodyBytes: nav.encodedBodySize + files.reduce((n, r) => n + r.encodedBodySize, 0) };""")
        check(timing["transferBytes"] < 100_000, f"the first load transfers under 100 KB: {timing}")

        # alice signs in with the keyboard alone (the account name is already filled in).
        a.driver.refresh()
        a.sign_in("alice", keyboard_only=True)
        check(a.driver.execute_script("return localStorage.getItem('securechat.account')") == "alice", "only the account name is remembered")
        check("alice password" not in str(a.driver.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")),
              "the password is in no storage")
        b.sign_in("dave")
        a.join("#web")
        b.join("#web")

        # Two browser users in a room, both ways.
        a.say("hello dave, from alice's browser")
        b.until(lambda: b.shows("hello dave, from alice's browser"), "alice's message in dave's browser")
        b.say("hi alice, dave here")
        a.until(lambda: a.shows("hi alice, dave here"), "dave's message in alice's browser")
        a.until(lambda: any("dave" in t for t in a.texts("#member-list li")), "dave in the member list")
        check(any(t.startswith("@") and "alice" in t for t in a.texts("#member-list li")), f"alice is the room's operator: {a.texts('#member-list li')}")

        # ... and privately.
        a.say("/msg dave a private word")
        a.until(lambda: a.find("#conversation-title").text == "dave", "the private conversation in front for alice")
        b.until(lambda: any("@1" in t for t in b.texts("#conversations .badge")), f"the private-message badge for dave: {b.texts('#conversations li')}")
        b.open("alice")
        b.until(lambda: b.shows("a private word"), "the private message")
        b.say("a private answer")
        a.until(lambda: a.shows("a private answer"), "the private answer")
        # A desktop notification for a private message while dave's tab is hidden (permission
        # granted through the DevTools protocol; the page's Notification watched by a spy).
        b.driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["notifications"], "origin": f"https://localhost:{args.port}"})
        b.driver.execute_script("""
            window.shown = [];
            const Real = window.Notification;
            window.Notification = class extends Real { constructor(title, options) { super(title, options); window.shown.push([title, options.body]); } };
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });""")
        a.say("/msg dave are you there?")
        b.until(lambda: b.driver.execute_script("return window.shown.length") > 0, "a notification in dave's hidden tab")
        check(b.driver.execute_script("return window.shown[0]") == ["alice", "are you there?"], f"it names the sender and says the text: {b.driver.execute_script('return window.shown')}")
        b.driver.execute_script("delete document.hidden")
        a.open("#web")
        b.open("#web")

        # A user of a plain IRC socket, with payloads that must stay text.
        bob = IRC(args.port, args.ca, "bob", "bob password")
        others.append(bob)
        bob.send("JOIN #web")
        bob.wait(lambda m: " 366 " in m, "bob's NAMES end")
        evil = "hello from bob <b>not bold</b> <img src=x onerror=window.pwned=1> javascript:window.pwned=2 https://example.org/x?a=1."
        bob.send(f"PRIVMSG #web :{evil}")
        a.until(lambda: a.shows("hello from bob"), "bob's message")
        check(len(a.driver.find_elements(By.CSS_SELECTOR, "#messages b, #messages img")) == 0, "markup from the network stays text")
        check(a.shows("<img src=x onerror=window.pwned=1>"), "the markup is shown as typed")
        links = [e.get_attribute("href") for e in a.driver.find_elements(By.CSS_SELECTOR, "#messages a")]
        check(links == ["https://example.org/x?a=1"], f"only the https link is clickable, without the full stop: {links}")
        check(any(t == "Today" for t in a.texts("#messages .day")), "a day separator")

        # The composer: Enter, /me, Shift+Enter, Tab, ↑.
        a.say("hi bob")
        bob.wait(lambda m: "PRIVMSG #web :hi bob" in m, "alice's message")
        a.say("/me waves")
        bob.wait(lambda m: "PRIVMSG #web :\x01ACTION waves\x01" in m, "alice's action")
        composer = a.find("#input")
        composer.send_keys("line one")
        composer.send_keys(Keys.SHIFT, Keys.ENTER)
        composer.send_keys("line two" + Keys.ENTER)
        bob.wait(lambda m: m.endswith(":line one"), "the first of two lines")
        bob.wait(lambda m: m.endswith(":line two"), "the second line, as its own message")
        composer.send_keys("bo", Keys.TAB)
        check(composer.get_attribute("value") == "bob: ", f"Tab completes the name: {composer.get_attribute('value')!r}")
        composer.send_keys("completed" + Keys.ENTER)
        bob.wait(lambda m: m.endswith(":bob: completed"), "the completed message")
        composer.send_keys(Keys.ARROW_UP)
        check(composer.get_attribute("value") == "bob: completed", "↑ brings back the last message")
        composer.clear()

        # The topic, edited by the room's operator, with a payload: text in every browser.
        a.until(lambda: a.find("#edit-topic").is_displayed(), "the edit-topic button for the operator")
        check(not b.find("#edit-topic").is_displayed(), "no edit-topic button for dave (not an operator, +t)")
        a.find("#edit-topic").click()
        a.find("#topic-input").send_keys("Web topic <img src=x onerror=window.pwned=3>" + Keys.ENTER)
        bob.wait(lambda m: "TOPIC #web :Web topic" in m, "the new topic")
        b.until(lambda: b.find("#topic").text == "Web topic <img src=x onerror=window.pwned=3>", "the topic as text for dave")
        check(all(p.driver.execute_script("return window.pwned === undefined") for p in [a, b]), "no payload ran in either browser")

        # Away: dave's /away shows in alice's member list (away-notify).
        b.say("/away lunch")
        a.until(lambda: any("dave" in t and "(away)" in t for t in a.texts("#member-list li")), "dave shown away")
        b.say("/away")
        a.until(lambda: not any("(away)" in t for t in a.texts("#member-list li")), "dave back")

        # The room browser: LIST with member counts and topics.
        a.find("#browse-rooms").click()
        a.until(lambda: any("#web" in t and "Web topic" in t for t in a.texts("#room-list li")), f"#web in the room browser: {a.texts('#room-list li')}")
        a.driver.execute_script("document.getElementById('room-browser').close()")

        if args.screenshots:
            # For the README: this conversation, desktop and phone, light and dark.
            os.makedirs(args.screenshots, exist_ok=True)
            for scheme in ["light", "dark"]:
                a.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
                for label, (w, h) in [("desktop", (1280, 720)), ("phone", (375, 740))]:
                    a.driver.set_window_size(w, h)
                    a.driver.execute_script("document.getElementById('messages').scrollTop = 1e9")
                    a.driver.save_screenshot(os.path.join(args.screenshots, f"web-{label}-{scheme}.png"))
            a.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
            a.driver.set_window_size(1280, 900)

        # The terminal client and a browser, both ways.
        client = Process([args.client, "--host", "localhost", "--port", str(args.port), "--ca", args.ca, "--user", "erin", "--room", "web"],
                         env={**os.environ, "CHAT_PASSWORD": "erin password"}, stdin=True)
        others.append(client)
        a.until(lambda: any("erin" in t for t in a.texts("#member-list li")), "erin (chat-client) in the member list")
        client.send("hello from the terminal")
        a.until(lambda: a.shows("hello from the terminal"), "chat-client's message in the browser")
        a.say("hello, terminal")
        client.wait_for(lambda l: "#web <alice> hello, terminal" in l, "the browser's message in chat-client")

        # alice signs in elsewhere, which replaces this session: the page says so and does not
        # throw the other one out in turn; bob speaks meanwhile; "Reconnect here" catches up,
        # showing each message once.
        elsewhere = IRC(args.port, args.ca, "alice", "alice password")
        a.until(lambda: "another tab or device" in a.find("#connection-state").text, "the page saying alice signed in elsewhere")
        bob.send("PRIVMSG #web :said while alice was away")
        elsewhere.send("PING :still-here")
        elsewhere.wait(lambda m: "PONG" in m and "still-here" in m, "the other session, not thrown out")
        elsewhere.close()
        a.find("#reconnect").click()
        a.until(lambda: "Connected as" in a.find("#connection-state").text, "the page reconnecting when asked")
        a.open("#web")
        a.until(lambda: a.shows("said while alice was away"), "the catch-up after the reconnect")
        check(a.texts("#messages .text").count("hi bob") == 1, f"nothing shown twice after the reconnect: {a.texts('#messages .text')}")

        # A server restart: the page says so, comes back by itself, and misses nothing.
        bob.close()
        others.remove(bob)
        server.stop()
        a.until(lambda: "Connected as" not in a.find("#connection-state").text, "the page noticing the restart")
        server = start_server(args)
        bob = IRC(args.port, args.ca, "bob", "bob password")
        others.append(bob)
        bob.send("JOIN #web")
        bob.wait(lambda m: " 366 " in m, "bob back in #web")
        bob.send("PRIVMSG #web :said just after the restart")
        a.until(lambda: "Connected as" in a.find("#connection-state").text, "the page reconnecting after the restart")
        a.until(lambda: a.shows("said just after the restart"), "the message said around the reconnect")
        check(a.texts("#messages .text").count("said just after the restart") == 1, "shown once")
        check(a.texts("#messages .text").count("hi bob") == 1, "nothing shown twice after the restart")

        # Older messages load when scrolling up (CHATHISTORY BEFORE).
        for i in range(70):
            bob.send(f"PRIVMSG #web :filler {i}")
        bob.send("PING :filled")
        bob.wait(lambda m: "PONG" in m and "filled" in m, "the fillers sent")
        a.until(lambda: a.shows("filler 69"), "the last filler")
        a.driver.refresh()
        # Said while alice's page was closed: below a "new messages" line from her read marker.
        a.until(lambda: a.find("#account").is_displayed(), "the sign-in form after the reload")
        bob.send("PRIVMSG #web :said while the page was closed")
        bob.send("PING :said")
        bob.wait(lambda m: "PONG" in m and "said" in m, "the message stored")
        a.sign_in("alice")
        a.until(lambda: a.find("#conversation-title").text == "#web", "#web again after signing in anew")
        a.until(lambda: a.shows("filler 69"), "the backlog after signing in")
        a.until(lambda: a.shows("said while the page was closed"), "what was said while the page was closed")
        after_line = a.driver.execute_script(
            "const line = document.querySelector('#messages .unread-line'); return line && line.nextElementSibling ? line.nextElementSibling.innerText : null")
        check(after_line is not None and "said while the page was closed" in after_line, f"the new-messages line is above the first unread message: {after_line!r}")
        check(not a.shows("hello from bob"), "only the latest page is loaded at first")
        a.driver.execute_script("document.getElementById('messages').scrollTop = 0")
        a.until(lambda: a.shows("hello from bob"), "older messages after scrolling up")

        # (Refused connections while the server was down are the browser's own reports of the retries.)
        errors = [e for e in a.driver.get_log("browser") + b.driver.get_log("browser")
                  if e["level"] == "SEVERE" and "ERR_CONNECTION_REFUSED" not in e["message"]]
        check(not errors, f"no errors in the browser consoles: {errors}")
        # The CSP at work: an inline script put into the page does not run.
        ran = a.driver.execute_script(
            "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.append(s); return window.inlineRan === true")
        check(ran is False, "the Content-Security-Policy blocks an inline script")

        if args.timings:
            # alice came back (a page loaded anew, her rooms rejoined at login, a backlog of 50).
            timing["signinToRoomMs"] = a.driver.execute_script("""
                const signin = performance.getEntriesByName('securechat-signin')[0];
                const room = performance.getEntriesByName('securechat-first-room')[0];
                return room.startTime - signin.startTime;""")
            with open(args.timings, "w") as out:
                json.dump(timing, out)
            print(f"timings: {timing}", flush=True)

        # WCAG AA: every visible piece of text against what is behind it, in both themes.
        for scheme in ["light", "dark"]:
            a.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            low = a.driver.execute_script(CONTRAST_JS)
            check(not low, f"text contrast at least 4.5:1 in the {scheme} theme: {low}")
        a.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

        # A phone's width: one column, nothing wider than the screen.
        a.driver.set_window_size(375, 812)
        a.until(lambda: a.find("#toggle-sidebar").is_displayed(), "the conversations button on a phone")
        width = a.driver.execute_script("return document.documentElement.scrollWidth")
        check(width <= 375, f"no sideways scrolling at 375 px: {width}")

    finally:
        for other in others:
            other.close() if isinstance(other, IRC) else other.stop()
        for driver in drivers:
            driver.quit()
        server.stop()
    if failures:
        print(f"{len(failures)} checks failed", flush=True)
        sys.exit(1)
    print("all checks passed", flush=True)


if __name__ == "__main__":
    main()
