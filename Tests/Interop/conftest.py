"""Shared helpers: start the real `inetkit serve` binary on free ports and stop it."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICES = ["echo", "discard", "daytime", "qotd", "chargen", "time"]
ALL_SERVICES = SERVICES + ["ftp", "smtp", "dns", "http", "pop3", "snmp", "ntp", "finger", "ident", "https", "smtps", "pop3s", "ftps", "tftp", "syslog"]


def inetkit_binary():
    path = os.environ.get("INETKIT_BIN")
    if path:
        return path
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "inetkit")


BIN = inetkit_binary()

# The suite runs in the default mode (a supervisor and worker processes) unless
# INETKIT_ISOLATION=none asks for one process (scripts/test runs it both ways).
ISOLATION = os.environ.get("INETKIT_ISOLATION", "workers")
# Run as root (as CI does), the tests' folders are root's own (mkdtemp makes them 0700): the
# services keep root unless a test asks for the unprivileged account (test_privileges.py).
ROOT_ENV = {"INETKIT_WORKERS_AS_ROOT": "1"} if os.geteuid() == 0 else {}


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


STARTED = []


@pytest.fixture(scope="session", autouse=True)
def stop_leftover_servers():
    """A failed test may leave its server running; stop them all at the end of the session."""
    yield
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Server:
    """One `inetkit serve` process with its own folder, config and ports file."""

    def __init__(self, config="", args=(), env=None, wait=True, files=None):
        self.dir = tempfile.mkdtemp(prefix="inetkit-test-")
        for name, text in (files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.config_path = os.path.join(self.dir, "config.yaml")
        self.ports_path = os.path.join(self.dir, "ports.json")
        self.write_config(config)
        self.stdout = open(os.path.join(self.dir, "stdout"), "w+")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        cmd = [BIN, "serve", "--config", self.config_path, "--ports-file", self.ports_path, *args]
        if ISOLATION != "workers" and "--isolation" not in args:
            cmd += ["--isolation", ISOLATION]
        self.proc = subprocess.Popen(cmd, stdout=self.stdout, stderr=self.stderr, cwd=tempfile.mkdtemp(prefix="inetkit-cwd-"),
                                     env={**os.environ, **ROOT_ENV, **(env or {})})
        STARTED.append(self.proc)
        if wait:
            self.wait_ready()

    def write_config(self, text):
        with open(self.config_path + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config_path + ".tmp", self.config_path)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.ports_path):
                with open(self.ports_path) as f:
                    self.ports = json.load(f)
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.read_stderr()}")
            time.sleep(0.02)
        raise AssertionError("server did not write its ports file in time: " + self.read_stderr())

    def reload_ports(self):
        with open(self.ports_path) as f:
            self.ports = json.load(f)
        return self.ports

    def port(self, service, transport="tcp"):
        return self.ports[service][transport]

    def read_stderr(self):
        self.stderr.flush()
        with open(self.stderr.name) as f:
            return f.read()

    def read_stdout(self):
        self.stdout.flush()
        with open(self.stdout.name) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def all_on_port_zero(extra=""):
    bind = '[127.0.0.1, "::1"]' if ipv6_available() else "[127.0.0.1]"
    lines = [f"bind: {bind}", "shutdown_grace: 1", "limits: { udp_rate: 0 }", "services:"]
    lines += [f"  {name}: {{ port: 0 }}" for name in ALL_SERVICES]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture(scope="module")
def server():
    s = Server(all_on_port_zero())
    yield s
    assert s.stop() == 0


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_raw(server, data, read_timeout=5):
    """Sends raw bytes to the server's HTTP port and returns all it answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=read_timeout) as s:
        s.sendall(data)
        chunks = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks += chunk
        return chunks


def wait_for(predicate, timeout=10, interval=0.05):
    """True as soon as predicate() is; after timeout seconds, whatever it says last."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
