#!/usr/bin/python3
"""spec/browser.py - drive headless Chromium through chromedriver (W3C WebDriver).

Used by spec/ui_spec.lua. Reads a JSON list of steps on stdin, runs them in
one browser session and prints one JSON object: {"ok": true, "results": [...]}
or {"ok": false, "error": "...", "step": N, "results": [...]}. Steps:

  {"go": URL}                          load a page
  {"wait": CSS, "timeout": S}          until an element matches (default 15 s)
  {"wait_text": CSS, "text": T}        until the element's text contains T
  {"text": CSS}                        -> the element's visible text
  {"texts": CSS}                       -> the texts of all matches
  {"attr": CSS, "name": A}             -> an attribute of the element
  {"count": CSS}                       -> how many elements match
  {"click": CSS}                       click it
  {"type": CSS, "value": V}            clear it and type V
  {"shot": PATH}                       PNG screenshot of the window
  {"sleep": S}                         pause
  {"js": SCRIPT}                       -> what the script returns

The client is the WebDriver protocol itself (JSON over HTTP to chromedriver,
Debian's chromium-driver), with nothing but the standard library.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request



def eid(ref):
    """The id of a WebDriver element reference (its one value)."""
    return next(iter(ref.values()))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Driver:
    def __init__(self):
        self.port = free_port()
        exe = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False)
        # The sanitizer build preloads its runtime into the specs' processes:
        # the browser is not ours and must not inherit it.
        env = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")}
        self.proc = subprocess.Popen([exe, "--port=%d" % self.port], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 30
        while True:
            try:
                self.call("GET", "/status")
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("chromedriver did not start (log: %s)" % self.log.name)
                time.sleep(0.1)
        self.profile = tempfile.mkdtemp(prefix="lash-chromium-")
        binary = shutil.which("chromium") or "/usr/bin/chromium"
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--user-data-dir=" + self.profile,
                "--no-first-run", "--disable-extensions"]}}}}
        res = self.call("POST", "/session", caps)
        self.sid = res["sessionId"] if "sessionId" in res else res["value"]["sessionId"]

    def call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError("webdriver %s %s: %s" % (method, path, e.read().decode()[:400]))

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.sid, path), body)["value"]

    def find(self, css, timeout=15):
        deadline = time.time() + timeout
        while True:
            found = self.s("POST", "/elements", {"using": "css selector", "value": css})
            if found:
                return eid(found[0])
            if time.time() > deadline:
                raise RuntimeError("no element matches %r within %ss" % (css, timeout))
            time.sleep(0.1)

    def quit(self):
        try:
            self.call("DELETE", "/session/%s" % self.sid, timeout=10)
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def run(d, step):
    if "go" in step:
        d.s("POST", "/url", {"url": step["go"]})
        return None
    if "wait" in step:
        d.find(step["wait"], step.get("timeout", 15))
        return None
    if "wait_text" in step:
        deadline = time.time() + step.get("timeout", 15)
        while True:
            try:
                text = d.s("GET", "/element/%s/text" % d.find(step["wait_text"], 1))
            except RuntimeError:
                text = ""
            if step["text"] in text:
                return text
            if time.time() > deadline:
                raise RuntimeError("%r never showed %r (last: %r)" % (step["wait_text"], step["text"], text))
            time.sleep(0.1)
    if "text" in step:
        return d.s("GET", "/element/%s/text" % d.find(step["text"]))
    if "texts" in step:
        found = d.s("POST", "/elements", {"using": "css selector", "value": step["texts"]})
        return [d.s("GET", "/element/%s/text" % eid(e)) for e in found]
    if "attr" in step:
        return d.s("GET", "/element/%s/attribute/%s" % (d.find(step["attr"]), step["name"]))
    if "count" in step:
        return len(d.s("POST", "/elements", {"using": "css selector", "value": step["count"]}))
    if "click" in step:
        d.s("POST", "/element/%s/click" % d.find(step["click"]), {})
        return None
    if "type" in step:
        el = d.find(step["type"])
        d.s("POST", "/element/%s/clear" % el, {})
        d.s("POST", "/element/%s/value" % el, {"text": step["value"]})
        return None
    if "shot" in step:
        png = base64.b64decode(d.s("GET", "/screenshot"))
        with open(step["shot"], "wb") as f:
            f.write(png)
        return len(png)
    if "sleep" in step:
        time.sleep(step["sleep"])
        return None
    if "js" in step:
        return d.s("POST", "/execute/sync", {"script": step["js"], "args": []})
    raise RuntimeError("unknown step %r" % step)


def main():
    steps = json.load(sys.stdin)
    results = []
    d = None
    try:
        d = Driver()
        for i, step in enumerate(steps):
            try:
                results.append(run(d, step))
            except Exception as e:
                print(json.dumps({"ok": False, "error": str(e), "step": i + 1, "results": results}))
                return 1
        print(json.dumps({"ok": True, "results": results}))
        return 0
    except Exception as e:
        print(json.dumps({"ok": False, "error": str(e), "step": 0, "results": results}))
        return 1
    finally:
        if d is not None:
            d.quit()


if __name__ == "__main__":
    sys.exit(main())
