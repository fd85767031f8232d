"""HTTPS with a certificate from `inetkit cert --self-signed`: curl over HTTP/2 (ALPN) and
HTTP/1.1, Python's ssl module, and the HTTPS service staying off without a certificate."""
import os
import re
import socket
import ssl
import subprocess
import tempfile

import pytest

from conftest import BIN, Server, wait_for


@pytest.fixture(scope="module")
def tls_site():
    d = tempfile.mkdtemp(prefix="inetkit-tls-")
    out = subprocess.run([BIN, "cert", "--self-signed", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert oct(os.stat(f"{d}/key.pem").st_mode & 0o777) == "0o600"
    root = os.path.join(d, "site")
    os.makedirs(root)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>secure</h1>\n")
    with open(os.path.join(root, "one.html"), "w") as f:
        f.write("x" * 1024)
    # Larger than the file cache takes: over plain HTTP it would go by sendfile.
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(3 << 20))
    s = Server(f"""bind: [127.0.0.1]
shutdown_grace: 1
services:
  https: {{ port: 0, root: {root}, cert: {d}/cert.pem, key: {d}/key.pem, header_timeout: 1s,
           max_uri_bytes: 512, max_body_bytes: 1000, max_header_bytes: 4096, file_cache_max_file: 65536 }}
""", args=["--services", "https"])
    s.certdir = d
    s.base = f"https://127.0.0.1:{s.port('https')}"
    yield s
    assert s.stop() == 0


def test_curl_negotiates_http2_by_alpn(tls_site):
    out = subprocess.run(["curl", "-s", "--cacert", f"{tls_site.certdir}/cert.pem", "--http2", "-w", "\n%{http_version} %{http_code}",
                          tls_site.base + "/"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "<h1>secure</h1>\n\n2 200", out.stdout + out.stderr


def test_curl_http1_1_over_tls_and_status_page(tls_site):
    out = subprocess.run(["curl", "-s", "--cacert", f"{tls_site.certdir}/cert.pem", "--http1.1", "-w", "\n%{http_version} %{http_code}",
                          tls_site.base + "/_inetkit/status.json"], capture_output=True, text=True, timeout=30)
    assert out.stdout.endswith("\n1.1 200") and '"name":"https"' in out.stdout, out.stdout + out.stderr


def test_access_lines_name_the_https_service(tls_site):
    # The fast path (a cached file over HTTP/1.1), the full pipeline (a 404) and HTTP/2.
    for version, path in [("--http1.1", "/one.html?line=fast"), ("--http1.1", "/missing?line=full"), ("--http2", "/one.html?line=h2")]:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", f"{tls_site.certdir}/cert.pem", version, tls_site.base + path],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
    def lines():
        return [line for line in tls_site.read_stderr().splitlines() if "?line=" in line]
    wait_for(lambda: len(lines()) >= 3, timeout=5)
    lines = lines()
    assert len(lines) == 3, lines
    for line in lines:
        assert "service=https" in line and "service=http " not in line, line


def test_python_ssl_verifies_the_certificate_for_localhost(tls_site):
    context = ssl.create_default_context(cafile=f"{tls_site.certdir}/cert.pem")
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_site.port("https")), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"


def test_plain_http_on_the_tls_port_fails_cleanly(tls_site):
    with socket.create_connection(("127.0.0.1", tls_site.port("https")), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(1000)
        assert not data.startswith(b"HTTP/1.1 200")


def test_https_stays_off_without_a_certificate():
    s = Server("bind: [127.0.0.1]\nservices:\n  echo: { port: 0 }\n  http: { port: 0 }\n", args=["--services", "echo,http"])
    assert "https" not in s.ports
    assert s.stop() == 0
    bad = Server("bind: [127.0.0.1]\nservices:\n  https: { port: 0, cert: /nonexistent.pem, key: /nonexistent.pem }\n", wait=False)
    assert bad.proc.wait(10) == 2
    assert "services.https.cert" in bad.read_stderr()


def test_idle_tls_connection_is_closed_after_header_timeout(tls_site):
    import time
    context = ssl.create_default_context(cafile=f"{tls_site.certdir}/cert.pem")
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_site.port("https")), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            started = time.time()
            assert tls.recv(100) == b""
            assert time.time() - started < 6


def curl(site, version, path="/", *extra):
    out = subprocess.run(["curl", "-s", "--cacert", f"{site.certdir}/cert.pem", version, "-o", "-", "-w", "\n%{http_version} %{http_code}",
                          *extra, site.base + path], capture_output=True, timeout=30)
    body, _, status = out.stdout.rpartition(b"\n")
    return body, status.decode()


@pytest.mark.parametrize("version,shown", [("--http1.1", "1.1"), ("--http2", "2")])
def test_a_file_past_the_cache_comes_whole_over_tls(tls_site, version, shown):
    """Over plain HTTP such a file goes by sendfile; under TLS it is streamed as bytes."""
    body, status = curl(tls_site, version, "/big.bin")
    assert status == f"{shown} 200"
    with open(os.path.join(tls_site.certdir, "site", "big.bin"), "rb") as f:
        assert body == f.read()
    body, status = curl(tls_site, version, "/big.bin", "-r", "100-199")
    assert status == f"{shown} 206" and len(body) == 100


@pytest.mark.parametrize("version,shown", [("--http1.1", "1.1"), ("--http2", "2")])
def test_the_limits_and_their_replies_are_those_of_plain_http(tls_site, version, shown):
    """One HTTP stack: max_uri_bytes, max_body_bytes and max_header_bytes answered 414, 413
    and 431 over HTTP/1.1 and HTTP/2 inside TLS, as over plain HTTP."""
    assert curl(tls_site, version, "/" + "a" * 600)[1] == f"{shown} 414"
    assert curl(tls_site, version, "/", "--data-binary", "x" * 2000)[1] == f"{shown} 413"
    assert curl(tls_site, version, "/", "-H", "X-Big: " + "b" * 6000)[1] == f"{shown} 431"
    assert curl(tls_site, version, "/", "-H", "X-Small: " + "b" * 1000)[1] == f"{shown} 200"


def test_pipelined_requests_over_tls_are_answered_in_order(tls_site):
    context = ssl.create_default_context(cafile=f"{tls_site.certdir}/cert.pem")
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_site.port("https")), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
            tls.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"200", b"200", b"404"], data[:500]
    assert data.count(b"<h1>secure</h1>") == 3


def test_a_client_that_never_finishes_the_handshake_is_closed(tls_site):
    import time
    with socket.create_connection(("127.0.0.1", tls_site.port("https")), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        started = time.time()
        assert raw.recv(100) == b""
        assert time.time() - started < 6


def h2load(url, *args):
    out = subprocess.run(["h2load", *args, url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.mark.parametrize("path,count", [("/one.html", 3000), ("/", 1000), ("/_inetkit/status.json", 300), ("/big.bin", 20)])
def test_h2load_gets_every_answer_whole(tls_site, path, count):
    """Cached files are answered from the connection's frames, the rest by a stream of the full
    server; both at once over multiplexed streams, every answer complete."""
    out = h2load(tls_site.base + path, "-c", "4", "-m", "10", "-n", str(count))
    assert f"requests: {count} total, {count} started, {count} done, {count} succeeded" in out, out
    assert f"status codes: {count} 2xx, 0 3xx, 0 4xx, 0 5xx" in out, out


def test_http2_answers_are_those_of_http1(tls_site):
    """The same fields and body over HTTP/2 from the frames as over HTTP/1.1, and 304 for the
    ETag sent back."""
    def head(version):
        out = subprocess.run(["curl", "-s", "--cacert", f"{tls_site.certdir}/cert.pem", version, "-D", "-", "-o", "/dev/null",
                              tls_site.base + "/one.html"], capture_output=True, text=True, timeout=30)
        return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in out.stdout.splitlines()[1:] if ":" in line)}
    h1, h2 = head("--http1.1"), head("--http2")
    for field in ("content-length", "etag", "last-modified", "content-type", "server", "accept-ranges"):
        assert h1[field] == h2[field], (field, h1, h2)
    body, status = curl(tls_site, "--http2", "/one.html", "-H", f"If-None-Match: {h2['etag']}")
    assert status == "2 304" and body == b""
    body, status = curl(tls_site, "--http2", "/one.html?v=1")
    assert status == "2 200" and body == b"x" * 1024


def worker_rss_kib(server):
    """RSS of the host's processes (the supervisor and its workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            if int(entry) != server.proc.pid and int(stat.rsplit(")", 1)[1].split()[1]) != server.proc.pid:
                continue
            total += int(re.search(r"VmRSS:\s+(\d+) kB", open(f"/proc/{entry}/status").read()).group(1))
        except (OSError, AttributeError):
            continue
    return total


def test_an_http2_client_that_asks_and_never_reads_is_not_read_either(tls_site):
    """A client that opens the flow-control windows wide, then sends requests for a cached file
    without ever reading: the server stops taking frames once its output waits, so the client
    cannot push more than the socket buffers hold, and the server does not grow."""
    import struct
    import time
    import hpack

    def frame(kind, flags, stream, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

    context = ssl.create_default_context(cafile=f"{tls_site.certdir}/cert.pem")
    context.set_alpn_protocols(["h2"])
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", tls_site.port("https")))
    tls = context.wrap_socket(raw, server_hostname="localhost")
    assert tls.selected_alpn_protocol() == "h2"
    curl(tls_site, "--http2", "/one.html")  # warm: the answer cached on every loop it may land on
    before = worker_rss_kib(tls_site)
    tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, struct.pack(">HI", 4, 2**31 - 1)) + frame(4, 1, 0, b"")
                + frame(8, 0, 0, struct.pack(">I", 2**31 - 1 - 65535)))
    encoder = hpack.Encoder()
    tls.settimeout(1.0)
    sent = 0
    stream = 1
    deadline = time.time() + 8
    try:
        while time.time() < deadline and stream < 2**31 - 2000:
            batch = b""
            for _ in range(500):
                block = encoder.encode([(":method", "GET"), (":scheme", "https"), (":authority", "localhost"), (":path", "/one.html")])
                batch += frame(1, 0x5, stream, block)
                stream += 2
            tls.sendall(batch)
            sent += len(batch)
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    after = worker_rss_kib(tls_site)
    print(f"\nh2 client sent {sent / 1024:.0f} KiB of requests ({(stream - 1) // 2} streams); "
          f"host RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB")
    assert sent < 16 << 20, f"the server kept reading: {sent} bytes of requests went in"
    assert after - before < 32 * 1024, f"RSS grew by {(after - before) / 1024:.1f} MiB"
    # Everyone else is served meanwhile.
    assert curl(tls_site, "--http2", "/one.html")[1] == "2 200"
    tls.close()


def test_a_long_poll_over_http2_outlives_the_idle_timeout(tls_site):
    """HTTP/2's idle timeout (header_timeout, 1 s here) closes connections without an open
    stream: a request still being answered, here a 3 s long poll, keeps its connection."""
    import time
    started = time.time()
    body, status = curl(tls_site, "--http2", "/_inetkit/api/v1/messages/latest?to=nobody@inetkit.test&wait=3s")
    assert status == "2 404", (status, body[:200])
    assert time.time() - started >= 2.9
