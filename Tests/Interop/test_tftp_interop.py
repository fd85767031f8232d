"""TFTP driven by tftp-hpa's tftp, atftp (with options), curl's tftp:// and raw Python sockets:
RRQ/WRQ, octet and netascii, blksize/tsize/windowsize, block-number rollover, foreign TIDs, no
Sorcerer's Apprentice, traversal and symlinks, uploads that never overwrite."""
import concurrent.futures
import hashlib
import os
import socket
import struct
import subprocess
import tempfile

import pytest

from conftest import BIN, Server


@pytest.fixture(scope="module")
def tftp():
    d = tempfile.mkdtemp(prefix="inetkit-tftp-")
    os.chmod(d, 0o755)
    os.makedirs(f"{d}/pub/sub")
    os.makedirs(f"{d}/up")
    os.chmod(f"{d}/up", 0o777)
    with open(f"{d}/pub/hello.txt", "wb") as f:
        f.write(b"line one\nline two\r\nlast")
    with open(f"{d}/pub/random.bin", "wb") as f:
        f.write(os.urandom(3_000_000))
    with open(f"{d}/pub/rollover.bin", "wb") as f:
        f.write(os.urandom(8 * 70_000 + 5))  # 70 001 blocks of 8 bytes: past 65 535
    with open(f"{d}/pub/sub/inner.txt", "w") as f:
        f.write("inner\n")
    with open(f"{d}/secret.txt", "w") as f:
        f.write("not for you\n")
    os.symlink(f"{d}/secret.txt", f"{d}/pub/escape.txt")
    s = Server(f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
services:
  tftp: {{ port: 0, root: {d}/pub, write: true, upload_dir: {d}/up, udp_rate: 0, max_upload_bytes: 5000000 }}
""", args=["--services", "tftp"])
    s.d = d
    s.tftp = s.port("tftp", "udp")
    yield s
    assert s.stop() == 0


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(args, **kw):
    return subprocess.run(args, capture_output=True, timeout=kw.pop("timeout", 120), **kw)


def test_tftp_hpa_get_octet_and_netascii(tftp, tmp_path):
    out = run(["tftp", "127.0.0.1", str(tftp.tftp), "-m", "binary", "-c", "get", "random.bin", str(tmp_path / "r")])
    assert out.returncode == 0 and digest(tmp_path / "r") == digest(f"{tftp.d}/pub/random.bin"), out
    out = run(["tftp", "127.0.0.1", str(tftp.tftp), "-m", "ascii", "-c", "get", "hello.txt", str(tmp_path / "h")])
    assert out.returncode == 0 and (tmp_path / "h").read_bytes() == b"line one\nline two\r\nlast", out
    out = run(["tftp", "127.0.0.1", str(tftp.tftp), "-m", "binary", "-c", "get", "sub/inner.txt", str(tmp_path / "i")])
    assert (tmp_path / "i").read_text() == "inner\n", out


def test_atftp_with_options_and_rollover(tftp, tmp_path):
    out = run(["atftp", "--option", "blksize 65464", "--option", "windowsize 16", "--option", "tsize 0", "-g", "-r", "random.bin",
               "-l", str(tmp_path / "r"), "127.0.0.1", str(tftp.tftp)])
    assert out.returncode == 0 and digest(tmp_path / "r") == digest(f"{tftp.d}/pub/random.bin"), out
    out = run(["atftp", "--option", "blksize 8", "--option", "windowsize 64", "-g", "-r", "rollover.bin", "-l", str(tmp_path / "o"),
               "127.0.0.1", str(tftp.tftp)], timeout=300)
    assert out.returncode == 0 and digest(tmp_path / "o") == digest(f"{tftp.d}/pub/rollover.bin"), out


def test_curl_get_and_put(tftp, tmp_path):
    out = run(["curl", "-sS", "--tftp-blksize", "16384", f"tftp://127.0.0.1:{tftp.tftp}/random.bin", "-o", str(tmp_path / "r")])
    assert out.returncode == 0 and digest(tmp_path / "r") == digest(f"{tftp.d}/pub/random.bin"), out
    (tmp_path / "c.txt").write_bytes(b"from curl\n" * 1000)
    out = run(["curl", "-sS", "-T", str(tmp_path / "c.txt"), f"tftp://127.0.0.1:{tftp.tftp}/curl-upload.txt"])
    assert out.returncode == 0, out
    assert open(f"{tftp.d}/up/curl-upload.txt", "rb").read() == b"from curl\n" * 1000
    assert not [n for n in os.listdir(f"{tftp.d}/up") if n.endswith(".part")], "no temporary file left"


def test_uploads_never_overwrite_and_are_bounded(tftp, tmp_path):
    (tmp_path / "a.bin").write_bytes(os.urandom(100_000))
    out = run(["tftp", "127.0.0.1", str(tftp.tftp), "-m", "binary", "-c", "put", str(tmp_path / "a.bin"), "hpa.bin"])
    assert out.returncode == 0 and digest(f"{tftp.d}/up/hpa.bin") == digest(tmp_path / "a.bin"), out
    again = run([BIN, "tftp", "put", f"127.0.0.1:{tftp.tftp}", str(tmp_path / "a.bin"), "--as", "hpa.bin"])
    assert again.returncode == 1 and b"error 6" in again.stderr, again
    (tmp_path / "big.bin").write_bytes(b"x" * 6_000_000)
    big = run([BIN, "tftp", "put", f"127.0.0.1:{tftp.tftp}", str(tmp_path / "big.bin"), "--blksize", "65464"])
    assert big.returncode == 1 and b"error 3" in big.stderr, big
    assert not os.path.exists(f"{tftp.d}/up/big.bin")
    for name in ("../escape.bin", "/tmp/abs.bin", "sub/x.bin"):
        bad = run([BIN, "tftp", "put", f"127.0.0.1:{tftp.tftp}", str(tmp_path / "a.bin"), "--as", name])
        assert bad.returncode == 1 and b"error 2" in bad.stderr, (name, bad)


def test_inetkit_client_with_windows(tftp, tmp_path):
    out = run([BIN, "tftp", "get", f"127.0.0.1:{tftp.tftp}", "random.bin", "-o", str(tmp_path / "r"), "--blksize", "32768", "--windowsize", "8"])
    assert out.returncode == 0 and digest(tmp_path / "r") == digest(f"{tftp.d}/pub/random.bin"), out
    (tmp_path / "w.bin").write_bytes(os.urandom(1_000_000))
    out = run([BIN, "tftp", "put", f"127.0.0.1:{tftp.tftp}", str(tmp_path / "w.bin"), "--blksize", "1428", "--windowsize", "16"])
    assert out.returncode == 0 and digest(f"{tftp.d}/up/w.bin") == digest(tmp_path / "w.bin"), out


def rrq(name, options=()):
    body = name.encode() + b"\0octet\0" + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in options)
    return b"\0\x01" + body


def error_code(sock, payload, port):
    sock.sendto(payload, ("127.0.0.1", port))
    data, _ = sock.recvfrom(70000)
    assert data[:2] == b"\0\x05", data
    return struct.unpack("!H", data[2:4])[0]


def test_traversal_symlinks_and_bad_requests(tftp):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for name in ("../secret.txt", "/etc/passwd", "escape.txt", "sub/../../secret.txt"):
            assert error_code(s, rrq(name), tftp.tftp) == 2, name
        assert error_code(s, rrq("missing.txt"), tftp.tftp) == 1
        assert error_code(s, b"\0\x01hello.txt\0mail\0", tftp.tftp) == 4
        assert error_code(s, b"\0\x04\0\x01", tftp.tftp) == 4, "an ACK to port 69"
        assert error_code(s, b"\x12\x34garbage", tftp.tftp) == 4
        s.sendto(b"\0\x05\0\x00oops\0", ("127.0.0.1", tftp.tftp))
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recvfrom(100)


def test_foreign_tid_and_no_sorcerers_apprentice(tftp):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
        a.settimeout(3)
        b.settimeout(3)
        a.sendto(rrq("random.bin"), ("127.0.0.1", tftp.tftp))
        data, server = a.recvfrom(70000)
        assert data[:4] == b"\0\x03\0\x01" and len(data) == 516 and server[1] != tftp.tftp, "DATA 1 from a new TID"
        # Another port sends to the transfer's TID: ERROR 5, and the transfer is not disturbed.
        b.sendto(b"\0\x04\0\x01", server)
        reply, _ = b.recvfrom(100)
        assert reply[:4] == b"\0\x05\0\x05", reply
        # ACK 1 twice: DATA 2 comes once (a duplicate ACK is not answered with a duplicate DATA).
        a.sendto(b"\0\x04\0\x01", server)
        a.sendto(b"\0\x04\0\x01", server)
        first, _ = a.recvfrom(70000)
        assert first[:4] == b"\0\x03\0\x02"
        a.settimeout(0.5)
        with pytest.raises(socket.timeout):
            a.recvfrom(70000)
        # Not acknowledged: after the timeout (1 s) DATA 2 comes again; then finish the transfer.
        a.settimeout(3)
        again, _ = a.recvfrom(70000)
        assert again == first
        block, got = 2, first[4:]
        while True:
            a.sendto(b"\0\x04" + struct.pack("!H", block & 0xFFFF), server)
            if len(got) % 512 or len(got) >= 3_000_000 and block * 512 > 3_000_000:
                break
            data, _ = a.recvfrom(70000)
            if struct.unpack("!H", data[2:4])[0] != (block + 1) & 0xFFFF:
                continue
            block += 1
            got += data[4:]
            if len(data) < 516:
                a.sendto(b"\0\x04" + struct.pack("!H", block & 0xFFFF), server)
                break
        with open(f"{tftp.d}/pub/random.bin", "rb") as f:
            assert f.read()[512:] == got


def test_many_transfers_at_once(tftp, tmp_path):
    def fetch(i):
        out = run(["curl", "-sS", "--tftp-blksize", "8192", f"tftp://127.0.0.1:{tftp.tftp}/random.bin", "-o", str(tmp_path / f"r{i}")])
        return out.returncode == 0 and digest(tmp_path / f"r{i}") == digest(f"{tftp.d}/pub/random.bin")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        assert all(pool.map(fetch, range(40)))


def test_uploads_are_off_by_default():
    d = tempfile.mkdtemp(prefix="inetkit-tftp-ro-")
    os.chmod(d, 0o755)
    s = Server(f"bind: [127.0.0.1]\nshutdown_grace: 1\ndata_dir: {d}/data\nservices:\n  tftp: {{ port: 0 }}\n", args=["--services", "tftp"])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            assert error_code(sock, b"\0\x02new.bin\0octet\0", s.port("tftp", "udp")) == 2
        # The default root is <data_dir>/public, the folder HTTP and FTP serve (created at start).
        assert os.path.isdir(f"{d}/data/public")
    finally:
        s.stop()
