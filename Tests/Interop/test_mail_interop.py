"""SMTP and POP3 against standard clients: Python's smtplib and poplib, swaks, curl's smtp://
and pop3://, and InetKit's own `inetkit mail`; the bad input of the mail issue; and a crash
test that kills the server with SIGKILL while mail is arriving."""
import glob
import hashlib
import os
import random
import signal
import smtplib
import socket
import ssl
import poplib
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, Server

USERS = "[{ name: carol@inetkit.test, password: s3cret }, { name: dave@inetkit.test, password: pw }]"


def make_certs():
    d = tempfile.mkdtemp(prefix="inetkit-mail-")
    out = subprocess.run([BIN, "cert", "--self-signed", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return d


def mail_config(d, smtp_extra="", pop3_extra="", tls=True):
    cert = f", cert: {d}/cert.pem, key: {d}/key.pem" if tls else ""
    return f"""bind: [127.0.0.1]
shutdown_grace: 1
data_dir: {d}/data
services:
  smtp: {{ port: 0{cert}{smtp_extra} }}
  pop3: {{ port: 0, auth_delay: 0.3, users: {USERS}{cert}{pop3_extra} }}
"""


@pytest.fixture(scope="module")
def mail():
    d = make_certs()
    s = Server(mail_config(d, smtp_extra=", max_message_bytes: 100000, max_recipients: 5, max_errors: 6"),
               args=["--services", "smtp,pop3"])
    s.d = d
    s.smtp = s.port("smtp")
    s.pop3 = s.port("pop3")
    yield s
    assert s.stop() == 0


def maildir(server, user):
    """The message files of a mailbox (new/ and cur/), sorted."""
    base = f"{server.d}/data/mail/inetkit.test/{user}"
    return sorted(glob.glob(f"{base}/new/*") + glob.glob(f"{base}/cur/*"))


def clear(server, user):
    for path in maildir(server, user):
        os.unlink(path)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Raw:
    """A bare SMTP/POP3 conversation over a socket."""

    def __init__(self, port, greeting=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        if greeting:
            self.line()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """One SMTP reply (all its lines), as (code, last line)."""
        while True:
            line = self.line()
            if line[3:4] != "-":
                return int(line[:3]), line

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- standard clients

def test_smtplib_sends_and_poplib_reads(mail):
    clear(mail, "carol")
    clear(mail, "dave")
    with smtplib.SMTP("127.0.0.1", mail.smtp, timeout=10) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        for feature in ["pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8", "starttls"]:
            assert s.has_extn(feature), feature
        assert s.esmtp_features["size"] == "100000"
        refused = s.sendmail("bob@example.org", ["carol@inetkit.test", "dave@inetkit.test"],
                             b"Subject: first\r\n\r\nHello Carol.\r\n.leading dot\r\n")
        assert refused == {}
        s.sendmail("bob@example.org", ["carol@inetkit.test"], b"Subject: second\r\n\r\nAgain.\r\n")
    assert len(maildir(mail, "carol")) == 2 and len(maildir(mail, "dave")) == 1

    p = poplib.POP3("127.0.0.1", mail.pop3, timeout=10)
    caps = p.capa()
    for cap in ["TOP", "UIDL", "USER", "PIPELINING", "STLS", "RESP-CODES"]:
        assert cap in caps, cap
    p.user("carol@inetkit.test")
    assert p.pass_("s3cret").startswith(b"+OK")
    count, size = p.stat()
    assert count == 2
    _, listing, _ = p.list()
    assert sum(int(line.split()[1]) for line in listing) == size
    _, uids, _ = p.uidl()
    assert len({line.split()[1] for line in uids}) == 2
    _, lines, octets = p.retr(1)
    assert lines[0] == b"Return-Path: <bob@example.org>"
    assert lines[-3:] == [b"", b"Hello Carol.", b".leading dot"], lines
    assert octets == int(listing[0].split()[1]) + 0 or octets > 0
    _, top, _ = p.top(2, 0)
    assert b"Subject: second" in top and b"Again." not in top
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    p.rset()
    p.dele(1)
    p.quit()
    assert len(maildir(mail, "carol")) == 1, "DELE takes effect at QUIT"


def test_starttls_with_smtplib_and_stls_with_poplib(mail):
    clear(mail, "carol")
    context = ssl.create_default_context(cafile=f"{mail.d}/cert.pem")
    context.check_hostname = False
    with smtplib.SMTP("127.0.0.1", mail.smtp, timeout=10) as s:
        s.ehlo()
        s.starttls(context=context)
        s.ehlo()
        assert not s.has_extn("starttls"), "not offered again inside TLS"
        s.sendmail("bob@example.org", ["carol@inetkit.test"], b"Subject: secret\r\n\r\nover TLS\r\n")
    message = read(maildir(mail, "carol")[0])
    assert b"with ESMTPS id" in message

    p = poplib.POP3("127.0.0.1", mail.pop3, timeout=10)
    p.stls(context=context)
    p.user("carol@inetkit.test")
    p.pass_("s3cret")
    assert p.stat()[0] == 1
    assert "STLS" not in p.capa()
    p.quit()


def test_starttls_discards_pipelined_plaintext(mail):
    """RFC 3207 5: commands sent after STARTTLS before the handshake must not be executed."""
    r = Raw(mail.smtp)
    r.cmd("EHLO x")
    r.send("STARTTLS\r\nRSET\r\n")
    assert r.reply()[0] == 220
    context = ssl.create_default_context(cafile=f"{mail.d}/cert.pem")
    context.check_hostname = False
    tls = context.wrap_socket(r.sock, server_hostname="localhost")
    tls.sendall(b"NOOP\r\n")
    assert tls.recv(1000).startswith(b"250 2.0.0"), "only the NOOP is answered, not the injected RSET"
    tls.close()


def test_smtputf8_address(mail):
    with smtplib.SMTP("127.0.0.1", mail.smtp, timeout=10) as s:
        s.ehlo()
        refused = s.sendmail("jösé@example.org", ["zoë@inetkit.test"], "Subject: ü\r\n\r\nünïcödé\r\n".encode(),
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    files = glob.glob(f"{mail.d}/data/mail/inetkit.test/zoë/new/*")
    assert len(files) == 1 and "ünïcödé".encode() in read(files[0])


def test_size_limits(mail):
    clear(mail, "carol")
    with smtplib.SMTP("127.0.0.1", mail.smtp, timeout=10) as s:
        s.ehlo()
        code, text = s.mail("bob@example.org", ["SIZE=200000"])
        assert code == 552 and b"5.3.4" in text
    # Without a SIZE declaration the limit applies to the data itself.
    r = Raw(mail.smtp)
    r.cmd("EHLO x")
    r.cmd("MAIL FROM:<bob@example.org>")
    r.cmd("RCPT TO:<carol@inetkit.test>")
    assert r.cmd("DATA")[0] == 354
    r.send("Subject: big\r\n\r\n" + ("y" * 900 + "\r\n") * 120 + ".\r\n")
    code, text = r.reply()
    assert code == 552 and "5.3.4" in text
    # The session goes on: a small message afterwards is accepted.
    r.cmd("MAIL FROM:<bob@example.org>")
    r.cmd("RCPT TO:<carol@inetkit.test>")
    r.cmd("DATA")
    r.send("Subject: small\r\n\r\nok\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    assert len(maildir(mail, "carol")) == 1


def test_swaks(mail):
    clear(mail, "carol")
    out = subprocess.run(["swaks", "--server", f"127.0.0.1:{mail.smtp}", "--from", "bob@example.org", "--to", "carol@inetkit.test",
                          "--header", "Subject: from swaks", "--body", "swaks body", "--pipeline"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "250 2.0.0 Ok: queued as" in out.stdout
    assert b"swaks body" in read(maildir(mail, "carol")[0])
    relay = subprocess.run(["swaks", "--server", f"127.0.0.1:{mail.smtp}", "--from", "bob@example.org", "--to", "someone@example.com"],
                           capture_output=True, text=True, timeout=60)
    assert relay.returncode != 0
    assert "550 5.7.1 <someone@example.com>: Relay access denied" in relay.stdout


def test_curl_smtp_and_pop3(mail, tmp_path):
    clear(mail, "dave")
    message = tmp_path / "msg.txt"
    message.write_bytes(b"From: <bob@example.org>\r\nTo: <dave@inetkit.test>\r\nSubject: curl\r\n\r\nsent by curl\r\n")
    out = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{mail.smtp}", "--mail-from", "bob@example.org",
                          "--mail-rcpt", "dave@inetkit.test", "-T", str(message)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # STARTTLS required by the client (--ssl-reqd).
    out = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", f"{mail.d}/cert.pem", "-k", f"smtp://127.0.0.1:{mail.smtp}",
                          "--mail-from", "bob@example.org", "--mail-rcpt", "dave@inetkit.test", "-T", str(message)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert len(maildir(mail, "dave")) == 2
    listing = subprocess.run(["curl", "-sS", f"pop3://dave%40inetkit.test:pw@127.0.0.1:{mail.pop3}/"],
                             capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    assert len(listing.stdout.strip().splitlines()) == 2
    one = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", f"pop3://dave%40inetkit.test:pw@127.0.0.1:{mail.pop3}/1"],
                         capture_output=True, timeout=30)
    assert one.returncode == 0, one.stderr
    assert b"sent by curl" in one.stdout
    relay = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{mail.smtp}", "--mail-from", "bob@example.org",
                            "--mail-rcpt", "x@example.net", "-T", str(message)], capture_output=True, text=True, timeout=30)
    assert relay.returncode != 0 and "550" in relay.stderr


def test_inetkit_mail_client(mail):
    clear(mail, "carol")
    common = ["--port-offset", "0"]
    out = subprocess.run([BIN, "mail", "send", "--from", "bob@example.org", "--to", "carol@inetkit.test", "--subject", "CLI",
                          "--body", "hello from the cli", "--server", f"127.0.0.1:{mail.smtp}", "--trace"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "C: MAIL FROM:<bob@example.org>" in out.stderr and "S: 250 2.0.0 Ok: queued as" in out.stderr
    refused = subprocess.run([BIN, "mail", "send", "--from", "bob@example.org", "--to", "x@example.net", "--body", "x",
                              "--server", f"127.0.0.1:{mail.smtp}"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "550 5.7.1" in refused.stderr
    load = subprocess.run([BIN, "mail", "send", "--from", "bob@example.org", "--to", "carol@inetkit.test", "--body", "load",
                           "--count", "40", "--concurrency", "4", "--server", f"127.0.0.1:{mail.smtp}"],
                          capture_output=True, text=True, timeout=60)
    assert load.returncode == 0, load.stderr
    assert "40 messages over 4 sessions" in load.stdout
    pop = ["--user", "carol@inetkit.test", "--password", "s3cret", "--server", f"127.0.0.1:{mail.pop3}"] + common
    listing = subprocess.run([BIN, "mail", "list", *pop], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 41 and "CLI" in lines[0]
    body = subprocess.run([BIN, "mail", "read", "1", *pop], capture_output=True, text=True, timeout=30)
    assert "hello from the cli" in body.stdout
    deleted = subprocess.run([BIN, "mail", "delete", "1", "2", *pop], capture_output=True, text=True, timeout=30)
    assert deleted.returncode == 0
    assert len(maildir(mail, "carol")) == 39
    wrong = subprocess.run([BIN, "mail", "list", "--user", "carol@inetkit.test", "--password", "nope",
                            "--server", f"127.0.0.1:{mail.pop3}"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 1 and "-ERR [AUTH]" in wrong.stderr


# ---------------------------------------------------------------- bad input

def test_pipelined_group_answered_in_order(mail):
    clear(mail, "carol")
    r = Raw(mail.smtp)
    r.send("EHLO p\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<carol@inetkit.test>\r\nRCPT TO:<x@relay.example>\r\nDATA\r\n")
    codes = [r.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 250, 550, 354]
    r.send("Subject: p\r\n\r\npipelined\r\n.\r\nNOOP\r\nQUIT\r\n")
    assert [r.reply()[0] for _ in range(3)] == [250, 250, 221]
    assert len(maildir(mail, "carol")) == 1


def test_bare_lf_is_normalised_and_cannot_end_data(mail):
    clear(mail, "carol")
    r = Raw(mail.smtp)
    r.cmd("EHLO x")
    r.cmd("MAIL FROM:<a@b.test>")
    r.cmd("RCPT TO:<carol@inetkit.test>")
    assert r.cmd("DATA")[0] == 354
    # "\n.\n" is not the end of data (no SMTP smuggling): the MAIL line below stays content.
    r.send("Subject: lf\nbare line\n.\nMAIL FROM:<smuggled@evil.test>\r\nlast\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    files = maildir(mail, "carol")
    assert len(files) == 1
    body = read(files[0])
    assert b"\r" not in body, "stored with LF line ends"
    assert b"Subject: lf\nbare line\n" in body and b"MAIL FROM:<smuggled@evil.test>\nlast\n" in body


def test_nul_bytes_and_long_lines(mail):
    clear(mail, "carol")
    r = Raw(mail.smtp)
    assert r.cmd("NO\x00OP")[0] == 500
    assert r.cmd("NOOP " + "x" * 2000)[0] == 500
    assert r.cmd("EHLO x")[0] == 250
    r.cmd("MAIL FROM:<a@b.test>")
    r.cmd("RCPT TO:<carol@inetkit.test>")
    r.cmd("DATA")
    r.send("Subject: nul\r\n\r\na\x00b\r\n.\r\n")
    code, text = r.reply()
    assert code == 554 and "5.6.0" in text
    r.cmd("MAIL FROM:<a@b.test>")
    r.cmd("RCPT TO:<carol@inetkit.test>")
    r.cmd("DATA")
    r.send("Subject: long\r\n\r\n" + "y" * 1200 + "\r\nafter\r\n.\r\n")
    code, text = r.reply()
    assert code == 500 and "998" in text
    assert r.cmd("NOOP")[0] == 250, "the session goes on"
    r.cmd("QUIT")
    assert maildir(mail, "carol") == [], "neither message was delivered"


def test_failed_delivery_gets_451_and_leaves_nothing(mail):
    """A mailbox that cannot be written (a file where its folder should be): 451, and the
    other recipient of the same message does not get a copy either."""
    clear(mail, "carol")
    os.makedirs(f"{mail.d}/data/mail/inetkit.test", exist_ok=True)
    with open(f"{mail.d}/data/mail/inetkit.test/blocked", "w") as f:
        f.write("not a folder")
    with smtplib.SMTP("127.0.0.1", mail.smtp, timeout=10) as s:
        with pytest.raises(smtplib.SMTPDataError) as info:
            s.sendmail("bob@example.org", ["carol@inetkit.test", "blocked@inetkit.test"], b"Subject: x\r\n\r\nbody\r\n")
        assert info.value.smtp_code == 451 and b"4.3.0" in info.value.smtp_error
        s.sendmail("bob@example.org", ["carol@inetkit.test"], b"Subject: y\r\n\r\nafterwards\r\n")
    files = maildir(mail, "carol")
    assert len(files) == 1 and b"afterwards" in read(files[0])
    assert glob.glob(f"{mail.d}/data/mail/inetkit.test/carol/tmp/*") == []
    os.unlink(f"{mail.d}/data/mail/inetkit.test/blocked")


def test_out_of_order_and_unknown_commands(mail):
    r = Raw(mail.smtp)
    assert r.cmd("MAIL FROM:<a@b.test>")[0] == 503
    assert r.cmd("EHLO x")[0] == 250
    assert r.cmd("RCPT TO:<carol@inetkit.test>")[0] == 503
    assert r.cmd("DATA")[0] == 503
    assert r.cmd("FROB")[0] == 500
    assert r.cmd("AUTH PLAIN AAAA")[0] == 502
    # max_errors is 6 here: the sixth error ends the session with 421.
    r.send("FROB\r\n")
    assert r.reply()[0] == 500
    assert r.reply()[0] == 421
    assert r.closed()


def test_relay_attempts_are_refused(mail):
    r = Raw(mail.smtp)
    r.cmd("HELO x")
    r.cmd("MAIL FROM:<spammer@example.com>")
    for target in ["victim@example.com", "carol@inetkit.test@example.com", "carol%example.com@inetkit.test.example.com",
                   "@inetkit.test:victim@example.com", "victim@[192.0.2.1]"]:
        code, text = r.cmd(f"RCPT TO:<{target}>")
        assert code in (550, 501, 553), (target, text)
        assert code != 250
    assert r.cmd("DATA")[0] == 554


def pop(r, text):
    r.send(text + "\r\n")
    return r.line()


def test_pop3_errors(mail):
    r = Raw(mail.pop3)
    assert pop(r, "STAT").startswith("-ERR")
    assert pop(r, "PASS x").startswith("-ERR")
    pop(r, "USER carol@inetkit.test")
    started = time.time()
    assert pop(r, "PASS wrong").startswith("-ERR [AUTH]")
    assert time.time() - started >= 0.25, "a wrong password is answered after auth_delay"
    pop(r, "USER carol@inetkit.test")
    assert pop(r, "PASS s3cret").startswith("+OK")
    other = Raw(mail.pop3)
    pop(other, "USER carol@inetkit.test")
    assert pop(other, "PASS s3cret").startswith("-ERR [IN-USE]")
    assert pop(r, "RETR 999").startswith("-ERR")
    assert pop(r, "TOP x y").startswith("-ERR")
    assert pop(r, "X" * 400).startswith("-ERR")
    r.close()  # no QUIT: nothing deleted, the lock goes with the connection
    time.sleep(0.3)
    pop(other, "USER carol@inetkit.test")
    assert pop(other, "PASS s3cret").startswith("+OK")
    pop(other, "QUIT")


def test_limits_timeouts_and_connections_per_address():
    d = make_certs()
    # idle_timeout is shorter than the SMTP timeouts: the session's own timeouts govern, and
    # end it with a 421 reply rather than a silent close.
    s = Server(mail_config(d, smtp_extra=", command_timeout: 1, data_timeout: 2, idle_timeout: 0.3, max_connections_per_address: 3",
                           tls=False),
               args=["--services", "smtp,pop3"])
    try:
        port = s.port("smtp")
        held = [Raw(port) for _ in range(3)]
        extra = Raw(port, greeting=False)
        code = extra.reply()[0]
        assert code == 421
        assert extra.closed()
        # Silence past command_timeout: 421 4.4.2, then the server closes.
        started = time.time()
        code, text = held[0].reply()
        assert code == 421 and "4.4.2" in text
        assert 0.8 < time.time() - started < 5
        assert held[0].closed()
        for r in held:
            r.close()
        # In DATA, data_timeout applies.
        r = Raw(port)
        r.cmd("HELO x")
        r.cmd("MAIL FROM:<a@b.test>")
        r.cmd("RCPT TO:<carol@inetkit.test>")
        r.cmd("DATA")
        started = time.time()
        r.send("Subject: slow\r\n")
        code, text = r.reply()
        assert code == 421 and 1.5 < time.time() - started < 6
        assert r.closed()
        assert not glob.glob(f"{d}/data/mail/inetkit.test/carol/new/*"), "an unfinished message is not delivered"
        assert not glob.glob(f"{d}/data/mail/inetkit.test/carol/tmp/*"), "nor left in tmp/"
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------- durability

def test_every_acknowledged_message_survives_kill_9():
    """Send from several clients, kill -9 the server at random moments, restart it on the same
    data, and check that each message that got 250 is in every recipient's Maildir, intact,
    exactly once."""
    d = make_certs()
    config = mail_config(d, tls=False)
    acknowledged = []
    lock = threading.Lock()
    rng = random.Random(1234)
    port_file = None
    for round_number in range(4):
        s = Server(config, args=["--services", "smtp,pop3"])
        port = s.port("smtp")
        stop = threading.Event()

        def sender(worker):
            n = 0
            while not stop.is_set():
                n += 1
                token = f"r{round_number}-w{worker}-m{n}"
                body = (token + "\r\n") + ("payload line for " + token + "\r\n") * rng.randint(1, 400)
                recipients = ["carol@inetkit.test", "dave@inetkit.test"][: 1 + (n % 2)]
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
                        c.sendmail("bob@example.org", recipients, f"Subject: {token}\r\n\r\n{body}".encode())
                    with lock:
                        acknowledged.append((token, tuple(recipients), hashlib.sha256(body.replace("\r\n", "\n").encode()).hexdigest()))
                except (smtplib.SMTPException, OSError):
                    return

        threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
        stop.set()
        for t in threads:
            t.join(10)
    assert len(acknowledged) > 20, "the clients got some messages through"

    base = f"{d}/data/mail/inetkit.test"
    found = {}
    for user in ["carol", "dave"]:
        for path in glob.glob(f"{base}/{user}/new/*"):
            data = read(path).decode()
            head, _, body = data.partition("\n\n")
            token = next(line[len("Subject: "):] for line in head.split("\n") if line.startswith("Subject: "))
            found.setdefault((token, user), []).append(hashlib.sha256(body.encode()).hexdigest())
    for token, recipients, digest in acknowledged:
        for address in recipients:
            user = address.split("@")[0]
            copies = found.get((token, user), [])
            assert len(copies) == 1, f"{token} for {user}: {len(copies)} copies"
            assert copies[0] == digest, f"{token} for {user} is damaged"
    # Nothing half-written is visible: every file in new/ parsed above had its Subject.
