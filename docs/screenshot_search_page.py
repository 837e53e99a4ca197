"""Screenshot of the search page (docs/search-page.png) in headless Chromium.

Serves INDEX on a free port, opens a track, waits for its neighbours and the map, and saves
the window. Needs Debian's ``chromium`` and ``chromium-driver`` (``make chromium``).

    python docs/screenshot_search_page.py demo_out/index --track flute/flute_003.wav
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from audioclr.search.catalogue import Catalogue
from audioclr.search.page import create_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--track", required=True, help="track id to open")
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--out", default=str(Path(__file__).with_name("search-page.png")))
    args = ap.parse_args()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(Catalogue.load(args.index), max_upload_bytes=50 * 2**20)
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1400,900", "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        driver.get(url)
        while driver.execute_script("return document.body.dataset.ready") != "1":
            time.sleep(0.05)
        driver.execute_script(f"document.getElementById('k').value = {args.k}")
        driver.find_element("id", "q").send_keys(args.track.split("/")[0])
        driver.get(f"{url}#track={quote(args.track, safe='')}")
        while len(driver.find_elements("css selector", "#hits tbody tr")) != args.k:
            time.sleep(0.05)
        height = driver.execute_script(
            "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
        )
        metrics = {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # the whole page
        time.sleep(0.5)  # let the matches list and players settle
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        srv.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
