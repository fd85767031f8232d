"""FTP against Python's ftplib (passive and active, binary and ASCII, REST, MLSD, ABOR, FTPS),
curl (download, upload, listing, EPSV and PORT), lftp (mirror) and `inetkit ftp`; bounce and
traversal attempts, abrupt data-connection closes, a client that never opens its passive
connection, failed logins and the per-address limit."""
import ftplib
import hashlib
import io
import os
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, Server, ipv6_available


def make_tree(d):
    os.makedirs(f"{d}/pub/docs/deep", exist_ok=True)
    os.makedirs(f"{d}/alice", exist_ok=True)
    os.makedirs(f"{d}/outside", exist_ok=True)
    with open(f"{d}/pub/docs/a.txt", "w") as f:
        f.write("line one\nline two\n.dot line\n")
    with open(f"{d}/pub/docs/deep/b.txt", "w") as f:
        f.write("deep\n")
    with open(f"{d}/pub/big.bin", "wb") as f:
        f.write(os.urandom(8 << 20))
    # Larger than any socket buffers, without taking disk space: transfers of it cannot finish
    # before the tests that interrupt them act.
    with open(f"{d}/pub/huge.bin", "wb") as f:
        f.truncate(1 << 30)
    with open(f"{d}/outside/secret.txt", "w") as f:
        f.write("secret\n")
    os.symlink(f"{d}/outside", f"{d}/pub/escape")
    os.symlink(f"{d}/outside/secret.txt", f"{d}/pub/secret-link")


def config(d, extra="", tls=""):
    bind = '[127.0.0.1, "::1"]' if ipv6_available() else "[127.0.0.1]"
    return f"""bind: {bind}
shutdown_grace: 1
data_dir: {d}/data
services:
  ftp:
    port: 0
    root: {d}/pub
    login_delay: 0.3
    max_login_failures: 3
    data_timeout: 1
    users: [{{ name: alice, password: "s3cret", home: {d}/alice, write: true }}, {{ name: bob, password: pw, home: {d}/pub }}]
{extra}{tls}"""


@pytest.fixture(scope="module")
def ftp():
    d = tempfile.mkdtemp(prefix="inetkit-ftp-")
    make_tree(d)
    out = subprocess.run([BIN, "cert", "--self-signed", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem"], capture_output=True, timeout=60)
    assert out.returncode == 0
    s = Server(config(d, tls=f"    cert: {d}/cert.pem\n    key: {d}/key.pem\n"), args=["--services", "ftp"])
    s.d = d
    s.ftp = s.port("ftp")
    s.ftp6 = s.port("ftp")  # one port for every address
    yield s
    assert s.stop() == 0


def client(server, user="anonymous", password="guest@", passive=True):
    f = ftplib.FTP()
    f.connect("127.0.0.1", server.ftp, timeout=10)
    f.login(user, password)
    f.set_pasv(passive)
    return f


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("passive", [True, False])
def test_ftplib_downloads_binary_and_ascii(ftp, passive):
    f = client(ftp, passive=passive)
    assert f.pwd() == "/"
    assert sorted(f.nlst()) == ["big.bin", "docs", "escape", "huge.bin", "secret-link"]
    buf = io.BytesIO()
    f.retrbinary("RETR big.bin", buf.write)
    assert md5(buf.getvalue()) == md5(open(f"{ftp.d}/pub/big.bin", "rb").read())
    lines = []
    f.retrlines("RETR docs/a.txt", lines.append)  # TYPE A: CRLF on the wire
    assert lines == ["line one", "line two", ".dot line"]
    f.sendcmd("TYPE A")  # (retrbinary would switch back to TYPE I)
    conn = f.transfercmd("RETR docs/a.txt")
    raw = b""
    while chunk := conn.recv(65536):
        raw += chunk
    conn.close()
    f.voidresp()
    assert raw == b"line one\r\nline two\r\n.dot line\r\n"
    f.sendcmd("TYPE I")
    listing = []
    f.retrlines("LIST docs", listing.append)
    assert any(line.startswith("-rw") and line.endswith(" a.txt") for line in listing), listing
    assert any(line.startswith("d") and line.endswith(" deep") for line in listing), listing
    f.quit()


def test_rest_resume_mlsd_size_mdtm(ftp):
    f = client(ftp)
    data = open(f"{ftp.d}/pub/big.bin", "rb").read()
    buf = io.BytesIO()
    f.retrbinary("RETR big.bin", buf.write, rest=1_000_000)
    assert buf.getvalue() == data[1_000_000:]
    facts = dict(f.mlsd("docs"))
    assert facts["a.txt"]["type"] == "file" and facts["a.txt"]["size"] == str(os.path.getsize(f"{ftp.d}/pub/docs/a.txt"))
    assert facts["deep"]["type"] == "dir"
    assert f.size("big.bin") == len(data)
    assert f.sendcmd("MDTM big.bin").startswith("213 20")
    assert "type=file" in f.sendcmd("MLST docs/a.txt")
    features = f.sendcmd("FEAT")
    for feature in ["EPSV", "EPRT", "MDTM", "SIZE", "REST STREAM", "MLST", "UTF8", "AUTH TLS"]:
        assert feature in features
    f.quit()


def test_user_uploads_are_atomic_and_complete(ftp):
    f = client(ftp, "alice", "s3cret")
    payload = os.urandom(3 << 20)
    f.storbinary("STOR up.bin", io.BytesIO(payload))
    assert open(f"{ftp.d}/alice/up.bin", "rb").read() == payload
    f.storlines("STOR text.txt", io.BytesIO(b"one\ntwo\n"))  # ASCII: CRLF on the wire, LF on disk
    assert open(f"{ftp.d}/alice/text.txt", "rb").read() == b"one\ntwo\n"
    f.storbinary("APPE text.txt", io.BytesIO(b"three\n"))
    assert open(f"{ftp.d}/alice/text.txt", "rb").read() == b"one\ntwo\nthree\n"
    # Resuming an upload: REST n then STOR writes from byte n of the existing file.
    f.storbinary("STOR text.txt", io.BytesIO(b"TWO\nfour\n"), rest=4)
    assert open(f"{ftp.d}/alice/text.txt", "rb").read() == b"one\nTWO\nfour\n"
    with pytest.raises(ftplib.error_temp, match="425"):
        f.sendcmd("STOU")  # no data connection prepared
    f.mkd("folder")
    f.rename("up.bin", "folder/moved.bin")
    assert f.nlst("folder") == ["moved.bin"]
    f.delete("folder/moved.bin")
    f.rmd("folder")
    f.quit()
    assert not [n for n in os.listdir(f"{ftp.d}/alice") if n.startswith(".inetkit-upload")]


def test_aborted_upload_leaves_no_file_under_the_real_name(ftp):
    f = client(ftp, "alice", "s3cret")
    conn = f.transfercmd("STOR partial.bin")
    conn.sendall(os.urandom(1 << 20))
    # Reset the data connection mid-transfer.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()
    resp = f.getresp() if False else None
    try:
        resp = f.voidresp()
    except ftplib.Error as error:
        resp = str(error)
    time.sleep(0.3)
    names = os.listdir(f"{ftp.d}/alice")
    # A reset may arrive as a plain close: then the partial upload is complete as far as FTP
    # can tell (226). Either way no temporary file is left behind.
    assert not [n for n in names if n.startswith(".inetkit-upload")], names
    if not str(resp).startswith("226"):
        assert "partial.bin" not in names
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_abor_during_download(ftp):
    f = client(ftp)
    conn = f.transfercmd("RETR huge.bin")
    conn.recv(65536)
    f.sock.sendall(b"ABOR\r\n")
    first = f.getline()
    second = f.getline()
    conn.close()
    assert first.startswith("426") and second.startswith("226"), (first, second)
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_client_closing_the_data_connection_early(ftp):
    f = client(ftp)
    conn = f.transfercmd("RETR huge.bin")
    conn.recv(1000)
    conn.close()
    resp = f.getline()
    assert resp[:3] in ("426", "226"), resp
    assert f.sendcmd("NOOP").startswith("200"), "the control connection survives"
    f.quit()


def test_client_that_never_opens_the_passive_connection(ftp):
    f = client(ftp)
    f.sendcmd("PASV")
    started = time.time()
    f.putcmd("RETR big.bin")
    resp = f.getline()
    assert resp.startswith("425"), resp
    assert time.time() - started < 5
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_a_stalled_download_is_cut_after_data_timeout(ftp):
    f = client(ftp)
    conn = f.transfercmd("RETR huge.bin")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    started = time.time()
    f.sock.settimeout(10)
    resp = f.getline()  # never reading: the server gives up after data_timeout (1 s here)
    assert resp.startswith("426"), resp
    assert time.time() - started < 8
    conn.close()
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_ipv6_with_epsv_and_eprt(ftp):
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    for passive in [True, False]:
        f = ftplib.FTP()
        f.connect("::1", ftp.ftp6, timeout=10)
        f.login()
        f.set_pasv(passive)  # ftplib uses EPSV / EPRT over IPv6
        buf = io.BytesIO()
        f.retrbinary("RETR docs/a.txt", buf.write)
        assert buf.getvalue().startswith(b"line one")
        f.quit()


def test_bounce_and_traversal_are_refused(ftp):
    f = client(ftp)
    with pytest.raises(ftplib.error_perm, match="504"):
        f.sendcmd("PORT 192,0,2,1,200,10")
    with pytest.raises(ftplib.error_perm, match="504"):
        f.sendcmd("EPRT |1|10.1.2.3|5000|")
    with pytest.raises(ftplib.error_perm, match="504"):
        f.sendcmd("PORT 127,0,0,1,0,22")
    for path in ["../outside/secret.txt", "/../../outside/secret.txt", "escape/secret.txt", "secret-link"]:
        with pytest.raises(ftplib.error_perm, match="550"):
            f.retrbinary(f"RETR {path}", lambda _: None)
    with pytest.raises(ftplib.error_perm, match="550"):
        f.cwd("escape")
    f.cwd("../../..")
    assert f.pwd() == "/"
    with pytest.raises(ftplib.error_perm):
        f.sendcmd("CWD docs\x00x")
    f.quit()
    # The data connection must come from the client's address: a PASV port opened for
    # 127.0.0.1 refuses 127.0.0.2.
    f = client(ftp)
    port = int(f.sendcmd("EPSV").split("|||")[1].rstrip("|)"))
    intruder = socket.socket()
    intruder.bind(("127.0.0.2", 0))
    intruder.connect(("127.0.0.1", port))
    intruder.settimeout(2)
    assert intruder.recv(10) == b"", "closed at once"
    intruder.close()
    f.quit()


def test_logins(ftp):
    r = socket.create_connection(("127.0.0.1", ftp.ftp), timeout=10)
    rf = r.makefile("rb")
    assert rf.readline().startswith(b"220")
    r.sendall(b"LIST\r\n")
    assert rf.readline().startswith(b"530")
    r.sendall(b"RETR big.bin\r\n")
    assert rf.readline().startswith(b"530")
    for attempt in range(3):
        r.sendall(b"USER alice\r\n")
        assert rf.readline().startswith(b"331")
        started = time.time()
        r.sendall(b"PASS wrong\r\n")
        assert rf.readline().startswith(b"530")
        assert time.time() - started >= 0.25, "failed logins are answered after login_delay"
    assert rf.readline().startswith(b"421")
    assert rf.readline() == b"", "disconnected after max_login_failures"
    r.close()
    # A read-only user cannot write.
    f = client(ftp, "bob", "pw")
    with pytest.raises(ftplib.error_perm, match="550"):
        f.storbinary("STOR x.txt", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="550"):
        f.delete("docs/a.txt")
    f.quit()


def test_ftps_with_auth_tls(ftp):
    context = ssl.create_default_context(cafile=f"{ftp.d}/cert.pem")
    context.check_hostname = False
    f = ftplib.FTP_TLS(context=context)
    f.connect("127.0.0.1", ftp.ftp, timeout=10)
    f.auth()
    f.login("alice", "s3cret")
    f.prot_p()
    payload = os.urandom(1 << 20)
    f.storbinary("STOR tls.bin", io.BytesIO(payload))
    buf = io.BytesIO()
    f.retrbinary("RETR tls.bin", buf.write)
    assert buf.getvalue() == payload
    assert f.nlst() and "tls.bin" in f.nlst()
    f.quit()


def test_curl(ftp, tmp_path):
    base = f"ftp://127.0.0.1:{ftp.ftp}"
    listing = subprocess.run(["curl", "-sS", f"{base}/docs/"], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0 and " a.txt" in listing.stdout
    names = subprocess.run(["curl", "-sS", "--list-only", f"{base}/docs/"], capture_output=True, text=True, timeout=30)
    assert sorted(names.stdout.split()) == ["a.txt", "deep"]
    for mode in [[], ["--disable-epsv"], ["--ftp-port", "-"], ["--ftp-port", "-", "--disable-eprt"]]:
        out = subprocess.run(["curl", "-sS", *mode, f"{base}/big.bin", "-o", str(tmp_path / "big.bin")], capture_output=True, timeout=60)
        assert out.returncode == 0, (mode, out.stderr)
        assert md5((tmp_path / "big.bin").read_bytes()) == md5(open(f"{ftp.d}/pub/big.bin", "rb").read()), mode
    upload = tmp_path / "from-curl.txt"
    upload.write_bytes(b"uploaded by curl\n")
    out = subprocess.run(["curl", "-sS", "-T", str(upload), f"ftp://alice:s3cret@127.0.0.1:{ftp.ftp}/"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert open(f"{ftp.d}/alice/from-curl.txt", "rb").read() == b"uploaded by curl\n"
    denied = subprocess.run(["curl", "-sS", "-T", str(upload), f"{base}/"], capture_output=True, text=True, timeout=30)
    assert denied.returncode != 0
    ranged = subprocess.run(["curl", "-sS", "-r", "5-8", f"{base}/docs/a.txt"], capture_output=True, text=True, timeout=30)
    assert ranged.stdout == "one\n"


def test_lftp_mirror(ftp, tmp_path):
    target = tmp_path / "mirror"
    out = subprocess.run(["lftp", "-u", "anonymous,x", "-e", "set ftp:passive-mode on; set ssl:verify-certificate no; mirror docs "
                          + str(target) + "; quit", f"ftp://127.0.0.1:{ftp.ftp}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (target / "a.txt").read_text() == open(f"{ftp.d}/pub/docs/a.txt").read()
    assert (target / "deep" / "b.txt").read_text() == "deep\n"


def test_inetkit_ftp_client(ftp, tmp_path):
    base = f"ftp://127.0.0.1:{ftp.ftp}"
    out = subprocess.run([BIN, "ftp", "ls", f"{base}/docs/"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and " a.txt" in out.stdout, out.stderr
    out = subprocess.run([BIN, "ftp", "get", "--concurrency", "2", f"{base}/big.bin", f"{base}/docs/a.txt", "-o", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert md5((tmp_path / "big.bin").read_bytes()) == md5(open(f"{ftp.d}/pub/big.bin", "rb").read())
    out = subprocess.run([BIN, "ftp", "get", "--active", f"{base}/docs/a.txt", "-o", str(tmp_path / "active.txt")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and (tmp_path / "active.txt").read_text().startswith("line one"), out.stderr
    (tmp_path / "put.txt").write_text("put by inetkit\n")
    user = f"ftp://alice:s3cret@127.0.0.1:{ftp.ftp}"
    out = subprocess.run([BIN, "ftp", "put", str(tmp_path / "put.txt"), f"{user}/"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and open(f"{ftp.d}/alice/put.txt").read() == "put by inetkit\n", out.stderr
    assert subprocess.run([BIN, "ftp", "mkdir", f"{user}/made"], timeout=30).returncode == 0
    assert os.path.isdir(f"{ftp.d}/alice/made")
    assert subprocess.run([BIN, "ftp", "rm", f"{user}/put.txt"], timeout=30).returncode == 0
    assert not os.path.exists(f"{ftp.d}/alice/put.txt")
    traced = subprocess.run([BIN, "ftp", "ls", "--trace", f"{base}/"], capture_output=True, text=True, timeout=30)
    assert "C: EPSV" in traced.stderr and "S: 226" in traced.stderr
    refused = subprocess.run([BIN, "ftp", "put", str(tmp_path / "put.txt"), f"{base}/"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "550" in refused.stderr


def test_connections_per_address_and_passive_settings():
    d = tempfile.mkdtemp(prefix="inetkit-ftp-")
    make_tree(d)
    s = Server(config(d, extra="    max_connections_per_address: 2\n    passive_ports: 40100-40109\n    passive_address: 127.0.0.2\n"),
               args=["--services", "ftp"])
    try:
        # PASV announces passive_address and a port of passive_ports (for a host behind NAT);
        # ftplib connects to the control host anyway, so the transfer still works here.
        f = ftplib.FTP()
        f.connect("127.0.0.1", s.port("ftp"), timeout=10)
        f.login()
        numbers = [int(n) for n in f.sendcmd("PASV").split("(")[1].split(")")[0].split(",")]
        assert numbers[:4] == [127, 0, 0, 2]
        assert 40100 <= numbers[4] * 256 + numbers[5] <= 40109
        buf = io.BytesIO()
        f.retrbinary("RETR docs/a.txt", buf.write)
        assert buf.getvalue().startswith(b"line one")
        f.quit()
        held = [socket.create_connection(("127.0.0.1", s.port("ftp")), timeout=5) for _ in range(2)]
        for c in held:
            assert c.recv(100).startswith(b"220")
        extra = socket.create_connection(("127.0.0.1", s.port("ftp")), timeout=5)
        assert extra.recv(100).startswith(b"421")
        for c in held + [extra]:
            c.close()
    finally:
        assert s.stop() == 0
