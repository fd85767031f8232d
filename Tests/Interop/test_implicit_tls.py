"""TLS with zero configuration: the certificate InetKit generates into <data_dir>/tls/ on first
start, used by HTTPS, the implicit-TLS ports (SMTPS 465, POP3S 995, FTPS 990; RFC 8314) and
STARTTLS/STLS/AUTH TLS alike. Clients: curl (https://, smtps://, pop3s://, ftps://), swaks
--tls-on-connect, openssl s_client, Python's smtplib.SMTP_SSL, poplib.POP3_SSL, ftplib.FTP_TLS."""
import ftplib
import glob
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import tempfile

import pytest

from conftest import Server

MAIL_USERS = "[{ name: carol@inetkit.test, password: s3cret }]"


@pytest.fixture(scope="module")
def tls():
    d = tempfile.mkdtemp(prefix="inetkit-tls-")
    os.chmod(d, 0o755)
    os.makedirs(f"{d}/pub")
    with open(f"{d}/pub/hello.txt", "w") as f:
        f.write("hello over TLS\n")
    # No cert or key anywhere: the host makes its own. pop3s and ftps take pop3's users and
    # ftp's root from those services' maps.
    s = Server(f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
services:
  http: {{ port: 0, root: {d}/pub }}
  https: {{ port: 0 }}
  smtp: {{ port: 0 }}
  smtps: {{ port: 0 }}
  pop3: {{ port: 0, auth_delay: 0, users: {MAIL_USERS} }}
  pop3s: {{ port: 0 }}
  ftp: {{ port: 0, root: {d}/pub }}
  ftps: {{ port: 0 }}
""", args=["--services", "http,https,smtp,smtps,pop3,pop3s,ftp,ftps"])
    s.d = d
    s.cert = f"{d}/data/tls/cert.pem"
    yield s
    assert s.stop() == 0


def context(server):
    c = ssl.create_default_context(cafile=server.cert)
    return c


def test_certificate_generated_once_with_its_fingerprint_logged(tls):
    assert os.path.exists(tls.cert) and oct(os.stat(f"{tls.d}/data/tls/key.pem").st_mode & 0o777) == "0o600"
    m = re.search(r"generated a self-signed TLS certificate .*sha256=([0-9A-F:]{95})", tls.read_stderr())
    assert m, tls.read_stderr()
    out = subprocess.run(["openssl", "x509", "-in", tls.cert, "-noout", "-fingerprint", "-sha256", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    assert m.group(1) in out, out
    assert "DNS:localhost" in out and "IP Address:127.0.0.1" in out and "IP Address:0:0:0:0:0:0:0:1" in out, out
    assert "ASN1 OID: prime256v1" in subprocess.run(["openssl", "x509", "-in", tls.cert, "-noout", "-text"], capture_output=True, text=True).stdout
    # A second start reuses it.
    again = Server(f"bind: [127.0.0.1]\nshutdown_grace: 1\ndata_dir: {tls.d}/data\nservices:\n  https: {{ port: 0 }}\n", args=["--services", "https"])
    try:
        assert f"sha256={m.group(1)}" in again.read_stderr() and "generated" not in again.read_stderr()
    finally:
        again.stop()


def test_curl_over_every_tls_port(tls, tmp_path):
    cert = tls.cert
    out = subprocess.run(["curl", "-sS", "--cacert", cert, f"https://localhost:{tls.port('https')}/hello.txt"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "hello over TLS\n", out.stderr
    msg = tmp_path / "msg.txt"
    msg.write_text("Subject: over smtps\r\n\r\nsent with curl\r\n")
    out = subprocess.run(["curl", "-sS", "--cacert", cert, f"smtps://127.0.0.1:{tls.port('smtps')}", "--mail-from", "a@b.test",
                          "--mail-rcpt", "carol@inetkit.test", "-T", str(msg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["curl", "-sS", "--cacert", cert, f"pop3s://carol%40inetkit.test:s3cret@127.0.0.1:{tls.port('pop3s')}/"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and re.match(r"1 \d+", out.stdout), out
    out = subprocess.run(["curl", "-sS", "--cacert", cert, f"ftps://127.0.0.1:{tls.port('ftps')}/hello.txt"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "hello over TLS\n", out.stderr
    # Without the certificate, curl refuses the unknown issuer: it is TLS with a real check.
    bad = subprocess.run(["curl", "-sS", f"https://localhost:{tls.port('https')}/"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 60, bad


def test_swaks_tls_on_connect(tls):
    out = subprocess.run(["swaks", "--tls-on-connect", "--server", f"127.0.0.1:{tls.port('smtps')}", "--from", "a@b.test",
                          "--to", "carol@inetkit.test", "--header", "Subject: swaks over smtps", "--tls-verify", "--tls-ca-path", tls.cert],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "TLS started" in out.stdout and "250" in out.stdout, out.stdout


def test_python_smtp_ssl_and_pop3_ssl(tls):
    with smtplib.SMTP_SSL("127.0.0.1", tls.port("smtps"), context=context(tls), timeout=10) as smtp:
        code, features = smtp.ehlo()
        assert code == 250 and b"STARTTLS" not in features, features
        smtp.sendmail("a@b.test", ["carol@inetkit.test"], "Subject: smtplib over smtps\r\n\r\nbody\r\n")
    box = poplib.POP3_SSL("127.0.0.1", tls.port("pop3s"), context=context(tls), timeout=10)
    try:
        assert "STLS" not in box.capa(), "no STLS over TLS"
        box.user("carol@inetkit.test")
        box.pass_("s3cret")
        subjects = [b"\n".join(box.retr(i + 1)[1]) for i in range(len(box.list()[1]))]
        assert any(b"Subject: smtplib over smtps" in s for s in subjects), subjects
        assert any(b"Received: from" in s and b"ESMTPS" in s for s in subjects), subjects
    finally:
        box.quit()


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """ftplib speaks explicit FTPS (AUTH TLS) only; implicit FTPS wraps the socket first."""

    def connect(self, host, port, timeout=10):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = self.context.wrap_socket(socket.create_connection((host, port), timeout), server_hostname=host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def test_python_ftp_tls_implicit_and_explicit(tls):
    implicit = ImplicitFTP_TLS(context=context(tls))
    implicit.connect("localhost", tls.port("ftps"))
    implicit.login()
    implicit.prot_p()
    lines = []
    implicit.retrlines("RETR hello.txt", lines.append)
    assert lines == ["hello over TLS"]
    assert implicit.sendcmd("PBSZ 0").startswith("200")
    with pytest.raises(ftplib.error_perm):
        implicit.sendcmd("AUTH TLS")  # already TLS
    implicit.quit()
    # AUTH TLS on the plain port with the same generated certificate, no configuration.
    explicit = ftplib.FTP_TLS(context=context(tls))
    explicit.connect("localhost", tls.port("ftp"))
    explicit.login()
    explicit.prot_p()
    lines = []
    explicit.retrlines("RETR hello.txt", lines.append)
    assert lines == ["hello over TLS"]
    explicit.quit()


def test_openssl_s_client_and_starttls(tls):
    for service, expect in (("smtps", b"220 "), ("pop3s", b"+OK"), ("ftps", b"220")):
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls.port(service)}", "-CAfile", tls.cert, "-verify_return_error",
                              "-quiet"], input=b"QUIT\r\n", capture_output=True, timeout=30)
        assert expect in out.stdout, (service, out.stdout, out.stderr)
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tls.port('smtp')}", "-starttls", "smtp", "-CAfile", tls.cert,
                          "-verify_return_error"], input=b"QUIT\r\n", capture_output=True, timeout=30)
    assert b"Verify return code: 0 (ok)" in out.stdout, out.stdout[-2000:]


def test_plaintext_on_a_tls_port_is_dropped_and_the_host_goes_on(tls):
    for service in ("smtps", "pop3s", "ftps"):
        with socket.create_connection(("127.0.0.1", tls.port(service)), timeout=5) as s:
            s.sendall(b"EHLO plain\r\nUSER x\r\n" + b"\x16\x03\x01\xff\xff" + b"A" * 4000)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (socket.timeout, ConnectionResetError):
                pass
            assert b"220" not in data and b"+OK" not in data, data
    with smtplib.SMTP_SSL("127.0.0.1", tls.port("smtps"), context=context(tls), timeout=10) as smtp:
        assert smtp.noop()[0] == 250
