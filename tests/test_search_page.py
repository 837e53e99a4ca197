"""The search page: its HTTP API against the index, range requests, upload limits, refusals,
and the page itself driven in headless Chromium (skipped where Chromium is absent)."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.evaluate.embed import embed_meta, embed_waveform
from audioclr.evaluate.store import save_embeddings
from audioclr.search.catalogue import Catalogue
from audioclr.search.index import TrackIndex
from audioclr.search.page import create_app
from audioclr.search.query import Querier
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import load_encoder, save_encoder

pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # conftest.py

SR = 8000
TINY = {"widths": [8, 16], "n_fft": 256, "hop_length": 128, "n_mels": 16, "input_samples": 4000}
FREQS = {"low/a.wav": 220, "low/b.wav": 247, "low/c.wav": 262, "high/d.wav": 1320}
FREQS |= {"high/e.wav": 1480, "high/f.wav": 1568, "mid/g.wav": 660}
CAP = 100_000  # bytes: tracks are ~32 kB, so a cap the tests can cross cheaply


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> tuple[Path, Path]:  # noqa: ANN001
    """Seven tone tracks plus a symlink escaping the audio folder, indexed: (root, index dir)."""
    root = tmp_path_factory.mktemp("page")
    draft = save_encoder(build_encoder("melcnn", SR, **TINY), root / "enc.pt")
    enc = save_encoder(load_encoder(draft, random_init_seed=0).encoder, root / "enc.pt")
    loaded = load_encoder(enc)
    rng = np.random.default_rng(0)
    ids, sources, vecs = [], [], []
    secret = write_audio(root / "outside" / "secret.wav", tone(440, SR, 2.0), SR)
    (root / "audio").mkdir()
    (root / "audio" / "escape.wav").symlink_to(secret)
    for tid, freq in [*FREQS.items(), ("escape.wav", 440)]:
        x = tone(freq, SR, 2.0) + 0.05 * rng.standard_normal(2 * SR).astype(np.float32)
        path = root / "audio" / tid
        if tid != "escape.wav":
            write_audio(path, x, SR, subtype="PCM_16")
        ids.append(tid)
        sources.append(str(path))
        vecs.append(embed_waveform(loaded, x))
    meta = embed_meta(loaded, "last", loaded.input_samples, str(enc))
    save_embeddings(root / "emb", np.stack(vecs), ids, sources, meta)
    assert main(["index", "build", str(root / "emb"), str(root / "idx")]) == 0
    return root, root / "idx"


@pytest.fixture(scope="module")
def server(catalogue) -> Iterator[str]:  # noqa: ANN001
    """The page on a free port in a uvicorn thread; yields its base URL."""
    import uvicorn

    app = create_app(Catalogue.load(catalogue[1]), max_upload_bytes=CAP)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.should_exit = True
    thread.join(10)


def request(
    url: str, method: str, path: str, body=None, headers: dict | None = None, **kw
) -> tuple[int, dict[str, str], bytes]:  # noqa: ANN001
    """One raw HTTP request (the path is sent as given, never normalised): status, headers, body."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, body=body, headers=headers or {}, **kw)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def get_json(url: str, path: str) -> dict:
    status, _, body = request(url, "GET", path)
    assert status == 200, body
    return json.loads(body)


def test_search_neighbours_and_map_match_the_index(server, catalogue) -> None:  # noqa: ANN001
    tix = TrackIndex.load(catalogue[1])
    found = get_json(server, "/api/search?q=LOW")["matches"]
    assert [m["track_id"] for m in found] == ["low/a.wav", "low/b.wav", "low/c.wav"]
    assert all(tix.table.track_of(m["id"]) == m["track_id"] for m in found)

    out = get_json(server, "/api/neighbours?track=high/d.wav&k=4")
    others = [t for t in tix.table.track_ids if t != "high/d.wav"]
    v = tix.vector_of("high/d.wav").astype(np.float64)
    scores = {t: float(tix.vector_of(t) @ v) for t in others}
    expect = sorted(others, key=lambda t: -scores[t])[:4]
    assert [h["track_id"] for h in out["hits"]] == expect
    np.testing.assert_allclose([h["score"] for h in out["hits"]], [scores[t] for t in expect], 1e-5)

    # the map is a PCA of the stored vectors: compare with scikit-learn, up to each axis's sign
    from sklearn.decomposition import PCA

    m = get_json(server, "/api/map")
    assert sorted(m["track_ids"]) == sorted(tix.table.track_ids)
    assert [tix.table.track_of(i) for i in m["ids"]] == m["track_ids"]
    xb = np.stack([tix.vector_of(t) for t in m["track_ids"]]).astype(np.float64)
    ref = PCA(2, svd_solver="full").fit_transform(xb)
    got = np.stack([m["x"], m["y"]], axis=1)
    np.testing.assert_allclose(got, ref * np.sign(np.sum(got * ref, axis=0)), atol=1e-4)
    place = {t: got[r].tolist() for r, t in enumerate(m["track_ids"])}
    assert out["query"]["xy"] == pytest.approx(place["high/d.wav"], abs=1e-4)
    assert all(h["xy"] == pytest.approx(place[h["track_id"]], abs=1e-4) for h in out["hits"])


def test_large_catalogue_map_is_a_seeded_sample_and_hits_keep_their_place(
    catalogue, monkeypatch
) -> None:
    import audioclr.search.faisshelpers as fh

    tix = TrackIndex.load(catalogue[1])
    read = []  # the map reads back its sample only, never a copy of the whole index
    monkeypatch.setattr(fh, "reconstruct_all", lambda *a: pytest.fail("read every vector"))
    real = fh.reconstruct_rows
    monkeypatch.setattr(
        fh, "reconstruct_rows", lambda i, rows: read.append(len(rows)) or real(i, rows)
    )
    cat = Catalogue(tix, Querier(tix), map_sample=5)
    assert read == [5]
    m = cat.map_points()
    assert len(m["ids"]) == 5 and m == Catalogue(tix, Querier(tix), map_sample=5).map_points()
    assert set(m["track_ids"]) < set(tix.table.track_ids)
    xb = np.stack([tix.vector_of(t) for t in m["track_ids"]]).astype(np.float64)
    mean = xb.mean(axis=0)
    out = cat.neighbours_of_track("low/a.wav", k=7)
    for h in out["hits"]:  # every neighbour is placed by the sample's projection, drawn or not
        ref = (tix.vector_of(h["track_id"]) - mean) @ cat.map.axes
        np.testing.assert_allclose(h["xy"], ref, atol=1e-5)
    assert {h["track_id"] for h in out["hits"]} - set(m["track_ids"])  # some were not drawn


def test_audio_range_requests_return_the_file_slice(server, catalogue) -> None:  # noqa: ANN001
    tix = TrackIndex.load(catalogue[1])
    i = tix.table.id_of("low/b.wav")
    data = (catalogue[0] / "audio" / "low" / "b.wav").read_bytes()
    status, head, body = request(server, "GET", f"/audio/{i}")
    assert status == 200 and body == data and head["accept-ranges"] == "bytes"
    assert head["content-type"].startswith("audio/")
    status, head, body = request(server, "GET", f"/audio/{i}", headers={"Range": "bytes=100-1099"})
    assert status == 206 and head["content-range"] == f"bytes 100-1099/{len(data)}"
    assert body == data[100:1100]
    status, head, body = request(server, "GET", f"/audio/{i}", headers={"Range": "bytes=-500"})
    assert status == 206 and body == data[-500:]
    assert head["content-range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"
    status, _, _ = request(server, "GET", f"/audio/{i}", headers={"Range": f"bytes={len(data)}-"})
    assert status == 416


def test_upload_finds_its_track_and_refuses_big_or_non_audio(server, catalogue) -> None:  # noqa: ANN001
    data = (catalogue[0] / "audio" / "high" / "e.wav").read_bytes()
    status, _, body = request(server, "POST", "/api/upload?name=copy.wav&k=3", body=data)
    out = json.loads(body)
    assert status == 200 and out["query"] == {
        **out["query"],
        "kind": "file",
        "track_id": "copy.wav",
    }
    assert out["hits"][0]["track_id"] == "high/e.wav"
    assert out["hits"][0]["score"] == pytest.approx(1.0, abs=1e-4)

    status, _, body = request(server, "POST", "/api/upload?name=notes.txt", body=b"hello " * 100)
    assert status == 415
    assert "'notes.txt' is not audio this server can read" in json.loads(body)["error"]

    big = data * (CAP // len(data) + 1)
    assert len(big) > CAP
    status, _, body = request(server, "POST", "/api/upload?name=big.wav", body=big)
    assert status == 413 and "over this server's cap of 0.1 MB" in json.loads(body)["error"]
    # no Content-Length (chunked): the cap is counted while reading
    chunks = iter([big[j : j + 8192] for j in range(0, len(big), 8192)])
    status, _, body = request(
        server, "POST", "/api/upload?name=big.wav", body=chunks, encode_chunked=True
    )
    assert status == 413 and "cap" in json.loads(body)["error"]


def test_audio_is_served_by_id_only_and_never_outside_the_sources(server, catalogue) -> None:  # noqa: ANN001
    tix = TrackIndex.load(catalogue[1])
    for path in [
        "/audio/../../../../etc/passwd",
        "/audio/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/audio/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/audio/999999",
        "/audio/-1",
        "/audio/low%2Fa.wav",
    ]:
        status, _, body = request(server, "GET", path)
        assert 400 <= status < 500 and b"root:" not in body, (path, status)
    # a catalogue entry whose file is a symlink out of the audio folder is refused, not followed
    status, _, body = request(server, "GET", f"/audio/{tix.table.id_of('escape.wav')}")
    assert status == 403 and "outside the catalogue's sources" in json.loads(body)["error"]
    status, _, body = request(server, "GET", "/api/neighbours?track=../../etc/passwd")
    assert status == 404 and "unknown track id '../../etc/passwd'" in json.loads(body)["error"]


def test_cli_serve_binds_loopback_and_checks_flags(catalogue, monkeypatch, capsys) -> None:  # noqa: ANN001
    import audioclr.search.page as page

    calls = []
    monkeypatch.setattr(page, "serve", lambda app, host, port: calls.append((app, host, port)))
    assert main(["serve", str(catalogue[1])]) == 0
    assert calls[0][1:] == ("127.0.0.1", 8000)
    assert "(8 tracks) at http://127.0.0.1:8000/" in capsys.readouterr().err
    assert main(["serve", str(catalogue[1]), "--host", "0.0.0.0", "--port", "9001"]) == 0
    assert calls[1][1:] == ("0.0.0.0", 9001) and "no login" in capsys.readouterr().err
    assert main(["serve", str(catalogue[1]), "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb must be > 0" in capsys.readouterr().err
    assert main(["serve", str(catalogue[1]), "--audio-root", str(catalogue[0] / "nope")]) == 2
    assert "audio root" in capsys.readouterr().err and len(calls) == 2
    # an audio root replaces the derived roots: the symlink's target folder becomes servable
    cat = Catalogue.load(catalogue[1], roots=[catalogue[0]])
    escape = cat.tix.table.id_of("escape.wav")
    assert cat.audio_path(escape) == (catalogue[0] / "outside" / "secret.wav").resolve()


# ---- the page in a real browser ----------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium through Selenium and the system chromedriver."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "browser tests need Chromium and its driver: apt-get install chromium chromium-driver"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument("--autoplay-policy=no-user-gesture-required")
    opts.add_argument("--window-size=1400,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 20.0):  # noqa: ANN001, ANN201
    """Poll a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.05)


ERROR = "document.getElementById('error').textContent"
TITLE = "document.getElementById('title').textContent"
COUNT_PIXELS = """
const [r, g, b] = arguments, c = document.getElementById('map');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] === r && d[i+1] === g && d[i+2] === b) n++;
return n;"""
QUERY_RGB, HIT_RGB = (220, 38, 38), (245, 158, 11)  # page.js COLOURS


def test_page_in_headless_chromium(server, browser, catalogue, tmp_path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    tix = TrackIndex.load(catalogue[1])
    browser.get(server + "/")
    wait_for(browser, "document.body.dataset.ready === '1'")
    assert browser.find_element(By.ID, "count").text == "8 tracks"
    assert browser.execute_script(COUNT_PIXELS, *QUERY_RGB) == 0  # nothing marked yet
    assert browser.execute_script(COUNT_PIXELS, *HIT_RGB) == 0

    # search by name, open a track, see its neighbours (the index's own answer)
    browser.find_element(By.ID, "q").send_keys("high")
    wait_for(browser, "document.querySelectorAll('#matches button').length === 3")
    buttons = browser.find_elements(By.CSS_SELECTOR, "#matches button")
    assert [b.text for b in buttons] == ["high/d.wav", "high/e.wav", "high/f.wav"]
    buttons[1].click()
    wait_for(browser, "document.querySelectorAll('#hits tbody tr').length === 7")
    shown = [
        r.get_attribute("data-track")
        for r in browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr")
    ]
    expect = get_json(server, "/api/neighbours?track=high/e.wav&k=10")["hits"]
    assert shown == [h["track_id"] for h in expect] and "high/e.wav" not in shown
    assert len(expect) == 7 and {*shown} == {*tix.table.track_ids} - {"high/e.wav"}
    assert browser.execute_script(COUNT_PIXELS, *QUERY_RGB) > 20  # the query is marked on the map
    assert browser.execute_script(COUNT_PIXELS, *HIT_RGB) > 20  # and its neighbours

    # play the first neighbour: the element gets data, can seek (range requests) and advances
    wait_for(browser, "(document.querySelector('#hits audio').play(), true)")
    wait_for(browser, "document.querySelector('#hits audio').readyState >= 2")
    wait_for(browser, "document.querySelector('#hits audio').currentTime > 0")
    seekable_end = browser.execute_script(
        "const a = document.querySelector('#hits audio');"
        "return a.seekable.length ? a.seekable.end(0) : 0;"
    )
    assert seekable_end == pytest.approx(2.0, abs=0.05)

    # upload a copy of a track through the file input: that track comes first
    copy = tmp_path / "my take.wav"
    shutil.copy(catalogue[0] / "audio" / "low" / "c.wav", copy)
    browser.find_element(By.ID, "upload").send_keys(str(copy))
    wait_for(browser, f"{TITLE}.includes('nearest to uploaded file my take.wav')")
    first = browser.find_element(By.CSS_SELECTOR, "#hits tbody tr")
    assert first.get_attribute("data-track") == "low/c.wav"
    assert first.find_elements(By.TAG_NAME, "td")[2].text.startswith(("1.0000", "0.9999"))

    # a non-audio upload and a crafted traversal id are refused, and the page says so
    junk = tmp_path / "notes.txt"
    junk.write_text("not a sound")
    browser.find_element(By.ID, "upload").send_keys(str(junk))
    error = wait_for(browser, f"{ERROR}.includes('notes.txt') && {ERROR}")
    assert "'notes.txt' is not audio this server can read" in error
    browser.get(server + "/#track=..%2F..%2Fetc%2Fpasswd")
    error = wait_for(browser, f"{ERROR}.includes('passwd') && {ERROR}")
    assert "unknown track id '../../etc/passwd'" in error


@pytest.mark.parametrize("factory", ["Flat", "IVF2,Flat", "HNSW8"])
def test_reading_back_some_rows_gives_those_rows_of_the_whole_index(factory) -> None:
    import faiss

    import audioclr.search.faisshelpers as fh

    rng = np.random.default_rng(3)
    xb = rng.standard_normal((40, 8)).astype(np.float32)
    index = faiss.IndexIDMap2(faiss.index_factory(8, factory))
    index.train(xb)
    index.add_with_ids(xb, np.arange(100, 140, dtype=np.int64))
    everything, ids = fh.reconstruct_all(index)
    rows = np.array([0, 7, 39])
    np.testing.assert_allclose(fh.reconstruct_rows(index, rows), everything[rows])
    np.testing.assert_allclose(everything[rows], xb[ids[rows] - 100])  # exact index types
    assert fh.reconstruct_rows(index, np.array([], dtype=np.int64)).shape == (0, 8)
