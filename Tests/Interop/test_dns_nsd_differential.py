"""Differential test: the same zone in Debian's NSD and in InetKit, the same queries to both,
the answers compared section by section (rcode, flags, every section as a set of records)."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import STARTED, Server

ZONE = """$TTL 3600
@        SOA ns1 hostmaster 2026113001 7200 3600 1209600 300
         NS  ns1
         NS  ns2.other.test.
         MX  10 mail
         TXT "v=spf1 -all"
ns1      A   192.0.2.53
mail     A   192.0.2.25
         AAAA 2001:db8::25
www      CNAME host
host     A   192.0.2.1
         AAAA 2001:db8::1
chain    CNAME www
away     CNAME www.elsewhere.test.
*.wild   A   192.0.2.99
*.wild   MX  5 mail
a.b.ent  A   192.0.2.7
sub      NS  ns.sub
ns.sub   A   192.0.2.200
_http._tcp SRV 0 5 80 host
caa      CAA 0 issue "ca.test"
odd      TYPE65280 \\# 3 010203
"""

QUERIES = [(name, qtype) for name in [
    "example.test", "EXAMPLE.test", "www.example.test", "chain.example.test", "away.example.test", "host.example.test",
    "nothing.example.test", "x.wild.example.test", "x.y.wild.example.test", "wild.example.test", "b.ent.example.test",
    "ent.example.test", "a.b.ent.example.test", "www.sub.example.test", "sub.example.test", "ns.sub.example.test",
    "_http._tcp.example.test", "caa.example.test", "odd.example.test", "mail.example.test", "ns1.example.test",
] for qtype in ["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "SRV", "CAA", "TYPE65280"]] + [("example.org", "A")]


def free_port():
    while True:
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def nsd_conf(d, port, zone):
    """An NSD configuration that keeps everything in `d` and runs as the current user."""
    return f"""server:
  ip-address: 127.0.0.1
  port: {port}
  username: ""
  chroot: ""
  zonesdir: "{d}"
  pidfile: "{d}/nsd.pid"
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  logfile: "{d}/nsd.log"
  database: ""
  server-count: 1
  verbosity: 2
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: example.test
{zone}"""


@pytest.fixture(scope="module")
def nsd():
    if not shutil.which("nsd") and not os.path.exists("/usr/sbin/nsd"):
        pytest.fail("nsd is not installed (scripts/test installs it)")
    d = tempfile.mkdtemp(prefix="inetkit-nsd-")
    port = free_port()
    with open(os.path.join(d, "example.zone"), "w") as f:
        f.write(ZONE)
    with open(os.path.join(d, "nsd.conf"), "w") as f:
        f.write(nsd_conf(d, port, "  zonefile: example.zone\n"))
    proc = subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", os.path.join(d, "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(proc)
    deadline = time.time() + 15
    while time.time() < deadline:
        if "NOERROR" in dig(port, "example.test", "SOA"):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("nsd did not start: " + open(os.path.join(d, "nsd.log")).read())
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def inetkit():
    s = Server("bind: [127.0.0.1]\nlimits: { udp_rate: 0 }\nservices:\n  dns: { port: 0, zones: [{ origin: example.test., file: example.zone }] }\n",
               args=["--services", "dns"], files={"example.zone": ZONE})
    yield s.port("dns", "udp")
    assert s.stop() == 0


def dig(port, name, qtype, *extra):
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, qtype, "+norec", "+nocmd", "+nostats", "+bufsize=1232", *extra],
                          capture_output=True, text=True, timeout=20).stdout


def sections(text):
    """rcode, flags and each section as a sorted list of records (owner names lowercased:
    name compression may carry the question's letter case into them, on both servers)."""
    result = {}
    section = "HEADER"
    for line in text.splitlines():
        if line.startswith(";; ->>HEADER"):
            result["status"] = line.split("status: ")[1].split(",")[0]
        elif line.startswith(";; flags:"):
            result["flags"] = line.split("flags: ")[1].split(";")[0]
        elif line.startswith(";; ") and line.endswith("SECTION:"):
            section = line.split()[1]
        elif line and not line.startswith(";"):
            fields = line.split(None, 4)
            fields[0] = fields[0].lower()
            result.setdefault(section, []).append(" ".join(fields).lower())
    return {key: sorted(value) if isinstance(value, list) else value for key, value in result.items()}


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_same_answers_as_nsd(nsd, inetkit, transport):
    differences = []
    for name, qtype in QUERIES:
        ours = sections(dig(inetkit, name, qtype, transport))
        theirs = sections(dig(nsd, name, qtype, transport))
        if ours != theirs:
            differences.append(f"{name} {qtype}:\n  inetkit {ours}\n  nsd     {theirs}")
    assert not differences, f"{len(differences)} of {len(QUERIES)} differ:\n" + "\n".join(differences[:10])


def test_nsd_as_secondary_copies_the_zone_by_axfr(inetkit):
    """A standard secondary (NSD with request-xfr) copies the zone from InetKit and serves it."""
    d = tempfile.mkdtemp(prefix="inetkit-nsd2-")
    port = free_port()
    with open(os.path.join(d, "nsd.conf"), "w") as f:
        f.write(nsd_conf(d, port, f"  zonefile: example.test.copy\n  request-xfr: AXFR 127.0.0.1@{inetkit} NOKEY\n  allow-notify: 127.0.0.1 NOKEY\n"))
    proc = subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", os.path.join(d, "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(proc)
    try:
        # NSD starts, then asks for the zone. (Two NSDs sharing the default /var/lib/nsd/nsd.db
        # once made this one die silently after binding; each now runs without a database.)
        deadline = time.time() + 60
        answer = ""
        while time.time() < deadline:
            assert proc.poll() is None, f"NSD exited with {proc.returncode}: " + open(os.path.join(d, "nsd.log")).read()
            answer = subprocess.run(["dig", "+short", "@127.0.0.1", "-p", str(port), "x.wild.example.test", "A"], capture_output=True, text=True, timeout=10).stdout.strip()
            if answer:
                break
            time.sleep(0.3)
        assert answer == "192.0.2.99", open(os.path.join(d, "nsd.log")).read()
        assert "received update to serial 2026113001" in open(os.path.join(d, "nsd.log")).read()
        for name, qtype in [("caa.example.test", "CAA"), ("odd.example.test", "TYPE65280"), ("_http._tcp.example.test", "SRV")]:
            copied = sections(dig(port, name, qtype))
            original = sections(dig(inetkit, name, qtype))
            assert copied["ANSWER"] == original["ANSWER"]
    finally:
        proc.terminate()
        proc.wait(10)
