"""The host as a process: signals, reload, bad config, busy ports, logs, systemd readiness, limits,
and the inetkit clients' exit codes."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, STARTED, Server, all_on_port_zero, free_port, wait_for



def echo_once(port, payload=b"hi\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(payload)
        return s.recv(100)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_sigterm_lets_open_connections_finish_within_grace_then_exits_0():
    s = Server(all_on_port_zero().replace("shutdown_grace: 1", "shutdown_grace: 2"))
    port = s.port("echo")
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(b"before\n")
    assert conn.recv(100) == b"before\n"
    started = time.time()
    s.signal(signal.SIGTERM)
    assert wait_for(lambda: refused(port), 5), "stops accepting at once"
    conn.sendall(b"during grace\n")
    assert conn.recv(100) == b"during grace\n", "open connections keep working during the grace period"
    assert conn.recv(100) == b"", "closed by the server when the grace period ends"
    assert s.proc.wait(10) == 0
    assert 1.5 < time.time() - started < 6
    log = s.read_stderr()
    assert "session summary" in log and "service=echo" in log


def test_sigint_without_connections_exits_0_quickly():
    s = Server(all_on_port_zero().replace("shutdown_grace: 1", "shutdown_grace: 30"))
    started = time.time()
    s.signal(signal.SIGINT)
    assert s.proc.wait(10) == 0
    assert time.time() - started < 3


def test_unknown_config_key_stops_startup_naming_file_key_and_line():
    s = Server("bind: [127.0.0.1]\nport_ofset: 3\n", wait=False)
    assert s.proc.wait(10) == 2
    err = s.read_stderr()
    assert "config.yaml:2: port_ofset: unknown key" in err, err
    assert not os.path.exists(s.ports_path)


def test_bad_value_stops_startup_naming_the_key():
    s = Server("services:\n  echo: { max_connections: lots }\n", wait=False)
    assert s.proc.wait(10) == 2
    assert "services.echo.max_connections" in s.read_stderr()


def test_port_in_use_stops_startup_with_one_clear_line():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        s = Server(f"bind: [127.0.0.1]\nservices:\n  echo: {{ port: {port} }}\n", args=["--services", "echo"], wait=False)
        assert s.proc.wait(10) == 1
        err = s.read_stderr().strip().splitlines()
        assert f"inetkit: error: cannot bind echo/tcp on 127.0.0.1:{port}: Address already in use" in err[-1], err
        assert not os.path.exists(s.ports_path), "the ports file appears only once every listener is bound"


def test_sighup_reloads_services_and_keeps_old_config_when_new_one_is_bad():
    base = "bind: [127.0.0.1]\nshutdown_grace: 1\nservices:\n  echo: { port: 0 }\n  daytime: { port: 0 }\n"
    s = Server(base, args=["--services", "echo,daytime"])
    echo_port = s.port("echo")
    held = socket.create_connection(("127.0.0.1", echo_port), timeout=5)
    held.sendall(b"x")
    assert held.recv(10) == b"x"
    # --services stays in force on reload: the file's "enabled: false" does not override it.
    s.write_config(base.replace("echo: { port: 0 }", "echo: { port: 0, enabled: false }"))
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in s.read_stderr())
    held.sendall(b"y")
    assert held.recv(10) == b"y", "reload never drops open connections"
    assert echo_once(echo_port) == b"hi\n", "the command line's --services still wins"
    held.close()
    # A broken file: reported, and the running services go on.
    s.write_config("services:\n  echo: { nonsense: 1 }\n")
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in s.read_stderr())
    assert echo_once(echo_port) == b"hi\n"
    assert s.stop() == 0


def test_sighup_enables_and_disables_services_from_the_file():
    base = "bind: [127.0.0.1]\nshutdown_grace: 1\nservices:\n  echo: { port: 0 }\n  daytime: { port: 0, enabled: false }\n  discard: { enabled: false }\n  qotd: { enabled: false }\n  chargen: { enabled: false }\n  time: { enabled: false }\n  http: { enabled: false }\n  dns: { enabled: false }\n  smtp: { enabled: false }\n  pop3: { enabled: false }\n  snmp: { enabled: false }\n  ftp: { enabled: false }\n  ntp: { enabled: false }\n  finger: { enabled: false }\n  ident: { enabled: false }\n  https: { enabled: false }\n  smtps: { enabled: false }\n  pop3s: { enabled: false }\n  ftps: { enabled: false }\n  tftp: { enabled: false }\n  syslog: { enabled: false }\n"
    s = Server(base)
    assert set(s.ports) == {"echo"}
    echo_port = s.port("echo")
    s.write_config(base.replace("echo: { port: 0 }", "echo: { port: 0, enabled: false }").replace("daytime: { port: 0, enabled: false }", "daytime: { port: 0 }"))
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: set(s.reload_ports()) == {"daytime"}), s.read_stderr()
    assert refused(echo_port)
    with socket.create_connection(("127.0.0.1", s.port("daytime")), timeout=3) as c:
        assert c.recv(100).endswith(b"-UTC\r\n")
    assert s.stop() == 0


def test_json_logs_have_one_object_per_line_with_peer():
    s = Server(all_on_port_zero(), args=["--log-format", "json"])
    with socket.create_connection(("127.0.0.1", s.port("daytime")), timeout=3) as c:
        c.recv(100)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(3)
        u.sendto(b"", ("127.0.0.1", s.port("time", "udp")))
        u.recvfrom(10)
    assert wait_for(lambda: '"service":"time"' in s.read_stderr())
    assert s.stop() == 0
    records = [json.loads(line) for line in s.read_stderr().splitlines() if line.strip()]
    tcp = [r for r in records if r.get("service") == "daytime" and r.get("transport") == "tcp" and r["msg"] == "connection"]
    udp = [r for r in records if r.get("service") == "time" and r.get("transport") == "udp" and r["msg"] == "exchange"]
    assert tcp and udp
    for record in tcp + udp:
        assert record["peer"].startswith("127.0.0.1:")
        assert {"duration_ms", "bytes_in", "bytes_out", "outcome"} <= set(record)
    assert tcp[0]["bytes_out"] > 0
    assert any(r["msg"] == "session summary" for r in records)


def test_tells_systemd_it_is_ready_once_listening():
    path = os.path.join(tempfile.mkdtemp(), "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(path)
        notify.settimeout(15)
        s = Server(all_on_port_zero(), env={"NOTIFY_SOCKET": path}, wait=False)
        message = notify.recv(4096).decode()
        assert "READY=1" in message
        assert os.path.exists(s.ports_path), "ready only after every listener is bound"
        s.wait_ready()
        s.signal(signal.SIGTERM)
        assert "STOPPING=1" in notify.recv(4096).decode()
        assert s.proc.wait(10) == 0


def test_connection_over_the_limit_is_closed_not_left_hanging():
    s = Server(all_on_port_zero("").replace("  echo: { port: 0 }", "  echo: { port: 0, max_connections: 3 }"))
    port = s.port("echo")
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    for c in held:
        c.sendall(b"ok")
        assert c.recv(10) == b"ok"
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.time()
    try:
        assert extra.recv(10) == b""
    except ConnectionResetError:
        pass
    assert time.time() - started < 2
    # The worker's log reaches the supervisor's standard error a moment later.
    assert wait_for(lambda: "refused: max_connections 3 reached" in s.read_stderr(), 3)
    for c in held + [extra]:
        c.close()
    assert s.stop() == 0


def test_idle_connections_are_closed():
    s = Server(all_on_port_zero("").replace("limits: { udp_rate: 0 }", "limits: { udp_rate: 0, idle_timeout: 500ms }"))
    c = socket.create_connection(("127.0.0.1", s.port("echo")), timeout=5)
    started = time.time()
    assert c.recv(10) == b""
    assert 0.4 < time.time() - started < 4
    assert wait_for(lambda: "idle timeout" in s.read_stderr(), 5)
    assert s.stop() == 0


def test_default_serve_runs_with_no_arguments():
    """`inetkit serve` with no config: loopback, well-known ports (or +10000 without privilege)."""
    workdir = tempfile.mkdtemp()
    # Started as root, the services run as an unprivileged account: it must reach the folder.
    os.chmod(workdir, 0o755)
    proc = subprocess.Popen([BIN, "serve"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(proc)
    try:
        header = proc.stdout.readline()
        assert header.startswith("inetkit: serving"), header + proc.stderr.read()
        offset = int(header.split("port offset ")[1].rstrip(")\n"))
        assert offset == (0 if os.geteuid() == 0 else 10000)
        table = [proc.stdout.readline() for _ in range(1 + 6 * 2 * 2)]
        assert any(f"127.0.0.1:{7 + offset}" in line for line in table), table
        assert echo_once(7 + offset) == b"hi\n"
        # The web site is created on first start under ./inetkit-data/public.
        import urllib.request
        page = urllib.request.urlopen(f"http://127.0.0.1:{80 + offset}/", timeout=5).read().decode()
        assert "It works" in page
        assert os.path.exists(os.path.join(workdir, "inetkit-data", "public", "index.html"))
        # SMTP greets on its port; its mail store lives under ./inetkit-data/mail.
        with socket.create_connection(("127.0.0.1", 25 + offset), timeout=5) as s:
            assert s.recv(100).startswith(b"220 ")
        assert os.path.isdir(os.path.join(workdir, "inetkit-data", "mail"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_clients_report_results_and_exit_codes(server):
    ok = subprocess.run([BIN, "daytime", "--ports-file", server.ports_path, "127.0.0.1", "--count", "3", "--concurrency", "3"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "daytime/tcp: 3 requests to 1 target: 3 ok, 0 failed" in ok.stdout
    closed = free_port()
    bad = subprocess.run([BIN, "echo", f"127.0.0.1:{closed}", "--timeout", "2"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1
    assert "refused" in bad.stdout
    udp = subprocess.run([BIN, "time", "--udp", "--ports-file", server.ports_path, "127.0.0.1", "[::1]"] if os.path.exists("/proc/net/if_inet6") else [BIN, "time", "--udp", "--ports-file", server.ports_path, "127.0.0.1"], capture_output=True, text=True, timeout=30)
    assert udp.returncode == 0, udp.stdout
    assert "UTC" in udp.stdout


def test_probe_lists_every_service_and_transport(server):
    out = subprocess.run([BIN, "probe", "--ports-file", server.ports_path, "127.0.0.1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    # The six simple services on TCP and UDP, then each protocol service by its own question.
    assert len(rows) == 12 + 15, out.stdout
    assert all(row[4] == "up" for row in rows), out.stdout
    details = {row[1]: " ".join(row[7:]) for row in rows[12:]}
    assert details["ftp"].startswith("220") and details["smtp"].startswith("220") and details["pop3"].startswith("+OK")
    assert details["http"].startswith("HTTP/1.1 200") and details["dns"].startswith("rcode 0")
    assert details["snmp"].startswith("sysUpTime")
    assert details["ntp"].startswith("stratum") and details["finger"] == "No one logged on."
    assert details["ident"].endswith(": ERROR : NO-USER"), details
    assert details["https"].startswith("HTTP/1.1 200") and details["smtps"].startswith("220") and details["ftps"].startswith("220")
    assert details["pop3s"].startswith("+OK") and details["tftp"] == "answers: error 1 file not found", details
    assert details["syslog"] == "took a message over TCP", details


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_thousand_clients_at_once(server):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    socks = [socket.create_connection(("127.0.0.1", server.port("echo")), timeout=10) for _ in range(1000)]
    try:
        for i, s in enumerate(socks):
            s.sendall(b"%d\n" % i)
        for i, s in enumerate(socks):
            assert s.recv(100) == b"%d\n" % i
    finally:
        for s in socks:
            s.close()


def test_udp_flood_does_not_grow_memory():
    """300k datagrams from one source at full speed: most are dropped by the rate limiter and
    the server's memory stays flat."""
    s = Server(all_on_port_zero().replace("limits: { udp_rate: 0 }", "limits: { udp_rate: 50 }"), args=["--log-level", "warning"])
    port = s.port("echo", "udp")
    before = rss_kib(s.proc.pid)
    payload = b"x" * 512
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.setblocking(False)
        for _ in range(300_000):
            try:
                u.sendto(payload, ("127.0.0.1", port))
            except BlockingIOError:
                time.sleep(0.0005)
    time.sleep(0.5)
    after = rss_kib(s.proc.pid)
    assert after - before < 32 * 1024, f"RSS grew from {before} KiB to {after} KiB"
    assert "udp rate limit reached" in s.read_stderr()
    # The server still answers other clients... and this one, once it slows down.
    time.sleep(2.5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(3)
        u.sendto(b"after", ("127.0.0.1", port))
        assert u.recvfrom(100)[0] == b"after"
    assert s.stop() == 0


def test_qotd_serves_quotes_from_a_configured_file():
    # A relative path is resolved against the config file's folder, whatever the working folder.
    s = Server("bind: [127.0.0.1]\nservices:\n  qotd: { port: 0, file: quotes.txt }\n", args=["--services", "qotd"],
               files={"quotes.txt": "First quote.\n%\nSecond quote,\non two lines.\n"})
    seen = set()
    for _ in range(40):
        with socket.create_connection(("127.0.0.1", s.port("qotd")), timeout=3) as c:
            data = b""
            while chunk := c.recv(1000):
                data += chunk
            seen.add(data)
    assert seen == {b"First quote.\r\n", b"Second quote,\r\non two lines.\r\n"}
    assert s.stop() == 0


def test_qotd_file_with_an_overlong_quote_stops_startup_with_file_and_line():
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "quotes.txt"), "w") as f:
        f.write("short\n%\n" + "y" * 600 + "\n")
    s = Server(f"services:\n  qotd: {{ file: {d}/quotes.txt }}\n", wait=False)
    assert s.proc.wait(10) == 2
    err = s.read_stderr()
    assert f"services.qotd.file: {d}/quotes.txt:3:" in err and "at most 512" in err, err
