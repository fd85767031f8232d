"""Hostile input against the real binary: each input that once stopped the whole host (issue 11)
is sent to a running `inetkit serve`, and then every service must still answer (`inetkit probe`),
and the process must still be running. Operator input that would arm a crash (zone files) must
be refused at start with file:line."""
import ftplib
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, Server, all_on_port_zero, http_raw


def probe(server):
    """Every service of the host answers (the simple ones on TCP and UDP, FTP/SMTP/POP3 by
    greeting, HTTP by HEAD, DNS by a query, SNMP by a GET)."""
    assert server.proc.poll() is None, f"the host stopped: {server.read_stderr()[-3000:]}"
    out = subprocess.run([BIN, "probe", "--ports-file", server.ports_path, "--timeout", "5", "127.0.0.1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " down " not in out.stdout, out.stdout


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    upload = d / "upload"
    upload.mkdir()
    (upload / "small.txt").write_bytes(b"0123456789")
    extra = f"""  ftp:
    port: 0
    users: [{{ name: alice, password: secret, home: "{upload}", write: true }}]
"""
    text = all_on_port_zero().replace("  ftp: { port: 0 }\n", "") + extra
    s = Server(text)
    yield s
    assert s.stop() == 0


# MARK: - SNMP


def ber(tag, content):
    length = len(content)
    if length < 0x80:
        head = bytes([length])
    else:
        raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + content


def get_request(oid_content, community=b"public", version=1):
    varbind = ber(0x30, ber(0x06, oid_content) + ber(0x05, b""))
    pdu = ber(0xA0, ber(0x02, b"\x01") + ber(0x02, b"\x00") + ber(0x02, b"\x00") + ber(0x30, varbind))
    return ber(0x30, ber(0x02, bytes([version])) + ber(0x04, community) + pdu)


def base128(value):
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def snmp_exchange(port, datagram, timeout=1.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(datagram, ("127.0.0.1", port))
        try:
            return s.recv(65536)
        except socket.timeout:
            return None


def test_snmp_oid_sub_identifier_over_32_bits_is_dropped(host):
    port = host.port("snmp", "udp")
    # 1.3.6.1.<2^32>: content ending 90 80 80 80 00; every value from 2^32 to 2^32+79.
    for extra in (0, 1, 79, 80):
        oid = b"\x2b\x06\x01" + base128(2**32 + extra)
        assert snmp_exchange(port, get_request(oid)) is None
    # The same in the first sub-identifier, and with an unknown community.
    assert snmp_exchange(port, get_request(base128(2**32 + 80 + 5))) is None
    assert snmp_exchange(port, get_request(b"\x2b\x06\x01\x90\x80\x80\x80\x00", community=b"nobody")) is None
    probe(host)


def test_snmp_oid_2_4294967295_is_answered(host):
    """2.4294967295 is a legal OID whose first sub-identifier needs 33 bits; the agent echoes it
    back in its response (noSuchObject), which once overflowed."""
    port = host.port("snmp", "udp")
    oid = base128(80 + 4294967295)
    answer = snmp_exchange(port, get_request(oid))
    assert answer is not None and base128(80 + 4294967295) in answer
    probe(host)


def test_snmp_garbage_and_deep_nesting(host):
    port = host.port("snmp", "udp")
    for datagram in [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x80" * 2000, b"\x30\x81\xff" + b"\x00" * 10,
                     get_request(b"\x80"), get_request(b"\x2b\xff"), get_request(b"")]:
        assert snmp_exchange(port, datagram, timeout=0.3) is None
    probe(host)


# MARK: - HTTP


def test_http_range_with_a_signed_suffix(host):
    for value in [b"bytes=- -9223372036854775808", b"bytes=- -5", b"bytes=-9223372036854775808", b"bytes=9223372036854775807-",
                  b"bytes=99999999999999999999999999-", b"bytes=-99999999999999999999999", b"bytes=0-,-", b"bytes=\xd9\xa3-"]:
        answer = http_raw(host, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: " + value + b"\r\n\r\n")
        status = answer.split(b" ", 2)[1] if answer else b""
        assert status in (b"200", b"206", b"416"), (value, answer[:200])
    answer = http_raw(host, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: bytes=- -5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    answer = http_raw(host, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: bytes=-5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 206"), answer[:300]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert len(body) == 5 and b"content-range: bytes " in head.lower(), answer[:300]
    probe(host)


# MARK: - FTP


def ftp_session(host, user="anonymous", password="x@"):
    f = ftplib.FTP()
    f.connect("127.0.0.1", host.port("ftp"), timeout=10)
    f.login(user, password)
    return f


def test_ftp_eprt_port_out_of_range(host):
    f = ftp_session(host)
    for argument in ["|1|127.0.0.1|70000|", "|1|127.0.0.1|-1|", "|1|127.0.0.1|0|", "|1|127.0.0.1|99999999999999999999999|",
                     "|2|::1|65536|", "|3|127.0.0.1|2000|", "|1|127.0.0.1|+2000|", "|1|999.0.0.1|2000|", "|1||2000|", "||||"]:
        with pytest.raises(ftplib.error_perm) as failure:
            f.sendcmd("EPRT " + argument)
        assert str(failure.value)[:3] in ("501", "522"), (argument, failure.value)
    for argument in ["127,0,0,1,300,1", "127,0,0,1,-1,1", "127,0,0,1,0,0", "1,2,3", "127,0,0,1,1,99999999999999999999"]:
        with pytest.raises(ftplib.error_perm):
            f.sendcmd("PORT " + argument)
    f.quit()
    probe(host)


def test_ftp_rest_past_the_end_is_refused(host, tmp_path):
    f = ftp_session(host, "alice", "secret")
    for argument in ["-1", "99999999999999999999999", "1e9", "+5"]:
        with pytest.raises(ftplib.error_perm):
            f.sendcmd("REST " + argument)
    source = tmp_path / "tail"
    source.write_bytes(b"abc")
    with open(source, "rb") as data:
        with pytest.raises(ftplib.error_perm) as failure:
            f.storbinary("STOR small.txt", data, rest=2**40)
    assert str(failure.value).startswith("554"), failure.value
    assert f.size("small.txt") == 10, "the file is left as it was"
    with open(source, "rb") as data:
        f.storbinary("STOR small.txt", data, rest=10)
    assert f.size("small.txt") == 13, "a resume at the end still works"
    f.quit()
    probe(host)


# MARK: - SMTP


def smtp_dialogue(host, lines):
    with socket.create_connection(("127.0.0.1", host.port("smtp")), timeout=10) as s:
        reader = s.makefile("rb")
        replies = [reader.readline()]
        for line in lines:
            s.sendall(line + b"\r\n")
            reply = reader.readline()
            while reply[3:4] == b"-":
                reply = reader.readline()
            replies.append(reply)
        return replies


def test_smtp_escaped_control_characters_are_refused(host):
    replies = smtp_dialogue(host, [b"EHLO a\rInjected: x", b"EHLO client.test", b'MAIL FROM:<"a\\\rX-Evil: 1"@example.test>',
                                   b'MAIL FROM:<"a\\\x00b"@example.test>', b'MAIL FROM:<"a\\ b"@example.test>', b"QUIT"])
    assert replies[1][:3] in (b"501", b"500"), replies
    assert replies[2].startswith(b"250"), replies
    assert replies[3][:3] in (b"501", b"500"), replies
    assert replies[4][:3] in (b"501", b"500"), replies
    assert replies[5].startswith(b"250"), replies
    probe(host)


# MARK: - Zone files


def start_with_zone(tmp_path, zone_text):
    zone = tmp_path / "bad.zone"
    zone.write_text(zone_text)
    config = tmp_path / "config.yaml"
    config.write_text(f"""bind: [127.0.0.1]
services:
  dns: {{ port: 0, zones: [{{ origin: bad.test., file: "{zone}" }}] }}
""")
    out = subprocess.run([BIN, "serve", "--config", str(config), "--services", "dns"], capture_output=True, text=True, timeout=30)
    return out, str(zone)


SOA = "@ 3600 IN SOA ns.bad.test. admin.bad.test. 1 7200 3600 1209600 300\n@ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\n"


def test_zone_with_a_long_caa_tag_is_refused_with_its_line(tmp_path):
    out, zone = start_with_zone(tmp_path, SOA + "@ 3600 IN CAA 0 " + "a" * 300 + ' "ca.example"\n')
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{zone}:4" in out.stderr and "CAA" in out.stderr, out.stderr


def test_zone_with_a_ttl_that_overflows_is_refused_with_its_line(tmp_path):
    for ttl in ["$TTL " + "4294967295w" * 40, "$TTL 99999999999999999999999", "$TTL 2147483648"]:
        out, zone = start_with_zone(tmp_path, ttl + "\n" + SOA)
        assert out.returncode == 2, out.stdout + out.stderr
        assert f"{zone}:1" in out.stderr and "TTL" in out.stderr, out.stderr
    out, zone = start_with_zone(tmp_path, SOA + "x " + "1w" * 5000 + " IN A 127.0.0.2\n")
    assert out.returncode == 2 and f"{zone}:4" in out.stderr, out.stderr


def test_zone_with_a_record_too_large_to_send_is_refused(tmp_path):
    strings = " ".join(['"' + "x" * 255 + '"'] * 300)
    out, zone = start_with_zone(tmp_path, SOA + "big 3600 IN TXT " + strings + "\n")
    assert out.returncode == 2 and f"{zone}:4" in out.stderr and "too large" in out.stderr, out.stderr


# MARK: - Files dated far from now


def test_files_dated_far_from_now(tmp_path):
    """A file dated past 2262 has no nanosecond count in 64 bits (that multiplication trapped on
    the first GET of it); one dated 1901 is before the epoch. Both are served, listed and dated."""
    site = tmp_path / "site"
    site.mkdir()
    for name, when in [("future.txt", 13_569_465_600), ("past.txt", -2**31)]:
        path = site / name
        path.write_bytes(b"dated\n")
        os.utime(path, (when, when))
    text = all_on_port_zero().replace("  http: { port: 0 }\n", "").replace("  ftp: { port: 0 }\n", "")
    text += f'  http: {{ port: 0, root: "{site}", listing: true }}\n  ftp: {{ port: 0, root: "{site}", anonymous: true }}\n'
    s = Server(text)
    try:
        answer = http_raw(s, b"GET /future.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and b"2400" in answer.split(b"\r\n\r\n")[0], answer[:400]
        answer = http_raw(s, b"GET /past.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and b"1901" in answer.split(b"\r\n\r\n")[0], answer[:400]
        assert http_raw(s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
        f = ftp_session(s)
        lines = []
        f.retrlines("LIST", lines.append)
        assert any("future.txt" in line and "2400" in line for line in lines), lines
        assert any("past.txt" in line and "1901" in line for line in lines), lines
        assert f.sendcmd("MDTM future.txt") == "213 24000101000000"
        assert f.sendcmd("MDTM past.txt").startswith("213 1901")
        facts = []
        f.retrlines("MLSD", facts.append)
        assert any("modify=2400" in line for line in facts), facts
        f.quit()
        probe(s)
    finally:
        assert s.stop() == 0
