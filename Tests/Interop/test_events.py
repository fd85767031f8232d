"""The host's events: every worker's exchanges reach one ring and the journal, in order, with
increasing ids; curl -N reads them live as server-sent events and a reconnection with
Last-Event-ID loses nothing; a reader that stops reading is told it lagged; secrets are masked;
`inetkit events` prints the journal; off loopback the API asks for a token."""
import ftplib
import hashlib
import io
import json
import os
import poplib
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, ROOT_ENV, Server, all_on_port_zero

def config(data, extra=""):
    os.makedirs(os.path.join(data, "alice"), exist_ok=True)
    text = all_on_port_zero()
    # POP3 and FTP with accounts (they replace their port-0 lines: a key may appear once).
    lines = [line for line in text.splitlines() if not line.startswith("  pop3:") and not line.startswith("  ftp:")]
    lines.append('  pop3: { port: 0, users: [{ name: carol@inetkit.test, password: "s3cret-pop" }] }')
    lines.append(f'  ftp: {{ port: 0, users: [{{ name: alice, password: "s3cret-ftp", home: {data}/alice, write: true }}] }}')
    return f"data_dir: {data}\n" + "\n".join(lines) + "\n" + extra


@pytest.fixture(scope="module")
def host():
    data = tempfile.mkdtemp(prefix="inetkit-events-")
    s = Server(config(data, "events:\n  heartbeat: 1\n"))
    s.data = data
    yield s
    assert s.stop() == 0
    shutil.rmtree(data, ignore_errors=True)


def api(server, path, headers=None):
    request = urllib.request.Request(f"http://127.0.0.1:{server.port('http')}/_inetkit{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def all_events(server, since=0):
    """Every event after `since` up to now (each request adds events of its own: the pages stop
    at the last id the first one saw)."""
    events = []
    target = None
    while True:
        page = api(server, f"/api/v1/events?since={since}&limit=1000")
        target = page["last_id"] if target is None else target
        events += [e for e in page["events"] if e["id"] <= target]
        if not page["events"] or page["next"] > target:
            return events
        since = page["next"] - 1


def wait_for(server, predicate, timeout=10, since=0):
    deadline = time.time() + timeout
    while True:
        events = all_events(server, since)
        found = [e for e in events if predicate(e)]
        if found or time.time() > deadline:
            return found, events
        time.sleep(0.1)


def test_every_worker_reports_its_exchanges_in_order_with_secrets_masked(host):
    start = api(host, "/api/v1/events?limit=1")["last_id"]
    http = host.port("http")
    # HTTP with curl, DNS with dig over UDP and TCP.
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{http}/events-probe.html?x=<b>"], check=True, timeout=10)
    dns = host.port("dns", "udp")
    subprocess.run(["dig", "+short", "-p", str(dns), "@127.0.0.1", "events.inetkit.test", "A"], check=True, timeout=10, capture_output=True)
    subprocess.run(["dig", "+tcp", "+short", "-p", str(host.port("dns")), "@127.0.0.1", "tcp-events.inetkit.test", "TXT"],
                   check=True, timeout=10, capture_output=True)
    # Mail in with smtplib, out again with poplib (RETR, DELE).
    with smtplib.SMTP("127.0.0.1", host.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("alice@example.test", ["carol@inetkit.test"], "Subject: events\r\n\r\nhello\r\n")
    pop = poplib.POP3("127.0.0.1", host.port("pop3"), timeout=10)
    pop.user("carol@inetkit.test")
    pop.pass_("s3cret-pop")
    pop.retr(1)
    pop.dele(1)
    pop.quit()
    # FTP: an upload, whose SHA-256 the event carries.
    payload = os.urandom(300_000)
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", host.port("ftp"), timeout=10)
    ftp.login("alice", "s3cret-ftp")
    ftp.storbinary("STOR upload.bin", io.BytesIO(payload))
    ftp.quit()
    # SNMP with net-snmp: a community the agent knows, and one it does not.
    snmp = host.port("snmp", "udp")
    subprocess.run(["snmpget", "-v2c", "-c", "public", f"127.0.0.1:{snmp}", "1.3.6.1.2.1.1.5.0"], check=True, timeout=10, capture_output=True)
    subprocess.run(["snmpget", "-v2c", "-c", "not-the-community", "-t", "0.3", "-r", "0", f"127.0.0.1:{snmp}", "1.3.6.1.2.1.1.5.0"],
                   timeout=10, capture_output=True)
    # A simple service's datagram.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"ping", ("127.0.0.1", host.port("echo", "udp")))
        assert s.recvfrom(100)[0] == b"ping"

    wanted = {
        "http.request": lambda e: e.get("target") == "/events-probe.html?x=<b>" and e["status"] == 404 and e["method"] == "GET",
        "dns.query": lambda e: e.get("qname") == "events.inetkit.test." and e["qtype"] == "A" and e["transport"] == "udp",
        "dns.query.tcp": lambda e: e.get("qname") == "tcp-events.inetkit.test." and e["qtype"] == "TXT" and e["transport"] == "tcp",
        "smtp.message": lambda e: e.get("from") == "alice@example.test" and e["to"] == ["carol@inetkit.test"],
        "pop3.retr": lambda e: e.get("message") == 1,
        "pop3.dele": lambda e: e.get("message") == 1,
        "ftp.transfer": lambda e: e.get("direction") == "upload" and e["bytes"] == len(payload)
        and e["sha256"] == hashlib.sha256(payload).hexdigest(),
        "snmp.request": lambda e: e.get("pdu") == "getRequest" and e["oids"] == ["1.3.6.1.2.1.1.5.0"] and e["community_ok"] is True,
        "snmp.refused": lambda e: e.get("kind") == "snmp.request" and e.get("community_ok") is False,
        "datagram": lambda e: e.get("service") == "echo" and e["bytes_in"] == 4 and e["hex_in"] == "70696e67",
    }
    deadline = time.time() + 10
    while True:
        events = all_events(host, start)
        missing = [name for name, test in wanted.items()
                   if not any(e["kind"] == name.split(".tcp")[0].replace(".refused", ".request") and test(e) for e in events)]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not missing, f"no event for {missing} among {[e['kind'] for e in events]}"

    # One id each, increasing; every connection's events in order: open first, close last.
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    by_connection = {}
    for e in events:
        if "conn" in e:
            by_connection.setdefault(e["conn"], []).append(e["kind"])
    for conn, kinds in by_connection.items():
        if kinds[0] == "connection.open":
            assert "connection.open" not in kinds[1:], kinds
            if "connection.close" in kinds:
                assert kinds[-1] == "connection.close", (conn, kinds)
    # The transcripts show the commands with the passwords masked, and never the passwords.
    lines = [e["text"] for e in events if e["kind"] == "line"]
    assert "PASS ****" in lines
    assert any(line.startswith("RETR 1") for line in lines)
    assert any(line.startswith("220 ") for line in lines)
    raw = json.dumps(events)
    for secret in ("s3cret-pop", "s3cret-ftp", "not-the-community"):
        assert secret not in raw
    # The message's body is not in the transcript.
    assert "hello" not in lines


def test_curl_reads_the_stream_and_a_reconnection_with_last_event_id_loses_nothing(host):
    url = f"http://127.0.0.1:{host.port('http')}/_inetkit/events?service=echo"
    first = subprocess.Popen(["curl", "-N", "-s", url], stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        echo = ("127.0.0.1", host.port("echo", "udp"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for index in range(5):
                s.sendto(f"one-{index}".encode(), echo)
            seen = read_ids(first.stdout, 5)
        assert len(seen) == 5
    finally:
        first.kill()
        first.wait()
    # Meanwhile, more events; the new connection names the last one it saw.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for index in range(7):
            s.sendto(f"two-{index}".encode(), echo)
    time.sleep(0.3)
    second = subprocess.Popen(["curl", "-N", "-s", "-H", f"Last-Event-ID: {seen[-1]}", url], stdout=subprocess.PIPE)
    try:
        replayed = read_ids(second.stdout, 7)
    finally:
        second.kill()
        second.wait()
    echo_ids = [e["id"] for e in all_events(host, seen[-1]) if e["service"] == "echo"]
    assert replayed == echo_ids[:7], (replayed, echo_ids)


def read_ids(stream, count, timeout=10):
    """The ids of the first `count` events on a text/event-stream."""
    ids = []
    deadline = time.time() + timeout
    os.set_blocking(stream.fileno(), False)
    buffer = b""
    while len(ids) < count and time.time() < deadline:
        chunk = stream.read(65536)
        if chunk:
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    if line.startswith(b"id: "):
                        ids.append(int(line[4:]))
        else:
            time.sleep(0.05)
    return ids


def test_an_idle_stream_gets_heartbeats_and_an_unknown_start_is_refused(host):
    with socket.create_connection(("127.0.0.1", host.port("http")), timeout=5) as s:
        s.sendall(b"GET /_inetkit/events?service=no-such-service HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        deadline = time.time() + 4
        while b": heartbeat" not in got and time.time() < deadline:
            got += s.recv(4096)
        assert b"text/event-stream" in got
        assert b": heartbeat" in got
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{host.port('http')}/_inetkit/events", headers={"Last-Event-ID": "12abc"}), timeout=5)
    assert refused.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as bad:
        api(host, "/api/v1/events?limit=100000")
    assert bad.value.code == 400


def test_a_reader_that_stops_reading_is_told_it_lagged_and_memory_stays_bounded():
    data = tempfile.mkdtemp(prefix="inetkit-events-lag-")
    server = Server(config(data, "events:\n  ring_size: 200\n  heartbeat: 1\n"))
    try:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port("http")))
        stalled.sendall(b"GET /_inetkit/events HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        # Far more than the ring holds, while the reader reads nothing (each event ~ 300 bytes:
        # the socket buffers fill and the writer waits).
        echo = ("127.0.0.1", server.port("echo", "udp"))
        flood(echo, b"x" * 40, 3000)
        rss_before = http_worker_rss(server)
        flood(echo, b"y" * 40, 3000)
        rss_after = http_worker_rss(server)
        # What the stalled stream holds does not grow with what it missed.
        assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)
        stalled.settimeout(5)
        got = b""
        deadline = time.time() + 10
        while b"stream.lagged" not in got and time.time() < deadline:
            chunk = stalled.recv(65536)
            if not chunk:
                break
            got += chunk
        assert b'"kind":"stream.lagged"' in got
        stalled.close()
    finally:
        assert server.stop() == 0
        shutil.rmtree(data, ignore_errors=True)


def flood(address, payload, count):
    """`count` datagrams, in bursts the echo service keeps up with, then a pause."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for index in range(count):
            s.sendto(payload, address)
            if index % 200 == 0:
                time.sleep(0.01)
    time.sleep(0.5)


def http_worker_rss(server):
    """KiB resident in the process serving HTTP (the worker, or the one process)."""
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{server.port('http')}"], capture_output=True, text=True).stdout
    pids = sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
    return total


def test_the_journal_keeps_every_event_and_the_cli_prints_it(host):
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{host.port('http')}/journal-probe"], check=True, timeout=10)
    journal = os.path.join(host.data, "events", "events.jsonl")
    deadline = time.time() + 5
    while time.time() < deadline:
        with open(journal) as f:
            text = f.read()
        if "/journal-probe" in text:
            break
        time.sleep(0.1)
    lines = [json.loads(line) for line in text.splitlines()]
    ids = [e["id"] for e in lines if "id" in e]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert any(e.get("target") == "/journal-probe" for e in lines)
    out = subprocess.run([BIN, "events", "--data-dir", host.data, "--service", "http", "--kind", "http.request", "-n", "3"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    assert "GET /journal-probe HTTP/1.1 -> 404" in out, out
    assert len(out.strip().splitlines()) == 3
    as_json = subprocess.run([BIN, "events", "--data-dir", host.data, "--json", "-n", "2"], capture_output=True, text=True, timeout=10, check=True).stdout
    tail = [json.loads(line) for line in as_json.splitlines()]
    assert len(tail) == 2 and tail[0]["id"] < tail[1]["id"]
    # --follow prints what comes next.
    follow = subprocess.Popen([BIN, "events", "--data-dir", host.data, "--follow", "-n", "0", "--kind", "http.request"],
                              stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{host.port('http')}/followed"], check=True, timeout=10)
        os.set_blocking(follow.stdout.fileno(), False)
        got = ""
        deadline = time.time() + 5
        while "/followed" not in got and time.time() < deadline:
            got += (follow.stdout.read() or b"").decode()
            time.sleep(0.1)
        assert "GET /followed" in got
    finally:
        follow.kill()
        follow.wait()


def test_connections_and_services_are_listed(host):
    with socket.create_connection(("127.0.0.1", host.port("smtp")), timeout=5) as s:
        s.recv(100)
        deadline = time.time() + 5
        while time.time() < deadline:
            open_now = api(host, "/api/v1/connections")["connections"]
            mine = [c for c in open_now if c["service"] == "smtp" and c["peer"] == "127.0.0.1:%d" % s.getsockname()[1]]
            if mine:
                break
            time.sleep(0.05)
        assert mine and mine[0]["port"] == host.port("smtp")
    services = {s["name"]: s for s in api(host, "/api/v1/services")["services"]}
    assert services["dns"]["state"] == "running"


def test_the_api_matches_its_openapi_document_under_schemathesis(host):
    """schemathesis (PyPI) generates requests from the document, valid and not, and checks every
    answer against it: status codes, content types, schemas."""
    url = f"http://127.0.0.1:{host.port('http')}/_inetkit/api/openapi.json"
    document = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/events", "/services", "/connections", "/messages", "/messages/latest", "/messages/{id}",
                                      "/messages/{id}/raw", "/messages/{id}/html", "/uploads", "/uploads/{upload}"}
    # A message to find (the other operations then see 200s, not only 404s).
    with smtplib.SMTP("127.0.0.1", host.port("smtp"), timeout=10) as smtp:
        smtp.sendmail("schema@example.test", ["carol@inetkit.test"], "Subject: for schemathesis\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n")
    # And an upload, so that the uploads list has one.
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", host.port("ftp"), timeout=10)
    ftp.login("alice", "s3cret-ftp")
    ftp.storbinary("STOR for-schemathesis.bin", io.BytesIO(b"uploaded"))
    ftp.quit()
    # latest?wait= waits up to a minute for a match that random filters never make: it has a
    # test of its own (test_mail_api.py).
    run = subprocess.run([shutil.which("schemathesis") or "schemathesis", "run", url, "--checks", "all", "--max-examples", "60",
                          "--request-timeout", "10", "--seed", "1", "--exclude-operation-id", "latestMessage"],
                         capture_output=True, text=True, timeout=300, cwd=tempfile.mkdtemp(prefix="inetkit-schemathesis-"))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout, run.stdout[-4000:]


def test_ids_go_on_across_a_restart():
    data = tempfile.mkdtemp(prefix="inetkit-events-restart-")
    try:
        server = Server(config(data))
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{server.port('http')}/a"], check=True, timeout=10)
        time.sleep(0.3)
        last = api(server, "/api/v1/events?limit=1")["last_id"]
        assert server.stop() == 0
        server = Server(config(data))
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{server.port('http')}/b"], check=True, timeout=10)
        found, events = wait_for(server, lambda e: e.get("target") == "/b")
        assert found and found[0]["id"] > last
        assert server.stop() == 0
    finally:
        shutil.rmtree(data, ignore_errors=True)


def netns_available():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"inetkit-probe-{os.getpid()}"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return ok


@pytest.mark.skipif(not netns_available(), reason="needs root and ip netns")
def test_off_loopback_the_api_and_stream_ask_for_a_token():
    name = f"inetkit-events-{os.getpid()}"
    address = "10.213.7.1"
    data = tempfile.mkdtemp(prefix="inetkit-events-token-")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        def inside(*cmd, **kw):
            return subprocess.run(["ip", "netns", "exec", name, *cmd], **kw)
        inside("ip", "link", "set", "lo", "up", check=True)
        # A non-loopback address (on the namespace's own lo: no module needed).
        inside("ip", "addr", "add", f"{address}/32", "dev", "lo", check=True)
        ports = os.path.join(data, "ports.json")
        cfg = os.path.join(data, "config.yaml")
        with open(cfg, "w") as f:
            f.write(f"data_dir: {data}\nbind: [{address}, 127.0.0.1]\nservices:\n  http: {{ port: 0 }}\n")
        log = open(os.path.join(data, "stderr.log"), "w")
        proc = subprocess.Popen(["ip", "netns", "exec", name, BIN, "serve", "--config", cfg, "--ports-file", ports, "--services", "http"],
                                env={**os.environ, **ROOT_ENV}, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.time() + 30
            while not os.path.exists(ports) and time.time() < deadline:
                time.sleep(0.05)
            port = json.load(open(ports))["http"]["tcp"]

            def curl(url, *args):
                out = inside("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", *args, url, capture_output=True, text=True)
                return out.stdout
            api_url = f"http://{address}:{port}/_inetkit/api/v1/services"
            assert curl(api_url) == "401"
            assert curl(f"http://{address}:{port}/_inetkit/events") == "401"
            assert curl(api_url, "-H", "Authorization: Bearer wrong-token-wrong-token") == "401"
            # Over loopback in the same host, no token is asked.
            assert curl(f"http://127.0.0.1:{port}/_inetkit/api/v1/services") == "200"
            token = open(os.path.join(data, "dashboard.token")).read().strip()
            assert len(token) >= 32
            assert curl(api_url, "-H", f"Authorization: Bearer {token}") == "200"
            assert curl(api_url + f"?token={token}") == "200"
            # The token was made at start and printed there, once.
            printed = open(os.path.join(data, "stderr.log")).read()
            assert printed.count(token) == 1 and "dashboard token" in printed, printed
            # The page itself opens without the token, but shows nothing of the host until given it.
            def page(url):
                return inside("curl", "-s", "--max-time", "3", url, capture_output=True, text=True).stdout
            bare = page(f"http://{address}:{port}/_inetkit/")
            assert 'id="token-box"' in bare and "<td>http</td>" not in bare
            assert "<td>http</td>" in page(f"http://{address}:{port}/_inetkit/?token={token}")
            assert "<td>http</td>" in page(f"http://127.0.0.1:{port}/_inetkit/")
            assert curl(f"http://{address}:{port}/_inetkit/dashboard.js") == "200"
        finally:
            proc.terminate()
            proc.wait(20)
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_the_session_report_names_every_dns_name_url_and_message_of_the_session():
    data = tempfile.mkdtemp(prefix="inetkit-report-")
    try:
        # An earlier session: not in the report of the next one.
        earlier = Server(config(data))
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{earlier.port('http')}/from-the-earlier-session"],
                       check=True, timeout=10)
        assert earlier.stop() == 0
        server = Server(config(data))
        http = server.port("http")
        names = ["alpha.inetkit.test", "beta.inetkit.test", "<script>alert(1)</script>.inetkit.test"]
        for name in names:
            subprocess.run(["dig", "+short", "+tries=1", "-p", str(server.port("dns", "udp")), "@127.0.0.1", name, "A"],
                           timeout=10, capture_output=True)
        paths = ["/report-one.html", "/report-two?q=<img src=x onerror=alert(1)>"]
        for path in paths:
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-g", f"http://127.0.0.1:{http}" + path.replace(" ", "%20")],
                           check=True, timeout=10)
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("reporter@example.test", ["carol@inetkit.test"], "Subject: for the report\r\n\r\nhi\r\n")
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port("ftp"), timeout=10)
        ftp.login("alice", "s3cret-ftp")
        ftp.storbinary("STOR reported.bin", io.BytesIO(b"report me"))
        ftp.quit()
        time.sleep(0.5)
        # On demand, while the host runs.
        out = subprocess.run([BIN, "report", "--data-dir", data], capture_output=True, text=True, timeout=30, check=True).stdout
        for name in ("alpha.inetkit.test. A", "beta.inetkit.test. A"):
            assert name in out, out
        assert "/report-one.html (GET, 404)" in out
        assert "from <reporter@example.test> to carol@inetkit.test" in out
        assert "upload /reported.bin by alice, 9 bytes, SHA-256 " + hashlib.sha256(b"report me").hexdigest() in out
        assert "ftp: alice / **** accepted" in out
        assert "s3cret-ftp" not in out
        assert "from-the-earlier-session" not in out
        # At shutdown: text, JSON and HTML, the latest ones under fixed names.
        assert server.stop() == 0
        reports = os.path.join(data, "reports")
        text = open(os.path.join(reports, "latest.txt")).read()
        report = json.load(open(os.path.join(reports, "latest.json")))
        page = open(os.path.join(reports, "latest.html")).read()
        assert "alpha.inetkit.test. A" in report["dns_names"]
        assert any("/report-two?q=<img%20src=x%20onerror=alert(1)>" in url for url in report["http_urls"]), report["http_urls"]
        assert report["mail"] and "reporter@example.test" in report["mail"][0]["text"]
        assert {s["service"] for s in report["services"]} >= {"dns", "http", "smtp", "ftp"}
        assert "alpha.inetkit.test. A" in text and "/report-one.html" in text
        # The page runs nothing of what it shows: every captured text is escaped.
        assert "<script>" not in page and "<img" not in page
        assert "&lt;img%20src=x%20onerror=alert(1)&gt;" in page
        assert "&lt;script&gt;" in page
        assert "Content-Security-Policy" in page and "default-src 'none'" in page
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_report_show_credentials_records_the_passwords_tried():
    """With report.show_credentials: true, the login events carry the password tried (FTP and
    POP3, accepted or not) and the report shows them; transcripts still mask PASS."""
    data = tempfile.mkdtemp(prefix="inetkit-credentials-")
    try:
        server = Server(config(data, "report:\n  show_credentials: true\n"))
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port("ftp"), timeout=10)
        with pytest.raises(ftplib.error_perm):
            ftp.login("alice", "guessed-wrong")
        ftp.close()
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port("ftp"), timeout=10)
        ftp.login("alice", "s3cret-ftp")
        ftp.quit()
        pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
        pop.user("carol@inetkit.test")
        pop.pass_("s3cret-pop")
        pop.quit()
        found, events = wait_for(server, lambda e: e["kind"] == "pop3.login")
        logins = {(e["kind"], e.get("password"), e["ok"]) for e in events if e["kind"].endswith(".login")}
        assert ("ftp.login", "guessed-wrong", False) in logins and ("ftp.login", "s3cret-ftp", True) in logins, logins
        assert ("pop3.login", "s3cret-pop", True) in logins, logins
        assert not [e for e in events if e["kind"] == "line" and "s3cret" in e.get("text", "")], "a transcript holds a password"
        deadline = time.time() + 10
        while True:  # the journal is written a moment after the ring
            out = subprocess.run([BIN, "report", "--data-dir", data], capture_output=True, text=True, timeout=30, check=True).stdout
            if "pop3: carol" in out or time.time() > deadline:
                break
            time.sleep(0.2)
        assert "ftp: alice / guessed-wrong refused" in out and "ftp: alice / s3cret-ftp accepted" in out, out
        assert "pop3: carol@inetkit.test / s3cret-pop accepted" in out, out
        assert server.stop() == 0
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_the_simple_services_report_their_tcp_exchanges(host):
    """Each TCP connection to a simple service has one `exchange` event: the first bytes in and
    out, as hex, and the line daytime and qotd answered, as text."""
    start = api(host, "/api/v1/events?limit=1")["last_id"]
    for name, payload in (("echo", b"echo me\r\n"), ("discard", b"into the void"), ("daytime", b""), ("qotd", b""), ("time", b""), ("chargen", b"")):
        with socket.create_connection(("127.0.0.1", host.port(name)), timeout=5) as s:
            if payload:
                s.sendall(payload)
            if name in ("echo", "chargen", "daytime", "qotd", "time"):
                s.recv(100)
            if name == "discard":
                time.sleep(0.2)
    found, events = wait_for(host, lambda e: e["kind"] == "exchange" and e["service"] == "chargen", since=start)
    exchanges = {e["service"]: e for e in events if e["kind"] == "exchange"}
    assert set(exchanges) == {"echo", "discard", "daytime", "qotd", "time", "chargen"}, exchanges
    assert exchanges["echo"]["hex_in"] == b"echo me\r\n".hex() and exchanges["echo"]["hex_out"] == b"echo me\r\n".hex()
    assert exchanges["discard"]["hex_in"] == b"into the void".hex() and "hex_out" not in exchanges["discard"]
    assert exchanges["daytime"]["text_out"].endswith("\r\n") and len(exchanges["daytime"]["text_out"]) > 10
    assert exchanges["time"]["bytes_out"] == 4 and "text_out" not in exchanges["time"]
    assert exchanges["chargen"]["bytes_out"] > 0 and bytes.fromhex(exchanges["chargen"]["hex_out"]).startswith(b" !\"#$%")
    # Each is one event of its connection, between its open and its close.
    for name, event in exchanges.items():
        mine = [e["kind"] for e in events if e.get("conn") == event["conn"]]
        assert mine[0] == "connection.open" and mine.count("exchange") == 1, (name, mine)


def test_ntp_syslog_finger_and_ident_describe_their_exchanges(host):
    """The services added after the events each say what was asked: NTP the request's version
    and mode and the stratum answered (or why it was refused), syslog each message as parsed
    (from logger over UDP and TCP), finger the user asked for, ident the ports and the answer."""
    start = api(host, "/api/v1/events?limit=1")["last_id"]
    ntp = host.port("ntp", "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"\x23" + bytes(47), ("127.0.0.1", ntp))  # NTPv4, client
        assert len(s.recvfrom(100)[0]) == 48
        s.sendto(b"\x17" + bytes(47), ("127.0.0.1", ntp))  # NTPv2, mode 7 (ntpdc monlist)
    syslog_udp, syslog_tcp = host.port("syslog", "udp"), host.port("syslog", "tcp")
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(syslog_udp), "--udp", "--rfc5424", "-t", "demo", "-p", "local3.err",
                    "udp <b>payload</b>"], check=True, timeout=10)
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(syslog_tcp), "--tcp", "--octet-count", "-t", "tcpdemo", "-p", "mail.info",
                    "over tcp"], check=True, timeout=10)
    with socket.create_connection(("127.0.0.1", host.port("finger")), timeout=5) as s:
        s.sendall(b"/W nobody-here\r\n")
        assert b"no such user" in s.recv(1000)
    with socket.create_connection(("127.0.0.1", host.port("finger")), timeout=5) as s:
        s.sendall(b"someone@elsewhere\r\n")
        assert b"refused" in s.recv(1000)
    # ident about a connection this test really holds open (to HTTP), then one it does not.
    with socket.create_connection(("127.0.0.1", host.port("http")), timeout=5) as held:
        mine = held.getsockname()[1]
        with socket.create_connection(("127.0.0.1", host.port("ident")), timeout=5) as s:
            s.sendall(f"{host.port('http')} , {mine}\r\n".encode())
            assert b"HIDDEN-USER" in s.recv(1000)
    with socket.create_connection(("127.0.0.1", host.port("ident")), timeout=5) as s:
        s.sendall(b"1 , 2\r\n")
        assert b"NO-USER" in s.recv(1000)

    def complete(events):
        kinds = [e["kind"] for e in events]
        return kinds.count("ntp.request") >= 2 and kinds.count("syslog.message") >= 2 and kinds.count("finger.query") >= 2 \
            and kinds.count("ident.query") >= 2
    deadline = time.time() + 10
    while True:
        events = all_events(host, start)
        if complete(events) or time.time() > deadline:
            break
        time.sleep(0.1)
    ntp_events = [e for e in events if e["kind"] == "ntp.request"]
    assert ntp_events[0]["version"] == 4 and ntp_events[0]["mode"] == "client" and "stratum" in ntp_events[0] and "leap" in ntp_events[0]
    assert ntp_events[0]["transport"] == "udp" and ntp_events[0]["bytes_out"] == 48 and len(ntp_events[0]["hex_in"]) == 96
    assert ntp_events[1]["mode"] == "private" and "never answered" in ntp_events[1]["refused"] and ntp_events[1]["bytes_out"] == 0
    logs = {e["transport"]: e for e in events if e["kind"] == "syslog.message"}
    assert logs["udp"]["app"] == "demo" and logs["udp"]["facility"] == "local3" and logs["udp"]["severity"] == "err"
    assert logs["udp"]["message"] == "udp <b>payload</b>" and logs["udp"]["format"] == "rfc5424" and logs["udp"]["port"] == syslog_udp
    assert logs["tcp"]["app"] == "tcpdemo" and logs["tcp"]["facility"] == "mail" and logs["tcp"]["message"] == "over tcp"
    # A TCP sender's messages are events of its connection.
    assert [e["kind"] for e in events if e.get("conn") == logs["tcp"]["conn"]][0] == "connection.open"
    # No generic datagram event doubles the syslog one.
    assert not [e for e in events if e["kind"] == "datagram" and e["service"] in ("syslog", "ntp")]
    fingers = [e for e in events if e["kind"] == "finger.query"]
    assert fingers[0]["user"] == "nobody-here" and fingers[0]["verbose"] is True and fingers[0]["outcome"] == "no such user"
    assert fingers[1]["outcome"] == "forwarding refused"
    idents = [e for e in events if e["kind"] == "ident.query"]
    assert idents[0]["server_port"] == host.port("http") and idents[0]["client_port"] == mine and idents[0]["answer"] == "HIDDEN-USER"
    assert idents[1]["answer"] == "NO-USER"
    # The journal's view in the terminal names them too (once the supervisor has written them).
    deadline = time.time() + 10
    while True:
        out = subprocess.run([BIN, "events", "--data-dir", host.data, "-n", "2000"], capture_output=True, text=True, timeout=30).stdout
        if "NO-USER" in out or time.time() > deadline:
            break
        time.sleep(0.2)
    assert "NTPv4 client -> stratum" in out and "local3.err" in out and "nobody-here -> no such user" in out and "HIDDEN-USER" in out
