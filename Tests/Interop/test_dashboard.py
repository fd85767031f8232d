"""The dashboard at /_inetkit/ in a real browser: Debian's headless Chromium driven by selenium
(chromium, chromium-driver and selenium are installed by scripts/test).

It opens the page and sees it go live; sends mail with smtplib and sees it in the list within a
second, without a reload, then reads its body; runs dig and curl and finds both in the feed; opens
an FTP connection's transcript and a UDP datagram's hex; downloads an FTP and a TFTP upload with
their SHA-256; and shows a mail subject, an HTTP path and a DNS name carrying <script> and
<img onerror> payloads as text, with nothing run. Screenshots go to $INETKIT_ARTIFACTS (default
.artifacts/) under dashboard/, and the browser's console must hold no error."""
import ftplib
import hashlib
import io
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from email.message import EmailMessage

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, Server, all_on_port_zero

ARTIFACTS = os.path.join(os.environ.get("INETKIT_ARTIFACTS", os.path.join(ROOT, ".artifacts")), "dashboard")
# A script that ran would set one of these (or the title): none may.
MARK = "__inetkit_xss"


def config(data):
    os.makedirs(os.path.join(data, "alice"), exist_ok=True)
    lines = [line for line in all_on_port_zero().splitlines() if not line.startswith("  ftp:") and not line.startswith("  tftp:")]
    lines.append(f'  ftp: {{ port: 0, users: [{{ name: alice, password: "s3cret-ftp", home: {data}/alice, write: true }}] }}')
    lines.append("  tftp: { port: 0, write: true }")
    return f"data_dir: {data}\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def host():
    data = tempfile.mkdtemp(prefix="inetkit-dashboard-")
    s = Server(config(data))
    s.data = data
    yield s
    assert s.stop() == 0
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    options = Options()
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"]:
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    os.makedirs(ARTIFACTS, exist_ok=True)
    yield driver
    driver.quit()


def url(host, fragment=""):
    return f"http://127.0.0.1:{host.port('http')}/_inetkit/" + (f"#{fragment}" if fragment else "")


def wait(driver, condition, timeout=10, poll=0.05, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=poll).until(lambda d: condition(d), message)


def shot(driver, name):
    path = os.path.join(ARTIFACTS, f"{name}.png")
    driver.save_screenshot(path)
    return path


def errors(driver):
    """The console's errors (a failed load, a script error, a CSP violation), favicon aside."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_live(driver, host, fragment):
    driver.get(url(host, fragment))
    wait(driver, lambda d: text_of(d, "live-state") == "live", message="the stream did not open")
    # A reload would lose this: the page must update in place.
    driver.execute_script("window.__inetkit_loaded = 1")


def texts(driver, selector):
    """The text of what matches, read in one go (the live tables are redrawn all the time)."""
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)", selector)


def click(driver, selector, needle, timeout=5):
    """Clicks the first element matching `selector` whose text holds `needle`."""
    script = "const e = Array.from(document.querySelectorAll(arguments[0])).find(e => e.textContent.includes(arguments[1]));" \
             " if (e) { e.click(); return true; } return false;"
    wait(driver, lambda d: d.execute_script(script, selector, needle), timeout=timeout, message=f"no {selector} with {needle!r}")


def text_of(driver, element_id):
    return driver.execute_script("const e = document.getElementById(arguments[0]); return e ? e.textContent : null;", element_id)


def nothing_ran(driver):
    assert driver.execute_script(f"return window.{MARK} === undefined && document.title === 'InetKit'"), "a payload ran"
    assert driver.find_elements(By.CSS_SELECTOR, "main img, main script, #detail img, #detail script") == []


def send(host, subject, text="hello from the test\n", html=None, to="watcher@inetkit.test"):
    m = EmailMessage()
    m["From"] = "sender@example.test"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(text)
    if html:
        m.add_alternative(html, subtype="html")
    with smtplib.SMTP("127.0.0.1", host.port("smtp"), timeout=10) as smtp:
        smtp.send_message(m)
    return time.time()


def test_the_page_goes_live_with_only_its_own_script(host, browser):
    open_live(browser, host, "overview")
    wait(browser, lambda d: "echo" in texts(d, "#services tbody td:first-child"))
    names = set(texts(browser, "#services tbody td:first-child"))
    assert {"echo", "dns", "http", "smtp", "ftp", "tftp"} <= names
    # A connection held open is listed live, and goes when it closes.
    with socket.create_connection(("127.0.0.1", host.port("echo")), timeout=5) as held:
        held.sendall(b"hi\n")
        wait(browser, lambda d: "echo" in texts(d, "#connections tbody td:nth-child(2)"), message="the open connection is not listed")
        shot(browser, "overview")
    wait(browser, lambda d: "echo" not in texts(d, "#connections tbody td:nth-child(2)"), timeout=15, message="the closed connection stays")
    assert errors(browser) == []
    with urllib.request.urlopen(url(host), timeout=5) as response:
        policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'") and "script-src 'self'" in policy and "unsafe" not in policy


def test_mail_appears_within_a_second_without_reload_and_its_body_reads(host, browser):
    open_live(browser, host, "mail")
    subject = f"dashboard mail {time.time()}"
    landed = send(host, subject, text="the body the dashboard shows\n",
                  html="<p>The <b>HTML</b> part</p><img src=\"http://198.51.100.7/tracker.png\">")
    wait(browser, lambda d: subject in texts(d, "#mail-list .subject"), timeout=5, poll=0.02, message="the mail did not appear")
    seen = time.time()
    assert seen - landed <= 1.0, f"the mail appeared {seen - landed:.2f} s after it landed"
    assert browser.execute_script("return window.__inetkit_loaded") == 1, "the page was reloaded"
    click(browser, "#mail-list li", subject)
    wait(browser, lambda d: "the body the dashboard shows" in (text_of(d, "message-text") or ""))
    assert text_of(browser, "message-subject") == subject
    headers = browser.find_element(By.ID, "message-headers").text
    assert "sender@example.test" in headers and "watcher@inetkit.test" in headers
    frame = browser.find_element(By.ID, "message-html")
    assert frame.get_attribute("sandbox") == "", "the HTML part is framed without any sandbox permission"
    browser.switch_to.frame(frame)
    try:
        wait(browser, lambda d: "The HTML part" in d.find_element(By.TAG_NAME, "body").text)
        # The remote image is not fetched: the frame's policy allows images only as data:.
        assert browser.execute_script("return document.images.length === 1 && document.images[0].naturalWidth === 0")
    finally:
        browser.switch_to.default_content()
    raw = browser.find_element(By.ID, "message-raw").get_attribute("href")
    with urllib.request.urlopen(raw, timeout=5) as response:
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert subject.encode() in response.read()
    shot(browser, "mail")
    assert errors(browser) == [] or all("198.51.100.7" in e["message"] or "Content Security Policy" in e["message"] for e in errors(browser))


def test_deleting_a_message_from_the_dashboard(host, browser):
    open_live(browser, host, "mail")
    subject = f"to be deleted {time.time()}"
    send(host, subject)
    wait(browser, lambda d: subject in texts(d, "#mail-list .subject"), timeout=5)
    click(browser, "#mail-list li", subject)
    wait(browser, lambda d: d.find_elements(By.ID, "message-delete"))
    browser.find_element(By.ID, "message-delete").click()
    wait(browser, lambda d: subject not in texts(d, "#mail-list .subject"), timeout=5, message="the deleted mail is still listed")
    with urllib.request.urlopen(f"http://127.0.0.1:{host.port('http')}/_inetkit/api/v1/messages?subject=" + urllib.parse.quote(subject), timeout=5) as r:
        assert b'"messages":[]' in r.read()


def test_dig_and_curl_show_in_the_feed_and_the_dns_log(host, browser):
    open_live(browser, host, "events")
    name = f"feed-{int(time.time() * 1000)}.inetkit.test"
    path = f"/seen-by-the-dashboard-{int(time.time() * 1000)}"
    subprocess.run(["dig", "+short", "+tries=1", "-p", str(host.port("dns", "udp")), "@127.0.0.1", name, "A"], timeout=10, capture_output=True)
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{host.port('http')}{path}"], timeout=10, check=True)
    wait(browser, lambda d: any(name + "." in t for t in texts(d, "#feed td.summary")), timeout=5, message="dig is not in the feed")
    wait(browser, lambda d: any(path in t for t in texts(d, "#feed td.summary")), timeout=5, message="curl is not in the feed")
    # The service filter keeps only DNS.
    choose = "const s = document.getElementById('filter-service'); s.value = arguments[0]; s.dispatchEvent(new Event('change'));"
    wait(browser, lambda d: d.execute_script(choose + " return s.value === arguments[0];", "dns"))
    wait(browser, lambda d: set(texts(d, "#feed tbody td:nth-child(3)")) == {"dns"})
    shot(browser, "events")
    browser.execute_script(choose, "")
    browser.get(url(host, "dns"))
    wait(browser, lambda d: name + "." in texts(d, "#dns td.name"), timeout=5, message="the name is not in the DNS log")
    row = next(r for r in texts(browser, "#dns tbody tr") if name + "." in r)
    assert "NXDOMAIN" in row or "NOERROR" in row
    shot(browser, "dns")


def test_a_connection_transcript_and_a_datagram_hex_view(host, browser):
    open_live(browser, host, "events")
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", host.port("ftp"), timeout=10)
    ftp.login("alice", "s3cret-ftp")
    ftp.pwd()
    ftp.quit()
    # A closed connection's transcript still opens from its events in the feed.
    wait(browser, lambda d: any("alice" in t for t in texts(d, "#feed td.summary")), timeout=5)
    click(browser, "#feed tbody tr", "ftp.login")
    wait(browser, lambda d: "C: USER alice" in (text_of(d, "transcript") or ""), timeout=5)
    transcript = text_of(browser, "transcript")
    assert "C: PASS ****" in transcript and "s3cret-ftp" not in transcript
    assert "S: 230" in transcript and "C: PWD" in transcript and "S: 221" in transcript
    shot(browser, "transcript")
    browser.find_element(By.ID, "detail-close").click()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(b"hello-hex", ("127.0.0.1", host.port("echo", "udp")))
        udp.recvfrom(100)
    click(browser, "#feed tbody tr.kind-datagram", "9 B in")
    wait(browser, lambda d: text_of(d, "hex-in"))
    dump = text_of(browser, "hex-in")
    assert "68 65 6c 6c 6f 2d 68 65 78" in dump and "hello-hex" in dump
    assert "hello-hex" in text_of(browser, "hex-out")
    shot(browser, "hex")
    browser.find_element(By.ID, "detail-close").click()


def test_uploads_are_listed_with_their_sha256_and_served_as_downloads(host, browser):
    open_live(browser, host, "uploads")
    payload = os.urandom(5000) + b"<script>not run</script>"
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", host.port("ftp"), timeout=10)
    ftp.login("alice", "s3cret-ftp")
    ftp.storbinary("STOR page.html", io.BytesIO(payload))
    ftp.quit()
    folder = tempfile.mkdtemp(prefix="inetkit-tftp-put-")
    try:
        tftp_payload = os.urandom(3000)
        with open(os.path.join(folder, "firmware.bin"), "wb") as f:
            f.write(tftp_payload)
        subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(host.port("tftp", "udp")), "-c", "put", "firmware.bin"], cwd=folder, timeout=20, check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for data in (payload, tftp_payload):
        digest = hashlib.sha256(data).hexdigest()
        wait(browser, lambda d: digest in texts(d, "#uploads td.hash"), timeout=10, message=f"the upload {digest} is not listed")
    rows = browser.execute_script("""return Array.from(document.querySelectorAll('#uploads tbody tr')).map(r => {
        const a = r.querySelector('a'); return [r.querySelector('td.hash').textContent, r.textContent, a ? a.href : null, a ? a.getAttribute('download') : null]; })""")
    rows = {row[0]: row for row in rows}
    for data, service in ((payload, "ftp"), (tftp_payload, "tftp")):
        _, row_text, href, download = rows[hashlib.sha256(data).hexdigest()]
        assert service in row_text
        assert href and download
        with urllib.request.urlopen(href, timeout=5) as response:
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Disposition"].startswith("attachment")
            assert response.read() == data
    shot(browser, "uploads")


def test_hostile_subject_path_and_dns_name_are_shown_as_text(host, browser):
    open_live(browser, host, "events")
    subject = f"<img src=x onerror=\"window.{MARK}=1;document.title='pwned'\"><script>window.{MARK}=2</script>"
    path = f"/<img src=x onerror=window.{MARK}=3>"
    name = f"<script>window.{MARK}=4</script>.inetkit.test"
    send(host, subject, html=f"<script>parent.{MARK}=5;document.title='pwned'</script><img src=x onerror=\"parent.document.title='pwned'\">")
    subprocess.run(["curl", "-s", "-o", "/dev/null", "-g", f"http://127.0.0.1:{host.port('http')}" + path.replace(" ", "%20")], timeout=10, check=True)
    subprocess.run(["dig", "+short", "+tries=1", "-p", str(host.port("dns", "udp")), "@127.0.0.1", name, "A"], timeout=10, capture_output=True)
    wait(browser, lambda d: any(name + "." in t for t in texts(d, "#feed td.summary")), timeout=5, message="the DNS name is not in the feed")
    wait(browser, lambda d: any(f"onerror=window.{MARK}=3" in t for t in texts(d, "#feed td.summary")), timeout=5, message="the path is not in the feed")
    nothing_ran(browser)
    shot(browser, "hostile-feed")
    browser.get(url(host, "dns"))
    wait(browser, lambda d: name + "." in texts(d, "#dns td.name"), timeout=5)
    nothing_ran(browser)
    browser.get(url(host, "mail"))
    wait(browser, lambda d: subject in texts(d, "#mail-list .subject"), timeout=5, message="the subject is not shown as text")
    click(browser, "#mail-list li", subject)
    wait(browser, lambda d: text_of(d, "message-subject") == subject)
    wait(browser, lambda d: d.find_elements(By.ID, "message-html"))
    time.sleep(0.5)  # the frame loads: were its script to run, it would have by now
    nothing_ran(browser)
    shot(browser, "hostile-mail")
    # What the console says: the sandbox blocked the frame's script; nothing else failed.
    unexpected = [e for e in errors(browser) if "sandboxed" not in e["message"] and "/x" not in e["message"]]
    assert unexpected == [], unexpected


def test_filters_by_peer_and_text(host, browser):
    open_live(browser, host, "events")
    marker = f"/filter-{int(time.time() * 1000)}"
    subprocess.run(["curl", "-s", "-o", "/dev/null", "--interface", "127.0.0.2", f"http://127.0.0.1:{host.port('http')}{marker}"], timeout=10)
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{host.port('http')}{marker}-other"], timeout=10)
    wait(browser, lambda d: any(marker + "-other" in t for t in texts(d, "#feed td.summary")), timeout=5)
    box = browser.find_element(By.ID, "filter-text")
    box.send_keys(marker)
    wait(browser, lambda d: all(marker in t for t in texts(d, "#feed td.summary")) and len(texts(d, "#feed td.summary")) >= 1)
    # The other request came from 127.0.0.2: the peer filter leaves it out.
    peers = browser.find_element(By.ID, "filter-peer")
    peers.send_keys("127.0.0.1:")
    try:
        wait(browser, lambda d: texts(d, "#feed td.summary") and all("-other" in t for t in texts(d, "#feed td.summary")), timeout=3)
    except TimeoutException:
        pytest.fail(f"the peer filter left {texts(browser, '#feed td.summary')}")
