"""The SNMP agent against net-snmp's tools (snmpget, snmpgetnext, snmpwalk, snmpbulkwalk,
snmpset, snmptable, snmptranslate, snmptrapd), pysnmp, smilint and `inetkit snmp`; malformed
datagrams; notifications."""
import asyncio
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import ALL_SERVICES, BIN, ROOT, Server, free_port

MIBDIR = os.path.join(ROOT, "mibs")
ENV = {**os.environ, "MIBS": "", "MIBDIRS": MIBDIR}
NET = ["-M", MIBDIR, "-m", "INETKIT-MIB"]


def snmp(tool, *args, check=True):
    out = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, env=ENV)
    if check:
        assert out.returncode == 0, f"{tool} {args}: {out.stdout}{out.stderr}"
    return out


def config(d, trap_port, extra=""):
    # No --services on the command line: a reload may then stop a service (and so send a trap).
    others = "".join(f"  {name}: {{ enabled: false }}\n" for name in ALL_SERVICES if name not in ("echo", "daytime", "snmp"))
    return f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
services:
{others}  echo: {{ port: 0 }}
  daytime: {{ port: 0 }}
  snmp:
    port: 0
    communities: [{{ name: public, access: read }}, {{ name: private, access: write }}]
    contact: ops@inetkit.test
    location: rack 1
    trap_sinks: ["127.0.0.1:{trap_port}"]
{extra}"""


class TrapReceiver:
    """snmptrapd in the foreground, logging every notification to a file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="inetkit-trapd-")
        self.port = free_port(socket.SOCK_DGRAM)
        with open(f"{self.dir}/snmptrapd.conf", "w") as f:
            f.write("disableAuthorization yes\n")
        self.log = open(f"{self.dir}/traps.log", "w+")
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-Lo", "-C", "-c", f"{self.dir}/snmptrapd.conf", "-On", "-p", f"{self.dir}/pid",
             f"udp:127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        deadline = time.time() + 10
        while time.time() < deadline and "NET-SNMP version" not in self.text():
            time.sleep(0.05)

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def wait_for(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def agent():
    d = tempfile.mkdtemp(prefix="inetkit-snmp-")
    traps = TrapReceiver()
    s = Server(config(d, traps.port))
    s.d = d
    s.traps = traps
    s.target = f"127.0.0.1:{s.port('snmp', 'udp')}"
    yield s
    assert s.stop() == 0
    traps.stop()


def test_snmpget_and_getnext(agent):
    out = snmp("snmpget", "-v2c", "-c", "public", "-On", agent.target, "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.4.0", "1.3.6.1.2.1.1.6.0",
               "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.2.0").stdout
    assert 'STRING: "InetKit SNMP agent' in out
    assert 'STRING: "ops@inetkit.test"' in out and 'STRING: "rack 1"' in out
    assert re.search(r"Timeticks: \(\d+\)", out)
    assert ".1.3.6.1.4.1.32473.1.3" in out
    missing = snmp("snmpget", "-v2c", "-c", "public", agent.target, "1.3.6.1.2.1.1.1.1", "1.3.6.1.2.1.99.0").stdout
    assert "No Such Instance" in missing and "No Such Object" in missing
    v1 = snmp("snmpget", "-v1", "-c", "public", agent.target, "1.3.6.1.2.1.99.0", check=False)
    assert v1.returncode != 0 and "noSuchName" in v1.stdout + v1.stderr
    nxt = snmp("snmpgetnext", "-v2c", "-c", "public", "-On", agent.target, "1.3.6.1.2.1.1.3.0").stdout
    assert nxt.startswith(".1.3.6.1.2.1.1.4.0 = ")


def test_snmpwalk_and_bulkwalk_agree(agent):
    walk = snmp("snmpwalk", "-v2c", "-c", "public", "-On", "-Oe", agent.target, "1.3.6.1.2.1.1").stdout.splitlines()
    bulk = snmp("snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oe", agent.target, "1.3.6.1.2.1.1").stdout.splitlines()
    strip = lambda lines: [l for l in lines if ".1.3.6.1.2.1.1.3.0" not in l]  # sysUpTime moves
    assert strip(walk) == strip(bulk) and len(walk) >= 15
    oids = [line.split(" = ")[0] for line in snmp("snmpwalk", "-v2c", "-c", "public", "-On", agent.target).stdout.splitlines()]
    assert len(oids) > 40 and len(set(oids)) == len(oids)
    ifaces = snmp("snmpwalk", "-v2c", "-c", "public", agent.target, "1.3.6.1.2.1.2.2.1.2").stdout
    assert 'STRING: "lo"' in ifaces
    hc = snmp("snmpwalk", "-v2c", "-c", "public", agent.target, "1.3.6.1.2.1.31.1.1.1.6").stdout
    assert "Counter64" in hc
    v1 = snmp("snmpwalk", "-v1", "-c", "public", agent.target, "1.3.6.1.2.1.31.1.1.1").stdout
    assert "Counter64" not in v1 and "STRING" in v1, "SNMPv1 walks skip Counter64"


def test_service_table_with_the_mib(agent):
    # Traffic on echo shows up in its row.
    with socket.create_connection(("127.0.0.1", agent.port("echo")), timeout=5) as c:
        c.sendall(b"hello")
        assert c.recv(10) == b"hello"
    time.sleep(0.2)
    table = snmp("snmptable", "-v2c", "-c", "public", *NET, "-Cf", ",", "-CH", agent.target, "INETKIT-MIB::inetkitServiceTable").stdout
    rows = [line.split(",") for line in table.strip().splitlines()]
    echo_tcp = next(r for r in rows if r[0] == "echo" and r[1] == "tcp")
    assert echo_tcp[2] == str(agent.port("echo")) and echo_tcp[3] == "running"
    assert int(echo_tcp[4]) >= 1 and int(echo_tcp[7]) >= 5 and int(echo_tcp[8]) >= 5, echo_tcp
    assert any(r[0] == "snmp" and r[1] == "udp" for r in rows)
    named = snmp("snmpwalk", "-v2c", "-c", "public", *NET, agent.target, "INETKIT-MIB::inetkitServiceName").stdout
    assert 'INETKIT-MIB::inetkitServiceName.1 = STRING: echo' in named


def test_mib_file_loads_in_net_snmp_and_smilint():
    tree = snmp("snmptranslate", *NET, "-Pu", "-Tp", "-IR", "inetkitServiceTable")
    assert "inetkitServiceBytesIn(9)" in tree.stdout and "Counter64" in tree.stdout
    assert "Cannot find" not in tree.stderr and "Unlinked" not in tree.stderr, tree.stderr
    assert snmp("snmptranslate", *NET, "-On", "INETKIT-MIB::inetkitServiceStopped").stdout.strip() == ".1.3.6.1.4.1.32473.1.0.1"
    lint = subprocess.run(["smilint", "-l", "3", "-s", os.path.join(MIBDIR, "INETKIT-MIB.txt")], capture_output=True, text=True,
                          env={**os.environ, "SMIPATH": MIBDIR}, timeout=60)
    assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr


def test_snmpset_rules_and_persistence(agent):
    ok = snmp("snmpset", "-v2c", "-c", "private", agent.target, "1.3.6.1.2.1.1.6.0", "s", "rack 9")
    assert 'STRING: "rack 9"' in ok.stdout
    denied = snmp("snmpset", "-v2c", "-c", "public", agent.target, "1.3.6.1.2.1.1.6.0", "s", "x", check=False)
    assert denied.returncode != 0 and "noAccess" in denied.stdout + denied.stderr
    wrong = snmp("snmpset", "-v2c", "-c", "private", agent.target, "1.3.6.1.2.1.1.6.0", "i", "3", check=False)
    assert "wrongType" in wrong.stdout + wrong.stderr
    fixed = snmp("snmpset", "-v2c", "-c", "private", agent.target, "1.3.6.1.2.1.1.1.0", "s", "x", check=False)
    assert "notWritable" in fixed.stdout + fixed.stderr
    v1 = snmp("snmpset", "-v1", "-c", "public", agent.target, "1.3.6.1.2.1.1.6.0", "s", "x", check=False)
    assert "readOnly" in v1.stdout + v1.stderr
    with open(f"{agent.d}/data/snmp/system.conf") as f:
        assert "sysLocation=rack 9" in f.read()


def test_wrong_community_gets_no_answer_and_is_counted(agent):
    before = int(snmp("snmpget", "-v2c", "-c", "public", "-Oqv", agent.target, "1.3.6.1.2.1.11.4.0").stdout)
    silent = snmp("snmpget", "-v2c", "-c", "guess", "-t", "0.3", "-r", "0", agent.target, "1.3.6.1.2.1.1.5.0", check=False)
    assert silent.returncode != 0 and "Timeout" in silent.stdout + silent.stderr
    after = int(snmp("snmpget", "-v2c", "-c", "public", "-Oqv", agent.target, "1.3.6.1.2.1.11.4.0").stdout)
    assert after == before + 1


def test_malformed_datagrams_are_dropped_and_counted(agent):
    host, port = agent.target.split(":")
    port = int(port)
    parse_errors = lambda: int(snmp("snmpget", "-v2c", "-c", "public", "-Oqv", agent.target, "1.3.6.1.2.1.11.6.0").stdout)
    before = parse_errors()
    bad = [
        b"",                                                  # empty
        b"\x30\x7f\x02\x01\x01",                               # length past the end
        b"\x30\x89" + b"\x01" * 9,                             # overlong length
        b"\x30" + b"\x84\xff\xff\xff\xff",                     # 4 GiB claimed
        bytes([0x30, 0x80]) + b"\x00\x00",                     # indefinite length
        b"\x30\x0b\x02\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09",  # huge integer
        b"\x31\x03\x02\x01\x01",                               # wrong tag
        (b"\x30\x02" * 200) + b"\x05\x00",                     # deep nesting, wrong lengths
        os.urandom(1400),
        b"GET / HTTP/1.0\r\n\r\n",
    ]
    deep = b"\x05\x00"
    for _ in range(120):
        deep = b"\x30" + (bytes([len(deep)]) if len(deep) < 128 else bytes([0x82, len(deep) >> 8, len(deep) & 0xFF])) + deep
    bad.append(deep)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for payload in bad:
            s.sendto(payload, (host, port))
        with pytest.raises(socket.timeout):
            s.recvfrom(2000)
    assert parse_errors() >= before + len(bad) - 1  # the random one might, by chance, be well-formed BER
    assert snmp("snmpget", "-v2c", "-c", "public", agent.target, "1.3.6.1.2.1.1.5.0").returncode == 0, "still answering"


def test_pysnmp_manager(agent):
    from pysnmp.hlapi.v3arch.asyncio import (CommunityData, ContextData, ObjectIdentity, ObjectType, OctetString, SnmpEngine,
                                             UdpTransportTarget, bulk_cmd, get_cmd, set_cmd, walk_cmd)
    host, port = agent.target.split(":")

    async def run():
        engine = SnmpEngine()
        target = await UdpTransportTarget.create((host, int(port)), timeout=1, retries=2)
        err, status, _, binds = await get_cmd(engine, CommunityData("public", mpModel=0), target, ContextData(),
                                              ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0")))
        assert err is None and int(status) == 0 and len(binds) == 1
        err, status, _, binds = await bulk_cmd(engine, CommunityData("public"), target, ContextData(), 0, 8,
                                               ObjectType(ObjectIdentity("1.3.6.1.4.1.32473.1.1.1.1.2")))
        assert err is None and int(status) == 0 and len(binds) == 8
        assert str(binds[0][1]) == "echo"
        count = 0
        async for err, status, _, binds in walk_cmd(engine, CommunityData("public"), target, ContextData(),
                                                    ObjectType(ObjectIdentity("1.3.6.1.2.1.1")), lexicographicMode=False):
            assert err is None and int(status) == 0
            count += 1
        assert count >= 15
        err, status, _, binds = await set_cmd(engine, CommunityData("private"), target, ContextData(),
                                              ObjectType(ObjectIdentity("1.3.6.1.2.1.1.4.0"), OctetString("pysnmp")))
        assert err is None and int(status) == 0
        engine.close_dispatcher()

    asyncio.run(run())
    assert 'STRING: "pysnmp"' in snmp("snmpget", "-v2c", "-c", "public", agent.target, "1.3.6.1.2.1.1.4.0").stdout


def test_inetkit_snmp_client(agent):
    out = subprocess.run([BIN, "snmp", "get", agent.target, "sysName.0", "sysServices.0"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "sysServices.0 = INTEGER: 72" in out.stdout, out.stderr
    ipv4 = agent.target
    walk = subprocess.run([BIN, "snmp", "walk", f"{ipv4},{ipv4}", "system", "--concurrency", "2"], capture_output=True, text=True, timeout=30)
    assert walk.returncode == 0, walk.stderr
    assert walk.stdout.count(f"{ipv4}: sysDescr.0 = STRING") == 2
    table = subprocess.run([BIN, "snmp", "table", agent.target], capture_output=True, text=True, timeout=30)
    assert table.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:6] == ["index", "Name", "Transport", "Port", "Status", "Connections"]
    assert any(r.split()[1:5] == ["echo", "tcp", str(agent.port("echo")), "running"] for r in rows), table.stdout
    bulk = subprocess.run([BIN, "snmp", "bulkwalk", agent.target, "ifTable"], capture_output=True, text=True, timeout=30)
    assert 'ifDescr.1 = STRING: "lo"' in bulk.stdout or "ifDescr" in bulk.stdout
    setting = subprocess.run([BIN, "snmp", "set", "-c", "private", agent.target, "sysContact.0", "s", "cli"], capture_output=True, text=True, timeout=30)
    assert setting.returncode == 0 and 'sysContact.0 = STRING: "cli"' in setting.stdout
    refused = subprocess.run([BIN, "snmp", "set", agent.target, "sysContact.0", "s", "x"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "noAccess" in refused.stderr
    silent = subprocess.run([BIN, "snmp", "get", "-c", "nope", "--timeout", "0.2", "--retries", "0", agent.target, "sysName.0"],
                            capture_output=True, text=True, timeout=30)
    assert silent.returncode == 1 and "no answer" in silent.stderr


def test_notifications_cold_start_and_service_stopped(agent):
    assert agent.traps.wait_for(".1.3.6.1.6.3.1.1.5.1"), agent.traps.text()
    text = open(agent.config_path).read()
    agent.write_config(text.replace("  daytime: { port: 0 }", "  daytime: { port: 0, enabled: false }"))
    agent.signal(signal.SIGHUP)
    assert agent.traps.wait_for(".1.3.6.1.4.1.32473.1.0.1"), agent.traps.text()
    assert 'STRING: "daytime"' in agent.traps.text()
    agent.write_config(text)
    agent.signal(signal.SIGHUP)


def test_getbulk_keeps_a_strict_limit_per_source_and_gets_do_not():
    """GETBULK, whose answer can be thirty times its request, has its own per-source limit
    (bulk_rate, bulk_burst); GETs go on being answered past it; the drop is logged once."""
    s = Server("""bind: [127.0.0.1]
services:
  snmp: { port: 0, bulk_rate: 0.5, bulk_burst: 2 }
""", args=["--services", "snmp"])
    try:
        target = f"127.0.0.1:{s.port('snmp', 'udp')}"
        answered = [snmp("snmpbulkget", "-v2c", "-c", "public", "-r0", "-t", "0.5", "-Cr3", target, "1.3.6.1.2.1.1",
                         check=False).returncode == 0 for _ in range(4)]
        assert answered == [True, True, False, False], answered
        for _ in range(10):
            got = snmp("snmpget", "-v2c", "-c", "public", "-r0", "-t", "1", "-On", target, "1.3.6.1.2.1.1.5.0")
            assert ".1.3.6.1.2.1.1.5.0 = STRING" in got.stdout
    finally:
        s.stop()
    log = s.read_stderr()
    assert log.count("GETBULK rate limit: dropping") == 1, log[-2000:]
