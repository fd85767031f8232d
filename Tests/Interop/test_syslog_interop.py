"""syslog driven by logger (bsdutils) over UDP and TCP (RFC 5424, RFC 3164, octet counting and LF
framing), Python's logging.handlers.SysLogHandler, rsyslog forwarding with omfwd, and
`inetkit syslog send`; long, binary and cut-off messages; rotation under the size cap; and a
clean stop that loses nothing a TCP sender delivered."""
import fcntl
import glob
import json
import logging
import logging.handlers
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import time

import pytest

from conftest import BIN, STARTED, Server


def records(data_dir):
    found = []
    for path in sorted(glob.glob(f"{data_dir}/syslog/syslog-*.jsonl")):
        try:
            with open(path) as f:
                lines = f.readlines()
        except FileNotFoundError:
            continue  # rotated away (renamed or pruned) between the glob and the open
        for line in lines:
            if line.endswith("\n"):  # a line still being written is read on the next pass
                found.append(json.loads(line))
    return found


def wait_for(data_dir, predicate, timeout=10):
    """The stored records once `predicate` holds for them (the store writes off the event loop)."""
    deadline = time.time() + timeout
    while True:
        got = records(data_dir)
        if predicate(got) or time.time() > deadline:
            return got
        time.sleep(0.05)


def by_message(data_dir, text, timeout=10):
    got = wait_for(data_dir, lambda rs: any(r["message"] == text for r in rs), timeout)
    matches = [r for r in got if r["message"] == text]
    assert matches, f"{text!r} not stored; have {[r['message'] for r in got][-10:]}"
    return matches[0]


@pytest.fixture(scope="module")
def syslog():
    d = tempfile.mkdtemp(prefix="inetkit-syslog-")
    s = Server(f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
services:
  syslog: {{ port: 0 }}
""", args=["--services", "syslog"])
    s.data = f"{d}/data"
    s.udp = s.port("syslog", "udp")
    s.tcp = s.port("syslog", "tcp")
    yield s
    assert s.stop() == 0


def logger(args, port):
    out = subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_logger_udp_rfc5424_and_rfc3164(syslog):
    logger(["--udp", "--rfc5424", "-t", "demo", "-p", "local3.err", "--sd-id", "zoo@123", "--sd-param", 'tiger="hungry"', "udp 5424 hello"], syslog.udp)
    r = by_message(syslog.data, "udp 5424 hello")
    assert (r["format"], r["facility"], r["severity"], r["pri"], r["app"], r["transport"]) == ("rfc5424", "local3", "err", 155, "demo", "udp"), r
    assert r["sd"]["zoo@123"]["tiger"] == "hungry" and "timeQuality" in r["sd"], r
    assert r["peer"].startswith("127.0.0.1:") and r["received"].endswith("Z") and r["version"] == 1, r
    assert "T" in r["timestamp"] and r["hostname"], r
    logger(["--udp", "--rfc3164", "-t", "old", "-p", "mail.info", "udp 3164 hello"], syslog.udp)
    r = by_message(syslog.data, "udp 3164 hello")
    assert (r["format"], r["facility"], r["severity"], r["app"]) == ("rfc3164", "mail", "info", "old"), r
    assert len(r["timestamp"]) == 15 and r["hostname"], r


def test_logger_tcp_octet_counting_and_lf_framing(syslog):
    logger(["--tcp", "--octet-count", "--rfc5424", "-t", "octets", "tcp octet one"], syslog.tcp)
    logger(["--tcp", "--rfc5424", "-t", "lines", "tcp lf one"], syslog.tcp)
    logger(["--tcp", "--rfc3164", "-t", "bsd", "tcp 3164 one"], syslog.tcp)
    assert by_message(syslog.data, "tcp octet one")["app"] == "octets"
    assert by_message(syslog.data, "tcp lf one")["transport"] == "tcp"
    assert by_message(syslog.data, "tcp 3164 one")["format"] == "rfc3164"
    # Several messages in one stream, each framed its own way.
    with socket.create_connection(("127.0.0.1", syslog.tcp)) as c:
        first = b"<14>1 - host mixed - - - mixed counted"
        c.sendall(str(len(first)).encode() + b" " + first + b"<14>mixed: mixed line\n" + b"<14>mixed: mixed crlf\r\n")
        c.shutdown(socket.SHUT_WR)
        assert c.recv(10) == b""  # the server reads to the end, then closes
    for text in ["mixed counted", "mixed line", "mixed crlf"]:
        by_message(syslog.data, text)


def test_python_sysloghandler_udp_and_tcp(syslog):
    log = logging.getLogger("inetkit-test-syslog")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    for socktype, text in [(socket.SOCK_DGRAM, "python over udp"), (socket.SOCK_STREAM, "python over tcp")]:
        port = syslog.udp if socktype == socket.SOCK_DGRAM else syslog.tcp
        handler = logging.handlers.SysLogHandler(address=("127.0.0.1", port), facility="local5", socktype=socktype)
        handler.setFormatter(logging.Formatter("pyapp: %(message)s"))
        log.addHandler(handler)
        log.warning(text)
        log.removeHandler(handler)
        handler.close()
        r = by_message(syslog.data, text)
        assert (r["facility"], r["severity"], r["app"]) == ("local5", "warning", "pyapp"), r


def test_inetkit_syslog_send(syslog):
    base = [BIN, "syslog", "send", "--server", f"127.0.0.1:{syslog.udp}"]
    out = subprocess.run(base + ["--severity", "crit", "--app", "mine", "--msgid", "M7", "sent", "by", "inetkit"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    r = by_message(syslog.data, "sent by inetkit")
    assert (r["severity"], r["app"], r["msgid"], r["format"]) == ("crit", "mine", "M7", "rfc5424"), r
    tcp = [BIN, "syslog", "send", "--server", f"127.0.0.1:{syslog.tcp}", "--tcp"]
    out = subprocess.run(tcp + ["--rfc3164", "--facility", "daemon", "bsd by inetkit"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    r = by_message(syslog.data, "bsd by inetkit")
    assert (r["format"], r["facility"], r["transport"]) == ("rfc3164", "daemon", "tcp"), r
    out = subprocess.run(tcp + ["--lf"], input="stdin one\nstdin two\n", capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    by_message(syslog.data, "stdin one")
    by_message(syslog.data, "stdin two")
    bad = subprocess.run(base + ["--severity", "loud", "x"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "severity" in bad.stderr


def test_long_binary_and_cut_off_messages(syslog):
    # Over 8 KiB: kept to 8 KiB and flagged, over UDP and TCP; the next message is intact.
    body = "L" * 20000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<13>1 - h big - - - " + body.encode(), ("127.0.0.1", syslog.udp))
    with socket.create_connection(("127.0.0.1", syslog.tcp)) as c:
        msg = b"<13>1 - h bigtcp - - - " + b"T" * 50000
        c.sendall(str(len(msg)).encode() + b" " + msg + b"<13>after: after the long one\n" + b"<13>" + b"N" * 30000 + b"\n<13>after: after the long line\n")
        c.sendall(bytes(range(256)) + b"\n")  # binary: stored, not a crash
        c.sendall(b"9999999999 cut off")  # a count that never arrives
        c.shutdown(socket.SHUT_WR)
        assert c.recv(10) == b""
    got = wait_for(syslog.data, lambda rs: any(r.get("incomplete") for r in rs))
    udp = [r for r in got if r.get("app") == "big"][0]
    assert udp["truncated"] and udp["length"] == len(body) + 20 and len(udp["message"]) == 8192 - 20, {k: v for k, v in udp.items() if k != "message"}
    tcp = [r for r in got if r.get("app") == "bigtcp"][0]
    assert tcp["truncated"] and tcp["length"] == 50023 and len(tcp["message"]) == 8192 - 23
    line = [r for r in got if r["message"].startswith("NNN")][0]
    assert line["truncated"] and line["length"] == 30004
    assert by_message(syslog.data, "after the long one")["app"] == "after"
    assert by_message(syslog.data, "after the long line")["app"] == "after"
    binary = [r for r in got if "\u0001\u0002" in r["message"]]
    assert binary and binary[0]["pri_given"] is False
    cut = [r for r in got if r.get("incomplete")][0]
    assert cut["message"] == "cut off" and cut["length"] == 9999999999 and "truncated" not in cut
    # Still serving.
    logger(["--udp", "still alive"], syslog.udp)
    by_message(syslog.data, "still alive")


def test_udp_socket_has_room_for_bursts(syslog):
    """syslog's own udp_receive_buffer default (4 MiB; the kernel reports twice that)."""
    out = subprocess.run(["ss", "-ulnm", f"sport = :{syslog.udp}"], capture_output=True, text=True, timeout=10).stdout
    sizes = [int(word[2:]) for word in out.replace(",", " ").replace("(", " ").split() if word.startswith("rb") and word[2:].isdigit()]
    assert sizes and all(size >= 4 << 20 for size in sizes), out


def test_rsyslog_forwards_with_omfwd(syslog, tmp_path):
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    work = tmp_path / "rsyslog"
    work.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = work / "rsyslog.conf"
    conf.write_text(f"""global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{syslog.tcp}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="{syslog.udp}" protocol="udp")
}}
""")
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(work / "pid")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    STARTED.append(proc)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.1)
        logger(["--tcp", "--rfc3164", "-t", "relayed", "through rsyslog"], port)
        # (rsyslog keeps the space after the tag as the start of the message.)
        got = wait_for(syslog.data, lambda rs: len([r for r in rs if r["message"].strip() == "through rsyslog"]) >= 2, timeout=20)
        relayed = [r for r in got if r["message"].strip() == "through rsyslog"]
        assert {r["transport"] for r in relayed} == {"tcp", "udp"}, relayed
        over_tcp = [r for r in relayed if r["transport"] == "tcp"][0]
        assert over_tcp["format"] == "rfc5424" and over_tcp["app"] == "relayed", over_tcp
        over_udp = [r for r in relayed if r["transport"] == "udp"][0]
        assert over_udp["format"] == "rfc3164" and over_udp["app"] == "relayed", over_udp
    finally:
        proc.terminate()
        proc.wait(10)


def test_rotation_stays_under_the_cap(tmp_path):
    s = Server(f"""bind: [127.0.0.1]
data_dir: {tmp_path}/data
services:
  syslog: {{ port: 0, rotate_bytes: 8192, max_total_bytes: 32768 }}
""", args=["--services", "syslog"])
    try:
        with socket.create_connection(("127.0.0.1", s.port("syslog", "tcp"))) as c:
            for n in range(400):
                c.sendall(f"<13>1 - h rot - - - message {n:04d} {'x' * 150}\n".encode())
            c.shutdown(socket.SHUT_WR)
            assert c.recv(10) == b""
        got = wait_for(f"{tmp_path}/data", lambda rs: any("message 0399" in r["message"] for r in rs))
        files = glob.glob(f"{tmp_path}/data/syslog/syslog-*.jsonl")
        assert len(files) >= 2 and sum(os.path.getsize(f) for f in files) <= 32768, files
        numbers = sorted(int(r["message"].split()[1]) for r in got)
        assert numbers[-1] == 399 and numbers == list(range(numbers[0], 400)), numbers[:5]
        assert numbers[0] > 0, "the oldest file was removed"
    finally:
        assert s.stop() == 0


def unacked(sock):
    """Bytes this socket sent that the peer's kernel has not yet acknowledged (SIOCOUTQ)."""
    return int.from_bytes(fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0\0\0\0"), "little")


def test_clean_stop_keeps_every_acknowledged_message(tmp_path):
    """A sender that keeps its connection open (as rsyslog does) and the host stopped right
    after the last byte was acknowledged: every message is on disk when the host has exited."""
    s = Server(f"""bind: [127.0.0.1]
shutdown_grace: 5
data_dir: {tmp_path}/data
services:
  syslog: {{ port: 0 }}
""", args=["--services", "syslog"])
    count = 20000
    c = socket.create_connection(("127.0.0.1", s.port("syslog", "tcp")))
    try:
        payload = b"".join(b"<13>1 - h stop - - - m%06d\n" % n for n in range(count - 1)) + b"<13>1 - h stop - - - unterminated last"
        c.sendall(payload)
        deadline = time.time() + 30
        while unacked(c) and time.time() < deadline:
            time.sleep(0.001)
        assert unacked(c) == 0
        started = time.time()
        assert s.stop() == 0
        assert time.time() - started < 4, "the idle sender did not hold the stop for the whole grace"
    finally:
        c.close()
    got = [r for r in records(f"{tmp_path}/data") if r.get("app") == "stop"]
    assert len(got) == count, (len(got), s.read_stderr()[-2000:])
    assert got[-1]["message"] == "unterminated last"
