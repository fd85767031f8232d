"""Output never outruns the peer (issue 11, part 3): for every TCP service, a client that
pipelines requests as fast as it can and never reads a reply must not grow the server. The
server stops reading it once `max_pending_output` is unsent, so the client can push only what
fits in the socket buffers; the server's RSS stays within a few MiB; other clients are served
meanwhile; and the service's own timeout (command timeout or idle_timeout) closes the stalled
connection.

Run with `-s` to see the figures (bytes the client got in, RSS before and after)."""
import os
import re
import socket
import struct
import time

import pytest

from conftest import Server, all_on_port_zero
from test_hostile_input import probe

TIMEOUT = 6  # seconds: the command timeouts and idle_timeout of this server
STALL = 4  # seconds each client pushes without reading


def dns_query(name, qtype=255):
    wire = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\x00"
    message = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + wire + struct.pack(">HH", qtype, 1)
    return struct.pack(">H", len(message)) + message


REQUESTS = {
    # service: (what is sent over and over, what is sent once first)
    "smtp": (b"NOOP\r\n", b"EHLO stall.test\r\n"),
    "pop3": (b"CAPA\r\n", b""),
    "ftp": (b"NOOP\r\n", b""),
    "dns": (dns_query("inetkit.test."), b""),
    "http": (b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", b""),
    "echo": (b"x" * 65536, b""),
    "chargen": (b"", b""),
}


@pytest.fixture(scope="module")
def stall_server(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "big.bin").write_bytes(os.urandom(200_000))
    text = all_on_port_zero().replace("  http: { port: 0 }\n", "")
    text = text.replace("limits: { udp_rate: 0 }", f"limits: {{ udp_rate: 0, idle_timeout: {TIMEOUT} }}")
    text = text.replace("  smtp: { port: 0 }\n", "").replace("  pop3: { port: 0 }\n", "").replace("  ftp: { port: 0 }\n", "")
    text += f"""  http: {{ port: 0, root: "{site}" }}
  smtp: {{ port: 0, command_timeout: {TIMEOUT} }}
  pop3: {{ port: 0, command_timeout: {TIMEOUT} }}
  ftp: {{ port: 0, command_timeout: {TIMEOUT} }}
"""
    s = Server(text)
    yield s
    assert s.stop() == 0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def stalled_client(port, first, request, seconds):
    """Connects with a small receive buffer, sends `first`, then `request` over and over
    without ever reading, for `seconds`; returns the socket and the bytes it got in."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    sent = 0
    pending = first + request * max(1, 65536 // max(1, len(request))) if request else first
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not pending:
            time.sleep(0.05)
            continue
        try:
            n = sock.send(pending)
            sent += n
            pending = pending[n:] or request * max(1, 65536 // len(request))
        except BlockingIOError:
            time.sleep(0.01)
    return sock, sent


@pytest.mark.parametrize("service", list(REQUESTS))
def test_a_client_that_never_reads_does_not_grow_the_server(stall_server, service):
    request, first = REQUESTS[service]
    pid = stall_server.proc.pid
    # Warm up: one client of the service, served whole, so the first one's allocations are not counted.
    probe(stall_server)
    before = rss_kib(pid)
    sock, sent = stalled_client(stall_server.port(service), first, request, STALL)
    after = rss_kib(pid)
    local_port = sock.getsockname()[1]
    print(f"\n{service}: the client got {sent / 1024:.0f} KiB in during {STALL} s; "
          f"server RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB ({(after - before) / 1024:+.1f} MiB)")
    # The server stopped reading: what got in is what the socket buffers and the input bound hold
    # (without backpressure, a NOOP pipeliner pushed 28 MiB in 15 s and the server grew to 2 GB).
    if request:
        assert sent < 8 * 1024 * 1024, f"{service}: the client pushed {sent} bytes: the server kept reading"
    assert after - before < 8 * 1024, f"{service}: RSS grew by {(after - before) / 1024:.1f} MiB"
    # Everyone else is served meanwhile.
    probe(stall_server)
    # The service's timeout closes the stalled connection (its close is logged with the client's port).
    deadline = time.time() + TIMEOUT + 15
    closed = False
    while time.time() < deadline and not closed:
        time.sleep(0.5)
        closed = re.search(rf"connection.*peer=127\.0\.0\.1:{local_port}\b", stall_server.read_stderr()) is not None
    sock.close()
    assert closed, f"{service}: the stalled connection was not closed within {TIMEOUT + 15} s"
    assert stall_server.proc.poll() is None


def test_a_log_destination_that_stops_reading_never_stops_the_host(tmp_path):
    """The log's destination stalls (a pipe nobody reads, as a hung terminal or journald): the
    services go on answering at full speed, the lines that do not fit `log_buffer_bytes` are
    dropped and counted, and the count is logged once the destination reads again."""
    import http.client
    import subprocess
    from conftest import BIN, ISOLATION, ROOT_ENV
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("hello\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"""bind: [127.0.0.1]
shutdown_grace: 1
log_level: info
log_buffer_bytes: 65536
data_dir: {tmp_path}/data
services:
  http: {{ port: 0, root: {tmp_path}/site }}
  echo: {{ port: 0 }}
""")
    ports_file = tmp_path / "ports.json"
    cmd = [BIN, "serve", "--config", str(config), "--ports-file", str(ports_file), "--services", "http,echo"]
    if ISOLATION != "workers":
        cmd += ["--isolation", ISOLATION]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **ROOT_ENV})
    try:
        deadline = time.time() + 30
        while not ports_file.exists() and time.time() < deadline:
            time.sleep(0.05)
        import json
        ports = json.loads(ports_file.read_text())
        # Far more log than every pipe and buffer on the way holds (~200 bytes a request).
        started = time.time()
        connection = http.client.HTTPConnection("127.0.0.1", ports["http"]["tcp"], timeout=10)
        for _ in range(4000):
            connection.request("GET", "/a.txt")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b"hello\n"
        connection.close()
        # New connections too (each logs a connection line), and another service.
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", ports["echo"]["tcp"]), timeout=10) as s:
                s.sendall(b"ping\n")
                assert s.recv(16) == b"ping\n"
        assert time.time() - started < 60
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            err = proc.communicate(timeout=30)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace")
    assert proc.returncode == 0, err[-2000:]
    dropped = [int(n) for n in re.findall(r"log: (\d+) lines dropped", err)]
    assert sum(dropped) > 0, err[-2000:]
