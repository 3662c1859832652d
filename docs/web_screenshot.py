"""Make docs/web-demo.png: the web page with the shipped model, an example photo and a reference.

    python docs/web_screenshot.py        (needs the dev extra and Chromium: sh tests/install-browser.sh)
"""
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chromalift import Colorizer
from chromalift.apps.web import Service, create_app

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = uvicorn.Server(uvicorn.Config(create_app(Service(Colorizer.load())), host="127.0.0.1", port=port,
                                       log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_function("document.querySelectorAll('#examples img').length > 0")
    page.click("img[data-example='lake.jpg']")
    page.wait_for_function("document.body.dataset.state === 'done'")
    page.click("img[data-example='ref-seaside.jpg']")
    page.wait_for_function("document.body.dataset.state === 'done' && "
                           "document.getElementById('status').textContent.includes('seaside')")
    out = Path(__file__).parent / "web-demo.png"
    page.screenshot(path=str(out), full_page=True)
    browser.close()
server.should_exit = True
print(f"wrote {out}")
