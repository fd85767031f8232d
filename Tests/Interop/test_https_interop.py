"""HTTPS with a certificate from `inetkit cert --self-signed`: curl over HTTP/2 (ALPN) and
HTTP/1.1, Python's ssl module, and the HTTPS service staying off without a certificate."""
import os
import re
import socket
import ssl
import subprocess
import tempfile

import pytest

from conftest import BIN, Server


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
