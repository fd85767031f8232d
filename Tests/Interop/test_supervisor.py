"""The supervisor (issue 12): one process holds the sockets, worker processes serve them. A killed
worker is back at once on the same sockets (queued datagrams answered), one that keeps dying is
backed off while the rest serve, restarts show in status.json and the INETKIT-MIB table, and
SIGHUP, SIGUSR2 and SIGTERM replace or stop the workers without a failed request."""
import ftplib
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import BIN, ISOLATION, ROOT_ENV, Server, all_on_port_zero

pytestmark = pytest.mark.skipif(ISOLATION != "workers", reason="the supervisor runs only with isolation: workers")

ENV = {**os.environ, "MIBS": ""}
SERVICE_ENTRY = "1.3.6.1.4.1.32473.1.1.1.1"


def children(pid):
    """{services: pid} of the worker processes of supervisor `pid`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"worker" in args and b"--services" in args:
            found[args[args.index(b"--services") + 1].decode()] = int(entry)
    return found


def worker_of(s, service):
    for services, pid in children(s.proc.pid).items():
        if service in services.split(","):
            return pid
    return None


def dns_query(name, qid, qtype=6):
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"
    return header + labels + struct.pack(">HH", qtype, 1)


def status(s):
    with urllib.request.urlopen(f"http://127.0.0.1:{s.port('http')}/_inetkit/status.json", timeout=5) as r:
        return {svc["name"]: svc for svc in json.load(r)["services"]}


def snmp_table_restarts(s, service):
    """The restarts column (14) of the service's rows in the INETKIT-MIB table."""
    names = subprocess.run(["snmpwalk", "-v2c", "-c", "public", "-On", "-Oq", f"udp:127.0.0.1:{s.port('snmp', 'udp')}",
                            f"{SERVICE_ENTRY}.2"], capture_output=True, text=True, env=ENV, timeout=30).stdout
    rows = [line.split()[0].rsplit(".", 1)[1] for line in names.splitlines() if line.split()[-1].strip('"') == service]
    values = []
    for row in rows:
        out = subprocess.run(["snmpget", "-v2c", "-c", "public", "-On", "-Oqv", f"udp:127.0.0.1:{s.port('snmp', 'udp')}",
                              f"{SERVICE_ENTRY}.14.{row}"], capture_output=True, text=True, env=ENV, timeout=30).stdout
        values.append(int(out.strip()))
    return values


class Load:
    """Keeps HTTP (one request per connection, and keep-alive) and DNS over UDP busy in threads."""

    def __init__(self, s):
        self.s = s
        self.stop_flag = threading.Event()
        self.http_ok = self.http_failed = 0
        self.dns_sent = self.dns_answered = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.http_loop), threading.Thread(target=self.keepalive_loop),
                        threading.Thread(target=self.dns_loop)]
        for t in self.threads:
            t.start()

    def http_loop(self):
        while not self.stop_flag.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.s.port('http')}/", timeout=5) as r:
                    assert r.status == 200 and r.read()
                self.http_ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                self.http_failed += 1
                self.failures.append(repr(e))

    def keepalive_loop(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.s.port("http"), timeout=5)
        while not self.stop_flag.is_set():
            for attempt in (1, 2):
                try:
                    conn.request("GET", "/")
                    r = conn.getresponse()
                    assert r.status == 200 and r.read()
                    self.http_ok += 1
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                    # A server may close an idle keep-alive connection at any time; a client
                    # retries an idempotent request once on a fresh one (RFC 9112, 9.3.1).
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.s.port("http"), timeout=5)
                    if attempt == 2:
                        self.http_failed += 1
                        self.failures.append("keep-alive: " + repr(e))
                except Exception as e:  # noqa: BLE001
                    self.http_failed += 1
                    self.failures.append("keep-alive: " + repr(e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.s.port("http"), timeout=5)
                    break
        conn.close()

    def dns_loop(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(0.5)
        qid = 0
        while not self.stop_flag.is_set():
            qid = (qid + 1) & 0xFFFF
            u.sendto(dns_query("inetkit.test", qid), ("127.0.0.1", self.s.port("dns", "udp")))
            self.dns_sent += 1
            try:
                data, _ = u.recvfrom(4096)
                if data[:2] == struct.pack(">H", qid):
                    self.dns_answered += 1
            except socket.timeout:
                pass
            time.sleep(0.005)
        u.close()

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)


def test_one_worker_per_family_each_on_inherited_sockets():
    s = Server(all_on_port_zero())
    try:
        workers = children(s.proc.pid)
        assert set(workers) == {"echo,discard,daytime,qotd,chargen,time", "http,https", "dns", "smtp,pop3,smtps,pop3s", "ftp,ftps", "snmp", "ntp", "finger,ident", "tftp", "syslog"}, workers
        # The supervisor parses nothing: it holds listening sockets only.
        with open(f"/proc/{s.proc.pid}/net/tcp") as f:
            assert f.read()  # readable at all
        st = status(s)
        assert st["dns"]["state"] == "running" and st["dns"]["restarts"] == 0
        # The counters are the whole host's: traffic to echo shows on HTTP's status page.
        with socket.create_connection(("127.0.0.1", s.port("echo")), timeout=3) as c:
            c.sendall(b"x\n")
            assert c.recv(10) == b"x\n"
        assert wait_for(lambda: status(s)["echo"]["counters"][0]["connections"] >= 1)
    finally:
        assert s.stop() == 0
    assert "session summary" in s.read_stderr() and "service=echo" in s.read_stderr()


def wait_for(check, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - not yet
            pass
        time.sleep(0.02)
    return False


def test_killed_workers_come_back_on_the_same_sockets_while_http_misses_nothing():
    s = Server(all_on_port_zero().replace("shutdown_grace: 1", "shutdown_grace: 5"))
    load = Load(s)
    try:
        time.sleep(0.5)
        snmp_pid = worker_of(s, "snmp")
        os.kill(snmp_pid, signal.SIGKILL)
        assert wait_for(lambda: worker_of(s, "snmp") not in (None, snmp_pid), 2)
        out = subprocess.run(["snmpget", "-v2c", "-c", "public", "-r2", "-t1", f"udp:127.0.0.1:{s.port('snmp', 'udp')}",
                              "1.3.6.1.2.1.1.5.0"], capture_output=True, text=True, env=ENV, timeout=30)
        assert out.returncode == 0, out.stderr

        # The DNS worker dies; queries sent at once wait in the socket buffer for its successor.
        dns_pid = worker_of(s, "dns")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        os.kill(dns_pid, signal.SIGSEGV)
        killed = time.time()
        while True:  # until the kernel has taken the worker away
            try:
                os.kill(dns_pid, 0)
                with open(f"/proc/{dns_pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.001)
        ids = random.sample(range(1, 65535), 20)
        for qid in ids:
            u.sendto(dns_query("inetkit.test", qid), ("127.0.0.1", s.port("dns", "udp")))
        answered = set()
        while len(answered) < len(ids):
            data, _ = u.recvfrom(4096)
            answered.add(struct.unpack(">H", data[:2])[0])
        assert answered == set(ids), "every query queued while the worker was down is answered"
        assert time.time() - killed < 1.0, "DNS answers again within a second"
        u.close()
        time.sleep(0.5)
    finally:
        load.finish()
    assert load.http_failed == 0, load.failures[:5]
    assert load.http_ok > 50
    st = status(s)
    assert st["dns"]["restarts"] == 1 and st["snmp"]["restarts"] == 1 and st["http"]["restarts"] == 0, st
    assert st["dns"]["state"] == "running"
    assert snmp_table_restarts(s, "dns") == [1, 1]
    assert snmp_table_restarts(s, "echo") == [0, 0]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{s.port('http')}/_inetkit/metrics", timeout=5).read().decode()
    assert 'inetkit_restarts_total{service="dns"} 1' in metrics
    log = s.read_stderr()
    assert "killed by signal 11" in log and "killed by signal 9" in log and "restarting" in log
    assert s.stop() == 0


def test_a_worker_that_keeps_dying_is_backed_off_while_the_others_serve():
    # Back-off doubles from 0.25 s; capped at 2 s here (30 s by default) to keep the test short.
    s = Server(all_on_port_zero("restart_backoff_max: 2\n"))
    try:
        last = None
        for _ in range(20):
            assert wait_for(lambda: worker_of(s, "snmp") not in (None, last), 40), s.read_stderr()[-2000:]
            last = worker_of(s, "snmp")
            os.kill(last, signal.SIGKILL)
            with socket.create_connection(("127.0.0.1", s.port("echo")), timeout=3) as c:
                c.sendall(b"still\n")
                assert c.recv(10) == b"still\n"
        assert wait_for(lambda: status(s)["snmp"]["state"] == "backoff", 2)
        assert status(s)["echo"]["state"] == "running"
        assert status(s)["snmp"]["restarts"] == 20
        log = s.read_stderr()
        assert "it keeps crashing, backing off" in log and "next_start_in_s" in log
        # It comes back on its own once the back-off is over.
        assert wait_for(lambda: status(s)["snmp"]["state"] == "running", 40)
    finally:
        assert s.stop() == 0


def test_reload_replaces_the_workers_under_load_without_a_failed_request(tmp_path):
    os.makedirs(tmp_path / "pub")
    with open(tmp_path / "pub" / "big.bin", "wb") as f:
        f.write(os.urandom(24 << 20))
    base = all_on_port_zero().replace("shutdown_grace: 1", "shutdown_grace: 20").replace(
        "  ftp: { port: 0 }", f"  ftp: {{ port: 0, root: {tmp_path}/pub }}")
    base = base.replace("  echo: { port: 0 }", "  echo: { port: 0, max_connections: 100 }")
    s = Server(base)
    old = children(s.proc.pid)
    load = Load(s)
    try:
        # An FTP download in progress, read slowly, outlives the reload.
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", s.port("ftp"), timeout=30)
        ftp.login()
        received = bytearray()

        def slow(chunk):
            received.extend(chunk)
            time.sleep(0.002)
        transfer = threading.Thread(target=lambda: ftp.retrbinary("RETR big.bin", slow, blocksize=65536))
        transfer.start()
        time.sleep(0.5)
        # New settings: echo takes 2 connections from one address, over TCP; UDP echo is limited.
        s.write_config(base.replace("max_connections: 100", "max_connections: 2").replace(
            "limits: { udp_rate: 0 }", "limits: { udp_rate: 0 }\n"))
        s.signal(signal.SIGHUP)
        assert wait_for(lambda: "configuration reloaded" in s.read_stderr(), 20), s.read_stderr()[-3000:]
        new = children(s.proc.pid)
        assert wait_for(lambda: not (set(children(s.proc.pid).values()) & set(old.values())), 25), "old workers drained and left"
        new = children(s.proc.pid)
        assert set(new) == set(old) and not set(new.values()) & set(old.values())
        transfer.join(60)
        assert len(received) == 24 << 20, "the transfer in progress completes"
        ftp.quit()
        time.sleep(0.3)
    finally:
        load.finish()
    assert load.http_failed == 0, load.failures[:5]
    assert load.dns_answered >= load.dns_sent * 0.95, (load.dns_answered, load.dns_sent)
    # The new setting is in force: a third connection from one address is refused.
    held = [socket.create_connection(("127.0.0.1", s.port("echo")), timeout=3) for _ in range(2)]
    for c in held:
        c.sendall(b"a\n")
        assert c.recv(10) == b"a\n"
    extra = socket.create_connection(("127.0.0.1", s.port("echo")), timeout=3)
    assert extra.recv(10) == b"", "over max_connections: closed"
    for c in held + [extra]:
        c.close()
    assert s.stop() == 0


def test_a_bad_file_on_reload_changes_nothing_and_names_file_and_line():
    s = Server(all_on_port_zero())
    old = children(s.proc.pid)
    s.write_config(all_on_port_zero() + "nonsense: 1\n")
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in s.read_stderr())
    assert "config.yaml:" in s.read_stderr().split("reload failed")[1].splitlines()[0]
    assert children(s.proc.pid) == old
    assert s.stop() == 0


def test_upgrade_in_place_refuses_no_connection():
    s = Server(all_on_port_zero())
    old = children(s.proc.pid)
    refused = []
    ok = [0]
    stop = threading.Event()

    def connect_loop():
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", s.port("echo")), timeout=5) as c:
                    c.sendall(b"u\n")
                    assert c.recv(10) == b"u\n"
                ok[0] += 1
            except Exception as e:  # noqa: BLE001
                refused.append(repr(e))
    threads = [threading.Thread(target=connect_loop) for _ in range(4)]
    for t in threads:
        t.start()
    load = Load(s)
    try:
        time.sleep(0.3)
        s.signal(signal.SIGUSR2)
        assert wait_for(lambda: "configuration reloaded" in s.read_stderr().split("upgrading in place")[-1], 30), s.read_stderr()[-3000:]
        assert wait_for(lambda: not (set(children(s.proc.pid).values()) & set(old.values())), 20)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        load.finish()
    assert s.proc.poll() is None, "the same supervisor process goes on"
    assert not refused, refused[:5]
    assert load.http_failed == 0, load.failures[:5]
    assert ok[0] > 20
    assert set(children(s.proc.pid)) == set(old)
    assert s.stop() == 0


def test_worker_runs_alone_under_systemd_socket_activate(tmp_path):
    """The worker as systemd starts it from a .socket unit, with no systemd running."""
    sa = "/usr/bin/systemd-socket-activate"
    if not os.path.exists(sa):
        pytest.skip("systemd-socket-activate is not installed")
    from conftest import free_port
    tcp_port = free_port()
    udp_port = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "config.yaml"
    config.write_text("limits: { udp_rate: 0 }\n")
    env = {**os.environ, "INETKIT_WORKERS_AS_ROOT": "1"}
    echo = subprocess.Popen([sa, "-l", f"127.0.0.1:{tcp_port}", "--fdname=echo", BIN, "worker", "--services", "echo",
                             "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dns = subprocess.Popen([sa, "-d", "-l", f"127.0.0.1:{udp_port}", "--fdname=dns", BIN, "worker", "--services", "dns",
                            "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        # socket-activate starts the worker at the first connection (inetd's way).
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as c:
            c.sendall(b"activated\n")
            assert c.recv(100) == b"activated\n"
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(udp_port), "+tries=3", "+time=3", "+short", "inetkit.test", "SOA"],
                             capture_output=True, text=True, timeout=30)
        assert "inetkit.test." in out.stdout, out.stdout + out.stderr
    finally:
        for p in (echo, dns):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    err = dns.stderr.read().decode()
    assert "no socket given for a transport" in err, err  # DNS over TCP was not passed: said, not bound


def test_a_notification_from_another_process_is_ignored():
    """The workers' notify sockets are in the abstract namespace, open to every local process:
    the supervisor believes only datagrams whose sender pid (SCM_CREDENTIALS) is the worker's."""
    s = Server(all_on_port_zero())
    try:
        with open("/proc/net/unix") as f:
            names = [line.split()[-1] for line in f if f"@inetkit-{s.proc.pid}-" in line]
        assert names, "a notify socket per worker"
        forged = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        forged.sendto(b"X_INETKIT_LISTENERS_CLOSED=1\nREADY=1\n", "\0" + names[0][1:])
        forged.close()
        assert wait_for(lambda: "notification from another process ignored" in s.read_stderr(), 5)
        assert status(s)["echo"]["state"] == "running"
    finally:
        assert s.stop() == 0


def fd_targets(pid):
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return targets


def test_workers_write_their_lines_to_a_log_file_themselves_and_through_the_supervisor_otherwise(tmp_path):
    # Standard error a file (the Server's): each worker holds it and writes its own lines there,
    # as nginx's workers write their access log; its own standard error stays the pipe.
    s = Server(all_on_port_zero())
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{s.port('http')}/direct", timeout=5).read()
    except urllib.error.HTTPError:
        pass
    try:
        assert wait_for(lambda: '"GET /direct HTTP/1.1" 404' in s.read_stderr(), 10), s.read_stderr()
        worker = worker_of(s, "http")
        assert os.path.realpath(s.stderr.name) in fd_targets(worker)
        assert os.readlink(f"/proc/{worker}/fd/2").startswith("pipe:")
        # The supervisor's lines and the worker's share the file, each line whole.
        lines = s.read_stderr().splitlines()
        assert any("worker started" in line for line in lines)
        assert all(line[:4].isdigit() for line in lines if line), lines
    finally:
        assert s.stop() == 0
    # Standard error a pipe (journald, a terminal's pager): the lines come through the
    # supervisor, and no worker holds the pipe (a write of more than PIPE_BUF could interleave).
    config = tmp_path / "config.yaml"
    ports = tmp_path / "ports.json"
    config.write_text(all_on_port_zero())
    proc = subprocess.Popen([BIN, "serve", "--config", str(config), "--ports-file", str(ports)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, env={**os.environ, **ROOT_ENV})
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stderr.readline, b"")), daemon=True)
    reader.start()
    try:
        assert wait_for(ports.exists, 30)
        port = json.loads(ports.read_text())["http"]["tcp"]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/piped", timeout=5).read()
        except urllib.error.HTTPError:
            pass
        assert wait_for(lambda: any(b'"GET /piped HTTP/1.1" 404' in line for line in seen), 10), seen
        pipe = os.readlink(f"/proc/{proc.pid}/fd/2")
        for worker in children(proc.pid).values():
            assert pipe not in fd_targets(worker)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        reader.join(5)
        assert code == 0, b"".join(seen).decode(errors="replace")[-3000:]
