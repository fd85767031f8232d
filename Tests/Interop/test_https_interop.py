"""HTTPS with a certificate from `inetkit cert --self-signed`: curl over HTTP/2 (ALPN) and
HTTP/1.1, Python's ssl module, and the HTTPS service staying off without a certificate."""
import os
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
    s = Server(f"""bind: [127.0.0.1]
shutdown_grace: 1
services:
  https: {{ port: 0, root: {root}, cert: {d}/cert.pem, key: {d}/key.pem, header_timeout: 1s }}
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
