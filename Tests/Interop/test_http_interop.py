"""The HTTP service driven by curl, Python's http.client and raw sockets."""
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, Server, http_raw

BIG = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def site():
    outside = tempfile.mkdtemp(prefix="inetkit-outside-")
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write("secret")
    root = tempfile.mkdtemp(prefix="inetkit-site-")
    os.makedirs(os.path.join(root, "docs", "empty"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<h1>home</h1>\n")
    with open(os.path.join(root, "docs", "hello.txt"), "w") as f:
        f.write("hello, world\n")
    with open(os.path.join(root, "docs", "page.html"), "w") as f:
        f.write("<p>page</p>")
    with open(os.path.join(root, "docs", "big.bin"), "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(BIG >> 20):
            f.write(block)
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "leak.txt"))
    os.symlink(outside, os.path.join(root, "outdir"))
    config = f"""bind: [127.0.0.1]
shutdown_grace: 1
services:
  http: {{ port: 0, root: {root}, header_timeout: 1s, max_body_bytes: 1000 }}
  echo: {{ port: 0 }}
"""
    s = Server(config, args=["--services", "http,echo"])
    s.root = root
    s.base = f"http://127.0.0.1:{s.port('http')}"
    yield s
    assert s.stop() == 0


def curl(*args, binary=False):
    out = subprocess.run(["curl", "-s", "--max-time", "20", *args], capture_output=True, timeout=30)
    return out.stdout if binary else out.stdout.decode(errors="replace")


def status(site, path, *args):
    return curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", *args, site.base + path)


def raw(site, data, read_timeout=5):
    return http_raw(site, data, read_timeout)


class TestCurl:
    def test_get_file_with_type_length_validators(self, site):
        head = curl("-i", site.base + "/docs/hello.txt")
        assert head.startswith("HTTP/1.1 200 OK")
        assert "Content-Length: 13" in head
        assert "Content-Type: text/plain" in head
        assert "ETag: " in head and "Last-Modified: " in head
        assert head.endswith("hello, world\n")

    def test_head_has_headers_and_no_body(self, site):
        out = curl("-I", site.base + "/docs/hello.txt")
        assert out.startswith("HTTP/1.1 200 OK") and "Content-Length: 13" in out
        assert "hello" not in out

    def test_ranges(self, site):
        assert curl("-r", "0-4", site.base + "/docs/hello.txt") == "hello"
        assert curl("-r", "7-", site.base + "/docs/hello.txt") == "world\n"
        assert curl("-H", "Range: bytes=-6", site.base + "/docs/hello.txt") == "world\n"
        out = curl("-i", "-r", "0-4", site.base + "/docs/hello.txt")
        assert out.startswith("HTTP/1.1 206") and "Content-Range: bytes 0-4/13" in out
        out = curl("-i", "-r", "100-200", site.base + "/docs/hello.txt")
        assert out.startswith("HTTP/1.1 416") and "Content-Range: bytes */13" in out

    def test_conditional_requests(self, site):
        headers = curl("-I", site.base + "/docs/hello.txt")
        etag = [l.split(": ", 1)[1].strip() for l in headers.splitlines() if l.lower().startswith("etag:")][0]
        assert status(site, "/docs/hello.txt", "-H", f"If-None-Match: {etag}") == "304"
        assert status(site, "/docs/hello.txt", "-H", 'If-None-Match: "other"') == "200"
        assert status(site, "/docs/hello.txt", "-z", "Mon, 01 Jan 2001 00:00:00 GMT") == "200"
        modified = [l.split(": ", 1)[1].strip() for l in headers.splitlines() if l.lower().startswith("last-modified:")][0]
        assert status(site, "/docs/hello.txt", "-H", f"If-Modified-Since: {modified}") == "304"

    def test_keep_alive_several_urls_on_one_connection(self, site):
        out = subprocess.run(["curl", "-sv", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                              site.base + "/docs/hello.txt", site.base + "/docs/page.html", site.base + "/"],
                             capture_output=True, text=True, timeout=20)
        assert out.stderr.count("Re-using existing connection") == 2, out.stderr

    def test_http_1_0(self, site):
        out = curl("-i", "--http1.0", site.base + "/docs/hello.txt")
        assert " 200 " in out.splitlines()[0] and out.endswith("hello, world\n")

    def test_folder_index_redirect_and_listing(self, site):
        assert curl(site.base + "/") == "<h1>home</h1>\n"
        out = curl("-i", site.base + "/docs")
        assert out.startswith("HTTP/1.1 301") and "Location: /docs/" in out
        listing = curl("-L", site.base + "/docs")
        for name in ("hello.txt", "page.html", "big.bin", "empty/"):
            assert name in listing
        assert status(site, "/docs/empty/") == "200"

    def test_escapes_end_in_403_or_404(self, site):
        for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/docs/..%2f..%2fetc/passwd", "/docs%5c..%5csecret",
                     "/a%00b", "/leak.txt", "/outdir/secret.txt", "//etc/passwd", "/docs/../../secret.txt"]:
            code = status(site, path)
            assert code in ("403", "404"), (path, code)
        assert "secret" not in curl("--path-as-is", site.base + "/outdir/secret.txt")

    def test_other_methods_get_405_with_allow(self, site):
        out = curl("-i", "-X", "POST", site.base + "/docs/hello.txt")
        assert out.startswith("HTTP/1.1 405") and "Allow: GET, HEAD" in out
        assert status(site, "/nothing-here", "-X", "PUT") == "404"

    def test_large_file_streams_whole(self, site):
        expected = hashlib.sha256(open(os.path.join(site.root, "docs", "big.bin"), "rb").read()).hexdigest()
        data = curl(site.base + "/docs/big.bin", binary=True)
        assert len(data) == BIG and hashlib.sha256(data).hexdigest() == expected


class TestPythonHttpClient:
    def test_keep_alive_and_pipelining_in_order(self, site):
        conn = http.client.HTTPConnection("127.0.0.1", site.port("http"), timeout=5)
        for path, body in [("/docs/hello.txt", b"hello, world\n"), ("/docs/page.html", b"<p>page</p>"), ("/", b"<h1>home</h1>\n")]:
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200 and response.read() == body
        conn.close()
        # Three requests in one write: three answers, in order.
        reply = raw(site, b"GET /docs/page.html HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /docs/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        statuses = re.findall(rb"HTTP/1\.1 \d{3}", reply)
        assert statuses == [b"HTTP/1.1 200", b"HTTP/1.1 200", b"HTTP/1.1 404"]
        assert reply.index(b"<p>page</p>") < reply.index(b"hello, world")

    def test_status_pages(self, site):
        with socket.create_connection(("127.0.0.1", site.port("echo")), timeout=3) as c:
            c.sendall(b"ping")
            assert c.recv(10) == b"ping"
        conn = http.client.HTTPConnection("127.0.0.1", site.port("http"), timeout=5)
        conn.request("GET", "/_inetkit/status.json")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type") == "application/json"
        status_json = json.loads(response.read())
        names = [s["name"] for s in status_json["services"]]
        assert "echo" in names and "http" in names
        echo = next(s for s in status_json["services"] if s["name"] == "echo")
        assert echo["running"] and any(l["port"] == site.port("echo") for l in echo["listeners"])
        assert next(c for c in echo["counters"] if c["transport"] == "tcp")["connections"] >= 1
        conn.request("GET", "/_inetkit/metrics")
        metrics = conn.getresponse().read().decode()
        assert 'inetkit_connections_total{service="echo",transport="tcp"}' in metrics
        conn.request("GET", "/_inetkit/")
        page = conn.getresponse().read().decode()
        assert "<td>echo</td>" in page and "<td>http</td>" in page


class TestBadInput:
    def test_malformed_request_gets_400(self, site):
        assert raw(site, b"THIS IS NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw(site, b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n").startswith(b"HTTP/1.1 400")

    def test_overlong_uri_gets_414(self, site):
        assert raw(site, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 414")

    def test_overlarge_headers_get_431(self, site):
        assert raw(site, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431")

    def test_body_on_get_is_bounded(self, site):
        reply = raw(site, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
        assert reply.startswith(b"HTTP/1.1 413")
        reply = raw(site, b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"400\r\n" + b"x" * 1024 + b"\r\n") * 3 + b"0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 413")

    def test_slow_client_is_timed_out(self, site):
        started = time.time()
        with socket.create_connection(("127.0.0.1", site.port("http")), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHo")
            assert s.recv(100) == b""
        assert time.time() - started < 5

    def test_access_log_has_combined_format_lines(self, site):
        curl("-A", "test-agent/1.0", "-e", "http://ref.test/", site.base + "/docs/hello.txt")
        time.sleep(0.2)
        log = site.read_stderr()
        assert '"GET /docs/hello.txt HTTP/1.1" 200 13 "http://ref.test/" "test-agent/1.0"' in log


class TestInetkitHttpClient:
    def run(self, *args):
        return subprocess.run([BIN, "http", *args], capture_output=True, timeout=60)

    def test_get_prints_body_and_headers_with_i(self, site):
        out = self.run("get", site.base + "/docs/hello.txt")
        assert out.returncode == 0 and out.stdout == b"hello, world\n"
        out = self.run("get", "-i", site.base + "/docs/hello.txt")
        text = out.stdout.decode()
        assert text.startswith("HTTP/1.1 200 OK\r\n") and "content-length: 13" in text.lower()
        assert text.endswith("\r\n\r\nhello, world\n")

    def test_head_prints_only_headers(self, site):
        out = self.run("head", site.base + "/docs/big.bin")
        text = out.stdout.decode()
        assert text.startswith("HTTP/1.1 200 OK") and f"content-length: {BIG}" in text.lower()
        assert len(out.stdout) < 1000

    def test_download_to_file_streams_whole(self, site):
        target = os.path.join(tempfile.mkdtemp(), "big.bin")
        out = self.run("get", "-o", target, site.base + "/docs/big.bin")
        assert out.returncode == 0, out.stderr
        expected = hashlib.sha256(open(os.path.join(site.root, "docs", "big.bin"), "rb").read()).hexdigest()
        assert hashlib.sha256(open(target, "rb").read()).hexdigest() == expected

    def test_many_requests_at_once_with_summary(self, site):
        out = self.run("get", "--count", "40", "--concurrency", "8", "-q", site.base + "/docs/hello.txt", site.base + "/")
        text = out.stdout.decode()
        assert out.returncode == 0, text
        assert "80 requests: 200 ×80" in text and "latency: p50" in text

    def test_exit_codes(self, site):
        missing = self.run("get", site.base + "/missing")
        assert missing.returncode == 0
        failing = self.run("get", "--fail", site.base + "/missing")
        assert failing.returncode == 22 and b"404" in failing.stderr
        many = self.run("get", "--fail", "--count", "3", site.base + "/missing")
        assert many.returncode == 1
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        refused = self.run("get", f"http://127.0.0.1:{port}/")
        assert refused.returncode == 1 and b"refused" in refused.stderr, refused.stderr

    def test_follows_redirects_with_L(self, site):
        plain = self.run("get", "-i", site.base + "/docs")
        assert plain.stdout.startswith(b"HTTP/1.1 301")
        followed = self.run("get", "-L", site.base + "/docs")
        assert b"hello.txt" in followed.stdout


def test_fast_and_full_paths_give_the_same_validators(site):
    """Small files are answered on the event loop; with If-Modified-Since they go through
    Hummingbird's FileMiddleware. Both must describe the file identically."""
    def headers(*extra):
        out = curl("-s", "-D", "-", "-o", "/dev/null", *extra, site.base + "/docs/page.html")
        return {l.split(": ", 1)[0].lower(): l.split(": ", 1)[1].strip() for l in out.splitlines()[1:] if ": " in l}
    fast = headers()
    full = headers("-H", "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT")
    for name in ("etag", "last-modified", "content-type", "content-length", "accept-ranges"):
        assert fast[name] == full[name], name
    assert status(site, "/docs/page.html", "-r", "0-2", "-H", f"If-Range: {fast['etag']}") == "206"
