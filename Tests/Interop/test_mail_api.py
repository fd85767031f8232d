"""The mail API under /_inetkit/api/v1/messages, driven by smtplib and urllib as an integration
test would: latest?wait= returns as soon as the mail lands; list and search by to, from and
subject; one message with its decoded text and HTML parts and attachments; the raw .eml as
received; delete. And `inetkit mail wait` for shell scripts."""
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

import pytest

from conftest import BIN, Server, all_on_port_zero


@pytest.fixture(scope="module")
def host():
    data = tempfile.mkdtemp(prefix="inetkit-mail-api-")
    s = Server(f"data_dir: {data}\n" + all_on_port_zero())
    s.data = data
    yield s
    assert s.stop() == 0
    shutil.rmtree(data, ignore_errors=True)


def get(server, path, method="GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{server.port('http')}/_inetkit/api/v1{path}", method=method)
    with urllib.request.urlopen(request, timeout=70) as response:
        body = response.read()
        return response.status, dict(response.headers), body


def get_json(server, path):
    return json.loads(get(server, path)[2])


def send(server, message):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
        smtp.send_message(message)


def mail(to, subject, text="hello\n", html=None, sender="alice@example.test", attachment=None):
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m.set_content(text)
    if html:
        m.add_alternative(html, subtype="html")
    if attachment:
        m.add_attachment(attachment[1], maintype="application", subtype="octet-stream", filename=attachment[0])
    return m


def test_latest_with_wait_returns_as_soon_as_the_mail_lands(host):
    result = {}

    def wait():
        started = time.time()
        result["message"] = get_json(host, "/messages/latest?to=waiter%40inetkit.test&wait=10")
        result["returned"] = time.time()
        result["started"] = started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.0)
    before = time.time()
    send(host, mail("waiter@inetkit.test", "the one we wait for"))
    landed = time.time()  # the 250 came: the message is in the Maildir
    waiter.join(15)
    assert result["message"]["subject"] == "the one we wait for"
    assert result["message"]["mailbox"] == "waiter@inetkit.test"
    # It waited for the mail, and came back within a second of its landing.
    assert result["returned"] >= before
    assert result["returned"] - landed < 1.0, result["returned"] - landed
    # Without a match it waits the time asked, then 404.
    started = time.time()
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(host, "/messages/latest?to=nobody-here%40inetkit.test&wait=1")
    assert missing.value.code == 404
    assert 0.9 <= time.time() - started < 5
    for bad in ("wait=61", "wait=abc", "wait=-1", "limit=0"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(host, "/messages/latest?" + bad)
        assert refused.value.code == 400, bad


def test_search_view_raw_and_delete(host):
    send(host, mail("bob@inetkit.test", "Quarterly <script>alert(1)</script> report",
                    text="plain text ünïcode\n", html="<p>the <b>html</b> part <img src=x onerror=alert(1)></p>",
                    sender="carol@example.test", attachment=("data.bin", b"\x00\x01\x02binary")))
    send(host, mail("dave@inetkit.test", "Ünïcode subject", sender="erin@example.test"))
    found = get_json(host, "/messages/latest?subject=quarterly&wait=5")
    listed = get_json(host, "/messages?to=bob%40inetkit.test")["messages"]
    assert [m["id"] for m in listed] == [found["id"]]
    assert get_json(host, "/messages?from=carol")["messages"][0]["id"] == found["id"]
    assert get_json(host, "/messages?subject=" + urllib.parse.quote("ünïcode"))["messages"][0]["from"] == "erin@example.test"
    assert get_json(host, "/messages?to=nobody-at-all")["messages"] == []
    everything = get_json(host, "/messages?limit=1000")["messages"]
    assert len(everything) >= 3
    times = [m["received"] for m in everything]
    assert times == sorted(times, reverse=True)

    quoted = urllib.parse.quote(found["id"], safe="")
    message = get_json(host, f"/messages/{quoted}")
    assert message["subject"] == "Quarterly <script>alert(1)</script> report"
    assert message["text"] == "plain text ünïcode\n"
    assert "<b>html</b>" in message["html"]
    assert message["attachments"] == [{"filename": "data.bin", "content_type": "application/octet-stream", "size": 9}]
    assert ["From", "carol@example.test"] in message["headers"]

    status, headers, raw = get(host, f"/messages/{quoted}/raw")
    assert status == 200
    assert headers["Content-Type"] == "message/rfc822"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in headers["Content-Security-Policy"]
    assert raw.startswith(b"Return-Path: <carol@example.test>")
    assert b"Content-Disposition: attachment; filename=\"data.bin\"" in raw

    status, _, _ = get(host, f"/messages/{quoted}", method="DELETE")
    assert status == 204
    for path in (f"/messages/{quoted}", f"/messages/{quoted}/raw"):
        with pytest.raises(urllib.error.HTTPError) as gone:
            get(host, path)
        assert gone.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as again:
        get(host, f"/messages/{quoted}", method="DELETE")
    assert again.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as not_allowed:
        get(host, "/messages", method="DELETE")
    assert not_allowed.value.code == 405
    assert not_allowed.value.headers["Allow"] == "GET, HEAD"


def test_inetkit_mail_wait_prints_the_message_when_it_arrives(host):
    waiting = subprocess.Popen([BIN, "mail", "wait", "--to", "script@inetkit.test", "--timeout", "10", "--data-dir", host.data],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    send(host, mail("script@inetkit.test", "for the script"))
    out, err = waiting.communicate(timeout=15)
    assert waiting.returncode == 0, err
    assert "for the script" in out
    # Nothing arrives: exit status 1 after the timeout.
    started = time.time()
    late = subprocess.run([BIN, "mail", "wait", "--to", "never@inetkit.test", "--timeout", "1", "--data-dir", host.data],
                          capture_output=True, text=True, timeout=15)
    assert late.returncode == 1
    assert "no message" in late.stderr
    assert time.time() - started < 5
