"""NTP, finger and ident driven by independent clients: ntpdig (ntpsec), chronyd -Q, Python's
ntplib (Debian's python3-ntplib), Debian's finger, netcat and Python's socket."""
import os
import re
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, Server

NTP_EPOCH = 2208988800
AS_ROOT = os.geteuid() == 0
# ntpdig and Debian's finger know no port option: as root, a server of their own listens on the
# well-known ports of a loopback address no other test uses.
WELL_KNOWN_ADDRESS = "127.0.0.123"

USERS = """
    users:
      - { name: alice, real_name: Alice Liddell, plan: "Down the rabbit hole.\\nThen tea." }
      - { name: eve, real_name: "Eve \\e[31mRed", plan: "\\e]0;pwned\\a\\e[2Jclear screen" }
"""


def config(ntp="synchronized: true", extra="", bind="127.0.0.1", ports=True):
    port = "port: 0, " if ports else ""
    return f"""bind: [{bind}]
shutdown_grace: 1
{extra}
services:
  ntp: {{ {port}{ntp} }}
  finger:
    {"port: 0" if ports else "enabled: true"}
{USERS}
  ident: {{ {port}user: alice }}
  daytime: {{ port: 0 }}
  time: {{ port: 0 }}
"""


@pytest.fixture(scope="module")
def host():
    s = Server(config(), args=["--services", "ntp,finger,ident,daytime,time"])
    yield s
    assert s.stop() == 0


def ntplib(port, host="127.0.0.1", version=3):
    """Debian's ntplib runs under Debian's python (the default python3 does not see it)."""
    code = ("import ntplib, json, sys; r = ntplib.NTPClient().request(sys.argv[1], version=int(sys.argv[3]), port=int(sys.argv[2]), timeout=3);"
            "print(json.dumps(dict(offset=r.offset, delay=r.delay, stratum=r.stratum, leap=r.leap, version=r.version, mode=r.mode,"
            "ref=ntplib.ref_id_to_text(r.ref_id, r.stratum), tx=r.tx_time)))")
    out = subprocess.run(["/usr/bin/python3", "-c", code, host, str(port), str(version)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout)


def ntp_request(version=4, mode=3, transmit=0x1234567890ABCDEF, pad=b""):
    first = (0 << 6) | (version << 3) | mode
    return struct.pack("!BBbbII4sQQQQ", first, 0, 6, 0, 0, 0, b"\0\0\0\0", 0, 0, 0, transmit) + pad


def ask(port, payload, timeout=1.0, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (host, port))
        try:
            return s.recv(4096)
        except socket.timeout:
            return None


def tcp(port, data, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


class TestNTP:
    def test_ntplib(self, host):
        for version in (3, 4):
            r = ntplib(host.port("ntp", "udp"), version=version)
            assert abs(r["offset"]) < 0.5 and 0 <= r["delay"] < 0.5, r
            assert r["stratum"] == 1 and r["ref"] == "uncalibrated local clock" and r["leap"] == 0, r
            assert r["version"] == version and r["mode"] == 4, r

    def test_chronyd_query_mode(self, host):
        work = tempfile.mkdtemp(prefix="inetkit-chrony-")
        out = subprocess.run(["chronyd", "-Q", "-t", "20", "-f", "/dev/null",
                              f"server 127.0.0.1 port {host.port('ntp', 'udp')} iburst maxsamples 1",
                              f"pidfile {work}/chronyd.pid", "cmdport 0"], capture_output=True, text=True, timeout=40)
        text = out.stdout + out.stderr
        m = re.search(r"System clock wrong by (-?[0-9.]+) seconds", text)
        assert m, text
        assert abs(float(m.group(1))) < 0.5, text

    def test_inetkit_client(self, host):
        out = subprocess.run([BIN, "ntp", f"127.0.0.1:{host.port('ntp', 'udp')}"], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        row = out.stdout.splitlines()[1].split()
        assert abs(float(row[4])) < 0.5 and row[6:] == ["1", "LOCL", "no-leap"], out.stdout

    def test_reply_never_larger_than_request_and_control_modes_unanswered(self, host):
        port = host.port("ntp", "udp")
        reply = ask(port, ntp_request())
        assert reply and len(reply) == 48
        first, stratum = reply[0], reply[1]
        assert first & 7 == 4 and (first >> 3) & 7 == 4 and stratum == 1
        assert reply[24:32] == struct.pack("!Q", 0x1234567890ABCDEF), "origin = the client's transmit time"
        # An authenticated-looking request (key id + MAC) still gets 48 bytes.
        assert len(ask(port, ntp_request(pad=b"\0" * 20))) == 48
        # ntpq's read-variables (mode 6), ntpdc's monlist (mode 7), short and foreign modes: silence.
        ntpq = struct.pack("!BBHHHHH", (2 << 3) | 6, 2, 1, 0, 0, 0, 0)
        monlist = bytes([0x17, 0x00, 0x03, 0x2a]) + b"\0" * 4
        for payload in (ntpq, monlist, monlist + b"\0" * 40, ntp_request(mode=6), ntp_request(mode=7), ntp_request(mode=1),
                        ntp_request(mode=4), ntp_request(version=0), ntp_request(version=7), b"", b"\x23" * 47):
            assert ask(port, payload, timeout=0.3) is None, payload
        assert len(ask(port, ntp_request())) == 48, "still answering"

    def test_kiss_of_death_when_rate_limited(self):
        s = Server(config(ntp="synchronized: true, udp_rate: 1, udp_burst: 3"), args=["--services", "ntp"])
        try:
            port = s.port("ntp", "udp")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1)
                for _ in range(10):
                    sock.sendto(ntp_request(), ("127.0.0.1", port))
                replies = []
                try:
                    while True:
                        replies.append(sock.recv(4096))
                except socket.timeout:
                    pass
            normal = [r for r in replies if r[1] != 0]
            kisses = [r for r in replies if r[1] == 0]
            assert len(normal) == 3, [r[:16] for r in replies]
            assert kisses and all(k[12:16] == b"RATE" and k[0] >> 6 == 3 and len(k) == 48 for k in kisses), kisses
            assert all(len(r) <= 48 for r in replies)
        finally:
            s.stop()

    def test_clock_offset_applies_to_ntp_daytime_and_time(self):
        s = Server(config(extra="clock_offset: 1d"), args=["--services", "ntp,daytime,time"])
        try:
            r = ntplib(s.port("ntp", "udp"))
            assert abs(r["offset"] - 86400) < 1, r
            told = struct.unpack("!I", tcp(s.port("time"), b""))[0] - NTP_EPOCH
            assert abs(told - (time.time() + 86400)) < 2
            tomorrow = time.strftime("%B %-d, %Y", time.gmtime(time.time() + 86400))
            assert tomorrow in tcp(s.port("daytime"), b"").decode(), tomorrow
        finally:
            s.stop()

    def test_unsynchronised_clock_says_so(self):
        s = Server(config(ntp="synchronized: false"), args=["--services", "ntp"])
        try:
            r = ntplib(s.port("ntp", "udp"))
            assert r["leap"] == 3 and r["stratum"] == 16, r
        finally:
            s.stop()


@pytest.fixture(scope="module")
def well_known():
    if not AS_ROOT:
        pytest.skip("ntpdig and finger only use ports 123 and 79: binding them needs root")
    s = Server(config(bind=WELL_KNOWN_ADDRESS, ports=False).replace("user: alice", "enabled: true"),
               args=["--services", "ntp,finger,ident", "--port-offset", "0"])
    yield s
    assert s.stop() == 0


class TestWellKnownPortClients:
    def test_ntpdig(self, well_known):
        out = subprocess.run(["ntpdig", "-t", "3", WELL_KNOWN_ADDRESS], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        # e.g. "2026-12-03 14:20:01.123456 (+0000) +0.000123 +/- 0.000045 127.0.0.123 s1 no-leap"
        assert re.search(r"[+-]0\.\d+ \+/- \d+\.\d+ 127\.0\.0\.123 s1 no-leap", out.stdout), out.stdout

    def test_finger_client(self, well_known):
        listing = subprocess.run(["finger", f"@{WELL_KNOWN_ADDRESS}"], capture_output=True, text=True, timeout=20).stdout
        assert "alice" in listing and "Alice Liddell" in listing, listing
        alice = subprocess.run(["finger", "-l", f"alice@{WELL_KNOWN_ADDRESS}"], capture_output=True, text=True, timeout=20).stdout
        assert "Down the rabbit hole." in alice and "Then tea." in alice, alice
        eve = subprocess.run(["finger", f"eve@{WELL_KNOWN_ADDRESS}"], capture_output=True, timeout=20).stdout
        assert b"\x1b" not in eve and b"\x07" not in eve and b"clear screen" in eve, eve

    def test_ident_hidden_user_without_a_configured_name(self, well_known):
        with socket.create_connection((WELL_KNOWN_ADDRESS, 79)) as held:
            lport, rport = 79, held.getsockname()[1]
            answer = tcp(113, f"{lport} , {rport}\r\n".encode(), host=WELL_KNOWN_ADDRESS)
        assert answer == f"{lport} , {rport} : ERROR : HIDDEN-USER\r\n".encode(), answer


class TestFinger:
    def test_netcat_and_socket(self, host):
        port = host.port("finger")
        listing = subprocess.run(["nc", "-q", "5", "127.0.0.1", str(port)], input=b"\r\n", capture_output=True, timeout=20).stdout
        assert b"Login" in listing and b"alice       Alice Liddell\r\n" in listing, listing
        long = tcp(port, b"/W alice\r\n")
        assert long.startswith(b"Login: alice") and b"Plan:\r\nDown the rabbit hole.\r\nThen tea.\r\n" in long, long
        assert tcp(port, b"root\r\n") == b"finger: root: no such user.\r\n"

    def test_inetkit_client(self, host):
        out = subprocess.run([BIN, "finger", "--long", f"alice@127.0.0.1:{host.port('finger')}"], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0 and "Down the rabbit hole." in out.stdout, out

    def test_hostile_queries(self, host):
        port = host.port("finger")
        assert b"refused" in tcp(port, b"alice@elsewhere.test\r\n")
        assert b"refused" in tcp(port, b"@a@b@c\r\n")
        eve = tcp(port, b"eve\r\n")
        assert all(b == 10 or b == 13 or 32 <= b < 127 for b in eve) and b"clear screen" in eve, eve
        assert tcp(port, b"\x1b[2J\x00\x07root\r\n") == b"finger: [2Jroot: no such user.\r\n"
        long = tcp(port, b"A" * 100000 + b"\r\n")
        assert long.startswith(b"finger: query longer than"), long[:100]
        # Still serving.
        assert b"alice" in tcp(port, b"\r\n")


class TestIdent:
    def test_real_connection_no_user_and_bad_ports(self, host):
        port = host.port("ident")
        with socket.create_connection(("127.0.0.1", port)) as held:
            mine = held.getsockname()[1]
            assert tcp(port, f"{port} , {mine}\r\n".encode()) == f"{port} , {mine} : USERID : UNIX : alice\r\n".encode()
            # The same ports through netcat.
            out = subprocess.run(["nc", "-q", "5", "127.0.0.1", str(port)], input=f"{port},{mine}\r\n".encode(), capture_output=True, timeout=20).stdout
            assert out == f"{port} , {mine} : USERID : UNIX : alice\r\n".encode(), out
        # A connection that does not exist (the held one is closed; a port nobody uses).
        assert tcp(port, f"{port} , 1\r\n".encode()) == f"{port} , 1 : ERROR : NO-USER\r\n".encode()
        assert tcp(port, b"0 , 80\r\n") == b"0 , 80 : ERROR : INVALID-PORT\r\n"
        assert tcp(port, b"65536,1\r\n") == b"65536 , 1 : ERROR : INVALID-PORT\r\n"
        assert tcp(port, b"\x1b[31mhello\r\n") == b"0 , 0 : ERROR : UNKNOWN-ERROR\r\n"
        assert tcp(port, b"9" * 5000 + b"\r\n") == b"0 , 0 : ERROR : UNKNOWN-ERROR\r\n"

    def test_inetkit_client(self, host):
        port = host.port("ident")
        with socket.create_connection(("127.0.0.1", port)) as held:
            mine = held.getsockname()[1]
            out = subprocess.run([BIN, "ident", f"127.0.0.1:{port}", f"{port},{mine}"], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0 and out.stdout.strip() == f"{port} , {mine} : USERID : UNIX : alice", out
        out = subprocess.run([BIN, "ident", f"127.0.0.1:{port}", f"{port},1"], capture_output=True, text=True, timeout=20)
        assert out.returncode == 1 and "NO-USER" in out.stdout, out
