"""The DNS service driven by dig and kdig: UDP and TCP, with and without EDNS, truncation
then TCP retry, AXFR, the built-in zone, and malformed packets."""
import socket
import struct
import subprocess

import pytest

from conftest import Server

ZONE = """$TTL 3600
@        SOA ns1 hostmaster 2026113001 7200 3600 1209600 300
         NS  ns1
         MX  10 mail
ns1      A   192.0.2.53
mail     A   192.0.2.25
         AAAA 2001:db8::25
www      CNAME host
host     A   192.0.2.1
*.wild   A   192.0.2.99
sub      NS  ns.sub
ns.sub   A   192.0.2.200
_http._tcp SRV 0 5 80 host
""" + "".join(f'big TXT "{chr(97 + i) * 200}"\n' for i in range(10))


@pytest.fixture(scope="module")
def dns():
    s = Server("""bind: [127.0.0.1]
shutdown_grace: 1
limits: { udp_rate: 0 }
services:
  dns: { port: 0, zones: [{ origin: example.test., file: example.zone }] }
""", args=["--services", "dns"], files={"example.zone": ZONE})
    yield s
    assert s.stop() == 0


def dig(server, *args, tool="dig"):
    out = subprocess.run([tool, "@127.0.0.1", "-p", str(server.port("dns", "udp")), *args], capture_output=True, text=True, timeout=20)
    return out.stdout


def test_answer_is_authoritative_with_cname_chain(dns):
    out = dig(dns, "www.example.test", "A", "+norec")
    assert "status: NOERROR" in out and "flags: qr aa;" in out
    assert "CNAME\thost.example.test." in out and "192.0.2.1" in out


def test_question_letter_case_is_echoed(dns):
    assert ";WwW.ExAmPlE.TeSt.\t\tIN\tA" in dig(dns, "WwW.ExAmPlE.TeSt", "A")


def test_nxdomain_and_nodata_carry_soa(dns):
    nx = dig(dns, "nothing.example.test", "A")
    assert "status: NXDOMAIN" in nx and "SOA\tns1.example.test." in nx
    nodata = dig(dns, "host.example.test", "AAAA")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata and "SOA" in nodata


def test_wildcard_referral_and_additional(dns):
    assert dig(dns, "x.wild.example.test", "A", "+short").strip() == "192.0.2.99"
    referral = dig(dns, "www.sub.example.test", "A")
    assert "flags: qr rd;" in referral or "flags: qr;" in referral, "a referral is not authoritative"
    assert "ns.sub.example.test." in referral and "192.0.2.200" in referral
    mx = dig(dns, "example.test", "MX")
    assert "ADDITIONAL: 4" in mx and "2001:db8::25" in mx, mx  # mail A, AAAA, ns1 A, OPT


def test_refused_outside_zones(dns):
    assert "status: REFUSED" in dig(dns, "example.org", "A")


def test_truncation_then_tcp_retry(dns):
    udp = dig(dns, "big.example.test", "TXT", "+noedns", "+ignore")
    assert "flags: qr aa tc" in udp
    retried = dig(dns, "big.example.test", "TXT", "+noedns")
    assert "Truncated, retrying in TCP mode" in retried and "ANSWER: 10" in retried


def test_edns_payload_and_badvers(dns):
    out = dig(dns, "example.test", "SOA", "+bufsize=4096")
    assert "udp: 1232" in out
    bad = dig(dns, "example.test", "SOA", "+edns=1", "+noednsneg")
    assert "status: BADVERS" in bad


def test_kdig_over_tcp_and_udp(dns):
    assert kdig_short(dns, "+tcp") == "192.0.2.1"
    assert kdig_short(dns, "+notcp") == "192.0.2.1"


def kdig_short(dns, transport):
    return subprocess.run(["kdig", "@127.0.0.1", "-p", str(dns.port("dns", "tcp")), transport, "host.example.test", "A", "+short"],
                          capture_output=True, text=True, timeout=20).stdout.strip()


def test_axfr_from_loopback(dns):
    out = dig(dns, "example.test", "AXFR")
    records = [l for l in out.splitlines() if l and not l.startswith(";")]
    assert records[0].split()[3] == "SOA" and records[-1].split()[3] == "SOA"
    assert len(records) == 12 + 10 + 1, "SOA, the other 21 records, SOA"
    assert "XFR size" in out
    kout = subprocess.run(["kdig", "@127.0.0.1", "-p", str(dns.port("dns", "tcp")), "example.test", "AXFR"],
                          capture_output=True, text=True, timeout=20).stdout
    assert "192.0.2.200" in kout


def test_several_queries_on_one_tcp_connection(dns):
    def query(qid, name):
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
        body = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)
        return struct.pack("!H", len(body)) + body
    with socket.create_connection(("127.0.0.1", dns.port("dns", "tcp")), timeout=5) as s:
        s.sendall(query(1, "host.example.test") + query(2, "ns1.example.test") + query(3, "nothing.example.test"))
        ids = []
        data = b""
        while len(ids) < 3:
            data += s.recv(4096)
            while len(data) >= 2 and len(data) >= 2 + struct.unpack("!H", data[:2])[0]:
                length = struct.unpack("!H", data[:2])[0]
                ids.append((struct.unpack("!H", data[2:4])[0], data[5] & 0x0F))
                data = data[2 + length:]
        assert sorted(ids) == [(1, 0), (2, 0), (3, 3)]


def test_malformed_packets_get_formerr_or_nothing(dns):
    port = dns.port("dns", "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        # A pointer loop in the question name.
        u.sendto(struct.pack("!HHHHHH", 0x4242, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", ("127.0.0.1", port))
        reply, _ = u.recvfrom(512)
        assert reply[:2] == b"\x42\x42" and reply[3] & 0x0F == 1, "FORMERR"
        # Too short for a header: dropped. The server still answers afterwards.
        u.sendto(b"\x01\x02\x03", ("127.0.0.1", port))
        with pytest.raises(socket.timeout):
            u.recvfrom(512)
    assert dig(dns, "host.example.test", "A", "+short").strip() == "192.0.2.1"


def test_built_in_zone_describes_the_host():
    s = Server("bind: [127.0.0.1]\nlimits: { udp_rate: 0 }\nservices:\n  dns: { port: 0 }\n  echo: { port: 0 }\n  http: { port: 0 }\n",
               args=["--services", "dns,echo,http"])
    try:
        srv = dig(s, "_echo._udp.inetkit.test", "SRV", "+short").strip()
        assert srv == f"0 0 {s.port('echo', 'udp')} inetkit.test.", srv
        assert dig(s, "_http._tcp.inetkit.test", "SRV", "+short").strip().split()[2] == str(s.port("http"))
        assert dig(s, "ns.inetkit.test", "A", "+short").strip() == "127.0.0.1"
        assert "mail.inetkit.test." in dig(s, "inetkit.test", "MX", "+short")
    finally:
        assert s.stop() == 0


def test_inetkit_dns_client(dns):
    from conftest import BIN
    port = dns.port("dns", "udp")
    out = subprocess.run([BIN, "dns", "query", "www.example.test", "A", f"@127.0.0.1:{port}"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "status: NOERROR" in out.stdout and "host.example.test.\t3600\tIN\tA\t192.0.2.1" in out.stdout
    assert "(UDP)" in out.stdout
    big = subprocess.run([BIN, "dns", "query", "big.example.test", "TXT", f"@127.0.0.1:{port}", "--bufsize", "0"], capture_output=True, text=True, timeout=30)
    assert "(TCP)" in big.stdout and "ANSWER: 10" in big.stdout, "truncated over UDP, retried over TCP"
    two = subprocess.run([BIN, "dns", "query", "host.example.test", f"@127.0.0.1:{port}", f"@127.0.0.1:{port}", "--concurrency", "2"], capture_output=True, text=True, timeout=30)
    assert "all 2 servers gave the same answer" in two.stdout
    axfr = subprocess.run([BIN, "dns", "axfr", "example.test", f"@127.0.0.1:{port}"], capture_output=True, text=True, timeout=30)
    assert axfr.returncode == 0 and axfr.stdout.startswith("$ORIGIN example.test.") and ";; 22 records" in axfr.stdout
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    failed = subprocess.run([BIN, "dns", "query", "x.test", f"@127.0.0.1:{dead}", "--timeout", "1"], capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1 and "refused" in failed.stdout
