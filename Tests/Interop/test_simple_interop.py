"""The six simple services driven by independent clients: Python's socket module, socat, netcat."""
import re
import socket
import struct
import subprocess
import time

import pytest

from conftest import ipv6_available, SERVICES

FAMILIES = [("127.0.0.1", socket.AF_INET)] + ([("::1", socket.AF_INET6)] if ipv6_available() else [])
CHARGEN_LINE = re.compile(rb"^[ -~]{72}\r\n$")
RFC868_OFFSET = 2208988800


def tcp_read_all(host, family, port, send=b"", limit=1 << 20, shut=False):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, port))
        if send:
            s.sendall(send)
        if shut:
            s.shutdown(socket.SHUT_WR)
        data = b""
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def udp_ask(host, family, port, payload=b"", timeout=3):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (host, port))
        return s.recvfrom(70000)[0]


def check_chargen_lines(data):
    lines = data.split(b"\r\n")[:-1]
    assert len(lines) >= 2
    for previous, line in zip(lines, lines[1:]):
        assert CHARGEN_LINE.match(line + b"\r\n"), line
        assert line[:71] == previous[1:72], "each line starts one character further along"


@pytest.mark.parametrize("host,family", FAMILIES)
class TestPythonSocket:
    def test_echo_tcp_returns_bytes_until_client_closes(self, server, host, family):
        payload = bytes(range(256)) * 4000  # ~1 MB, every byte value
        assert tcp_read_all(host, family, server.port("echo"), payload, shut=True) == payload

    def test_echo_udp(self, server, host, family):
        assert udp_ask(host, family, server.port("echo", "udp"), b"ping \x00\xff") == b"ping \x00\xff"

    def test_discard_tcp_sends_nothing(self, server, host, family):
        assert tcp_read_all(host, family, server.port("discard"), b"x" * 100000, shut=True) == b""

    def test_discard_udp_sends_nothing(self, server, host, family):
        with pytest.raises(socket.timeout):
            udp_ask(host, family, server.port("discard", "udp"), b"gone", timeout=0.5)

    def test_daytime(self, server, host, family):
        for data in (tcp_read_all(host, family, server.port("daytime")), udp_ask(host, family, server.port("daytime", "udp"))):
            text = data.decode("ascii")
            assert text.endswith("\r\n")
            assert re.match(r"^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$", text), text
            assert str(time.gmtime().tm_year) in text

    def test_qotd(self, server, host, family):
        for data in (tcp_read_all(host, family, server.port("qotd")), udp_ask(host, family, server.port("qotd", "udp"))):
            assert 0 < len(data) <= 512
            assert all(32 <= b <= 126 or b in (10, 13) for b in data)

    def test_chargen_tcp_streams_the_rfc_pattern(self, server, host, family):
        data = tcp_read_all(host, family, server.port("chargen"), limit=74 * 300)
        check_chargen_lines(data[: 74 * 300])

    def test_chargen_udp(self, server, host, family):
        data = udp_ask(host, family, server.port("chargen", "udp"), b"x")
        assert len(data) <= 512
        assert all(32 <= b <= 126 or b in (10, 13) for b in data)

    def test_time(self, server, host, family):
        for data in (tcp_read_all(host, family, server.port("time")), udp_ask(host, family, server.port("time", "udp"))):
            assert len(data) == 4
            (value,) = struct.unpack("!I", data)
            assert abs(value - RFC868_OFFSET - time.time()) < 5


def run(cmd, input=None, timeout=10):
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)


class TestSocat:
    def test_echo_tcp(self, server):
        out = run(["socat", "-t2", "-", f"TCP:127.0.0.1:{server.port('echo')}"], input=b"via socat\n")
        assert out.stdout == b"via socat\n", out.stderr

    def test_echo_udp(self, server):
        out = run(["socat", "-t1", "-", f"UDP:127.0.0.1:{server.port('echo', 'udp')}"], input=b"datagram\n")
        assert out.stdout == b"datagram\n", out.stderr

    def test_daytime_tcp_and_udp(self, server):
        tcp = run(["socat", "-u", f"TCP:127.0.0.1:{server.port('daytime')}", "-"])
        assert tcp.stdout.endswith(b"-UTC\r\n"), tcp
        udp = run(["socat", "-t1", "-", f"UDP:127.0.0.1:{server.port('daytime', 'udp')}"], input=b"\n")
        assert udp.stdout.endswith(b"-UTC\r\n"), udp

    def test_time_tcp(self, server):
        out = run(["socat", "-u", f"TCP:127.0.0.1:{server.port('time')}", "-"])
        assert len(out.stdout) == 4
        assert abs(struct.unpack("!I", out.stdout)[0] - RFC868_OFFSET - time.time()) < 5

    def test_qotd_and_chargen_udp(self, server):
        q = run(["socat", "-t1", "-", f"UDP:127.0.0.1:{server.port('qotd', 'udp')}"], input=b"\n")
        assert 0 < len(q.stdout) <= 512
        c = run(["socat", "-t1", "-", f"UDP:127.0.0.1:{server.port('chargen', 'udp')}"], input=b"\n")
        assert len(c.stdout) <= 512

    def test_chargen_tcp(self, server):
        out = subprocess.run(f"socat -u TCP:127.0.0.1:{server.port('chargen')} - | head -c 7400", shell=True, capture_output=True, timeout=10)
        assert len(out.stdout) == 7400
        check_chargen_lines(out.stdout)

    def test_discard_tcp(self, server):
        out = run(["socat", "-t1", "-", f"TCP:127.0.0.1:{server.port('discard')}"], input=b"a" * 50000)
        assert out.returncode == 0 and out.stdout == b""


class TestNetcat:
    def test_echo_tcp(self, server):
        out = run(["nc", "-N", "127.0.0.1", str(server.port("echo"))], input=b"via netcat\n")
        assert out.stdout == b"via netcat\n", out.stderr

    def test_echo_udp(self, server):
        out = run(["nc", "-u", "-w1", "127.0.0.1", str(server.port("echo", "udp"))], input=b"nc udp\n")
        assert out.stdout == b"nc udp\n"

    def test_daytime_qotd_time_tcp(self, server):
        assert run(["nc", "-d", "127.0.0.1", str(server.port("daytime"))]).stdout.endswith(b"-UTC\r\n")
        assert 0 < len(run(["nc", "-d", "127.0.0.1", str(server.port("qotd"))]).stdout) <= 512
        assert len(run(["nc", "-d", "127.0.0.1", str(server.port("time"))]).stdout) == 4

    def test_daytime_udp_ipv6(self, server):
        if not ipv6_available():
            pytest.skip("no IPv6 on this machine")
        out = run(["nc", "-6", "-u", "-w1", "::1", str(server.port("daytime", "udp"))], input=b"\n")
        assert out.stdout.endswith(b"-UTC\r\n")


def test_many_python_clients_at_once(server):
    """200 TCP echo connections open at the same time, then 200 UDP exchanges in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    socks = []
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", server.port("echo")), timeout=5)
        socks.append(s)
    for i, s in enumerate(socks):
        s.sendall(b"client %d\n" % i)
    for i, s in enumerate(socks):
        assert s.recv(100) == b"client %d\n" % i
        s.close()

    def one(i):
        return udp_ask("127.0.0.1", socket.AF_INET, server.port("echo", "udp"), b"u%d" % i) == b"u%d" % i

    with ThreadPoolExecutor(50) as pool:
        assert all(pool.map(one, range(200)))
