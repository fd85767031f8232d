"""Started as root (issue 12): the supervisor binds and prepares data_dir, every worker runs as
the unprivileged account with no supplementary groups before it reads a byte, files written by
SMTP and FTP belong to that account, and a root-only file is out of reach of HTTP and FTP even
where a path leads to it."""
import ftplib
import io
import os
import pwd
import smtplib
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

from conftest import ISOLATION, Server

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(ISOLATION != "workers", reason="worker processes only with isolation: workers"),
]


def account():
    try:
        return pwd.getpwnam("inetkit")
    except KeyError:
        return pwd.getpwnam("nobody")


def workers_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def credentials(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return [int(x) for x in fields["Uid"]], [int(x) for x in fields["Gid"]], fields["Groups"]


def test_workers_drop_to_the_unprivileged_account_and_own_what_they_write():
    user = account()
    d = tempfile.mkdtemp(prefix="inetkit-root-")
    os.chmod(d, 0o755)
    os.makedirs(f"{d}/site")
    os.makedirs(f"{d}/ftp")
    os.makedirs(f"{d}/data/alice")  # made by root: the supervisor gives it to the account
    for folder in ("site", "ftp"):
        with open(f"{d}/{folder}/open.txt", "w") as f:
            f.write("anyone may read this\n")
        with open(f"{d}/{folder}/secret.txt", "w") as f:
            f.write("root only\n")
        os.chmod(f"{d}/{folder}/secret.txt", 0o600)
    config = f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
services:
  http: {{ port: 0, root: {d}/site }}
  smtp: {{ port: 0 }}
  pop3: {{ port: 0 }}
  dns: {{ port: 0 }}
  snmp: {{ port: 0 }}
  echo: {{ port: 0 }}
  discard: {{ enabled: false }}
  daytime: {{ enabled: false }}
  qotd: {{ enabled: false }}
  chargen: {{ enabled: false }}
  time: {{ enabled: false }}
  ntp: {{ port: 0 }}
  finger: {{ port: 0 }}
  ident: {{ port: 0 }}
  https: {{ port: 0, root: {d}/site }}
  smtps: {{ port: 0 }}
  pop3s: {{ port: 0 }}
  ftps: {{ port: 0 }}
  tftp: {{ port: 0 }}
  syslog: {{ port: 0 }}
  ftp:
    port: 0
    root: {d}/ftp
    users: [{{ name: alice, password: pw, home: {d}/data/alice, write: true }}]
"""
    s = Server(config, env={"INETKIT_WORKERS_AS_ROOT": "0", "SUDO_UID": "", "SUDO_GID": ""})
    try:
        workers = workers_of(s.proc.pid)
        assert len(workers) == 10, workers
        for pid in workers:
            uids, gids, groups = credentials(pid)
            assert uids == [user.pw_uid] * 4, (pid, uids)
            assert gids == [user.pw_gid] * 4, (pid, gids)
            assert groups == [], (pid, groups)
            shown = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
            assert shown == user.pw_name, shown
        assert credentials(s.proc.pid)[0][0] == 0, "the supervisor keeps root (to bind on reload)"
        assert os.stat(f"{d}/data").st_uid == user.pw_uid
        assert os.stat(f"{d}/data/alice").st_uid == user.pw_uid

        with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("a@example.test", ["bob@inetkit.test"], "Subject: owned\r\n\r\nby whom?\r\n")
        delivered = [os.path.join(root, name) for root, _, names in os.walk(f"{d}/data/mail") for name in names]
        assert delivered, "the message was stored"
        for path in delivered:
            assert os.stat(path).st_uid == user.pw_uid, path

        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", s.port("ftp"), timeout=10)
        ftp.login("alice", "pw")
        ftp.storbinary("STOR up.txt", io.BytesIO(b"uploaded\n"))
        ftp.quit()
        assert os.stat(f"{d}/data/alice/up.txt").st_uid == user.pw_uid

        # A root-only file: readable by path, but the worker is not root.
        base = f"http://127.0.0.1:{s.port('http')}"
        assert urllib.request.urlopen(f"{base}/open.txt", timeout=5).read() == b"anyone may read this\n"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/secret.txt", timeout=5)
        assert refused.value.code == 403
        # The same through every path of the server: Range requests and HEAD.
        for method, headers in (("GET", {"Range": "bytes=0-3"}), ("HEAD", {})):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(f"{base}/secret.txt", method=method, headers=headers), timeout=5)
            assert refused.value.code == 403, method
        anonymous = ftplib.FTP()
        anonymous.connect("127.0.0.1", s.port("ftp"), timeout=10)
        anonymous.login()
        out = io.BytesIO()
        anonymous.retrbinary("RETR open.txt", out.write)
        assert out.getvalue() == b"anyone may read this\n"
        with pytest.raises(ftplib.error_perm):
            anonymous.retrbinary("RETR secret.txt", io.BytesIO().write)
        anonymous.quit()
    finally:
        assert s.stop() == 0
