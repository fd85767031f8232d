"""SIGHUP reaches every transport (issue 11): SNMP communities and DNS zones change over UDP and
TCP alike; the host's directory (status pages, built-in zone, SNMP service table) survives; the
log lists what changed; a bad file keeps the old generation everywhere."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

from conftest import Server, wait_for

ENV = {**os.environ, "MIBS": ""}


def snmpget(port, community, oid="1.3.6.1.2.1.1.5.0"):
    out = subprocess.run(["snmpget", "-v2c", "-c", community, "-r0", "-t1", "-On", f"udp:127.0.0.1:{port}", oid],
                         capture_output=True, text=True, env=ENV, timeout=30)
    return out.returncode == 0 and oid in out.stdout


def dig(port, name, qtype="A", tcp=False):
    args = ["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=2", "+short", name, qtype] + (["+tcp"] if tcp else ["+notcp"])
    return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()


ZONE = """$TTL 60
@ IN SOA ns hostmaster 1 7200 3600 1209600 60
  IN NS ns
ns IN A 192.0.2.53
www IN A 192.0.2.80
"""


def config(d, communities, zones, extra=""):
    return f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
limits: {{ udp_rate: 0 }}
services:
  ftp: {{ enabled: false }}
  smtp: {{ enabled: false }}
  pop3: {{ enabled: false }}
  echo: {{ port: 0 }}
  discard: {{ enabled: false }}
  qotd: {{ enabled: false }}
  chargen: {{ enabled: false }}
  time: {{ enabled: false }}
  ntp: {{ enabled: false }}
  finger: {{ enabled: false }}
  ident: {{ enabled: false }}
  https: {{ enabled: false }}
  smtps: {{ enabled: false }}
  pop3s: {{ enabled: false }}
  ftps: {{ enabled: false }}
  tftp: {{ enabled: false }}
  syslog: {{ enabled: false }}
  daytime: {{ port: 0 }}
  http: {{ port: 0 }}
  snmp:
    port: 0
    communities: [{communities}]
  dns:
    port: 0
    zones: [{zones}]
{extra}"""



def reloaded(server, count):
    return wait_for(lambda: server.read_stderr().count("configuration reloaded") + server.read_stderr().count("reload failed") >= count)


def test_sighup_rotates_communities_and_adds_zones_on_udp_and_tcp(tmp_path):
    d = str(tmp_path)
    with open(f"{d}/one.zone", "w") as f:
        f.write(ZONE)
    with open(f"{d}/two.zone", "w") as f:
        f.write(ZONE.replace("192.0.2.80", "198.51.100.80"))
    s = Server(config(d, "{ name: old-secret }", f'{{ origin: one.test., file: "{d}/one.zone" }}'))
    snmp, dns_udp, dns_tcp = s.port("snmp", "udp"), s.port("dns", "udp"), s.port("dns", "tcp")
    assert snmpget(snmp, "old-secret") and not snmpget(snmp, "new-secret")
    assert dig(dns_udp, "www.one.test") == "192.0.2.80" and dig(dns_tcp, "www.one.test", tcp=True) == "192.0.2.80"
    assert dig(dns_udp, "www.two.test") == ""

    s.write_config(config(d, "{ name: new-secret }",
                          f'{{ origin: one.test., file: "{d}/one.zone" }}, {{ origin: two.test., file: "{d}/two.zone" }}'))
    s.signal(signal.SIGHUP)
    assert reloaded(s, 1)
    # Every UDP socket (one per event loop) answers from the new generation: ask several times
    # from new source ports.
    for _ in range(6):
        assert snmpget(snmp, "new-secret"), s.read_stderr()[-2000:]
        assert not snmpget(snmp, "old-secret"), "the removed community is still answered"
        assert dig(dns_udp, "www.two.test") == "198.51.100.80", "a zone added by the reload is not served over UDP"
    assert dig(dns_tcp, "www.two.test", tcp=True) == "198.51.100.80"
    assert dig(dns_udp, "www.one.test") == "192.0.2.80"
    log = s.read_stderr()
    line = [l for l in log.splitlines() if "configuration reloaded" in l][-1]
    assert "snmp: options changed" in line and "dns: options changed" in line, line
    assert "changes=[]" not in line

    # A bad file: the previous generation stays, on both transports.
    s.write_config(config(d, "{ name: third }", f'{{ origin: three.test., file: "{d}/missing.zone" }}'))
    s.signal(signal.SIGHUP)
    assert reloaded(s, 2)
    assert "reload failed" in s.read_stderr() and "missing.zone" in s.read_stderr()
    assert snmpget(snmp, "new-secret") and not snmpget(snmp, "third")
    assert dig(dns_udp, "www.two.test") == "198.51.100.80" and dig(dns_tcp, "www.two.test", tcp=True) == "198.51.100.80"
    assert s.stop() == 0


def test_status_pages_built_in_zone_and_service_table_survive_a_reload(tmp_path):
    d = str(tmp_path)
    s = Server(config(d, "{ name: public }", "").replace("    zones: []\n", ""))
    http, dns = s.port("http"), s.port("dns", "udp")

    def status():
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/_inetkit/status.json", timeout=5) as r:
            return json.load(r)

    def running():
        return sorted(svc["name"] for svc in status()["services"] if svc["running"])

    def srv(tcp=False):
        return dig(s.port("dns", "tcp" if tcp else "udp"), "_echo._tcp.inetkit.test", "SRV", tcp=tcp)

    before = running()
    assert "echo" in before and "daytime" in before
    assert srv() and srv(tcp=True)
    uptime = status()["uptime_seconds"]
    # Reload with a change (daytime disabled), then with none.
    s.write_config(config(d, "{ name: public }", "").replace("    zones: []\n", "").replace("  daytime: { port: 0 }", "  daytime: { enabled: false }"))
    s.signal(signal.SIGHUP)
    assert reloaded(s, 1)
    assert wait_for(lambda: "daytime" not in running())
    assert running() == [name for name in before if name != "daytime"], "the status page lists the services after a reload"
    assert status()["uptime_seconds"] >= uptime, "uptime goes on over a reload"
    assert srv() and srv(tcp=True), "the built-in zone still describes the host"
    assert dig(dns, "_daytime._tcp.inetkit.test", "SRV") == "", "the built-in zone follows the disabled service"
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/_inetkit/", timeout=5) as r:
        page = r.read().decode()
    assert "echo" in page and "snmp" in page
    walk = subprocess.run(["snmpwalk", "-v2c", "-c", "public", "-On", f"udp:127.0.0.1:{s.port('snmp', 'udp')}", "1.3.6.1.4.1.32473.1.1.1.1.2"],
                          capture_output=True, text=True, env=ENV, timeout=30).stdout
    assert '"echo"' in walk and '"snmp"' in walk, walk
    log = [l for l in s.read_stderr().splitlines() if "configuration reloaded" in l][-1]
    assert "daytime: disabled" in log, log
    assert s.stop() == 0


def test_a_reload_changes_limits_on_udp_and_tcp(tmp_path):
    """Limits are part of the generation: after SIGHUP, echo's udp_rate applies to its UDP
    sockets and its max_connections to new TCP connections; a connection open before the
    reload goes on."""
    import socket
    d = str(tmp_path)
    with open(f"{d}/one.zone", "w") as f:
        f.write(ZONE)
    zones = f'{{ origin: one.test., file: "{d}/one.zone" }}'
    # The connection from before the reload lives in a draining worker: give it a grace that
    # outlasts the test's steps on a slow machine (it is closed before the stop).
    s = Server(config(d, "{ name: public }", zones).replace("shutdown_grace: 1", "shutdown_grace: 15"))
    port = s.port("echo", "udp")

    def udp_answers(count=20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.3)
            for i in range(count):
                u.sendto(b"ping %d" % i, ("127.0.0.1", port))
            answers = 0
            try:
                while True:
                    u.recvfrom(100)
                    answers += 1
            except socket.timeout:
                return answers

    def tcp_echo(sock):
        sock.sendall(b"hello\r\n")
        try:
            return sock.recv(100)
        except (ConnectionResetError, socket.timeout):
            return b""

    assert udp_answers() == 20
    first = socket.create_connection(("127.0.0.1", s.port("echo")), timeout=3)
    assert tcp_echo(first) == b"hello\r\n"

    s.write_config(config(d, "{ name: public }", zones).replace("shutdown_grace: 1", "shutdown_grace: 15").replace(
        "  echo: { port: 0 }", "  echo: { port: 0, udp_rate: 1, udp_burst: 2, max_connections: 1 }"))
    s.signal(signal.SIGHUP)
    assert reloaded(s, 1)
    assert udp_answers() <= 3, "udp_rate from the reload is not applied to the UDP sockets"
    assert tcp_echo(first) == b"hello\r\n", "a connection from before the reload was dropped"
    second = socket.create_connection(("127.0.0.1", s.port("echo")), timeout=3)
    assert tcp_echo(second) == b"", "max_connections from the reload is not applied to TCP"
    second.close()
    first.close()
    assert wait_for(lambda: "max_connections 1 reached" in s.read_stderr())
    assert s.stop() == 0
