"""A throwaway Dovecot IMAP server on 127.0.0.1 for the `imap` source's tests: one
passwd-file user, a Maildir, plaintext IMAP (with STARTTLS) and IMAPS on free ports, and a
self-signed certificate made with `openssl req` for 127.0.0.1.

Everything lives in a fresh directory under the system temp dir rather than pytest's
tmp_path: Dovecot's login and mail processes run as its own unprivileged users when the
tests run as root, and pytest's directories are private to the user running them (its
socket paths would also be too long for a Unix socket).
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")
USER = "support@acme.test"
PASSWORD = "imap-s3cret-pass"
CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = listener-test-{port}
log_path = {base}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base}/users
}}
userdb {{
  driver = passwd-file
  args = {base}/users
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


def quote(folder: str) -> str:
    """imaplib sends mailbox names as given; a name with a space needs quotes."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost; the tests trust it through `ca_file`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


@dataclass
class Dovecot:
    base: Path
    port: int
    tls_port: int
    cert: Path
    process: subprocess.Popen[bytes] | None = None
    user: str = USER
    password: str = PASSWORD
    appended: list[str] = field(default_factory=list)

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, when: datetime, folder: str = "INBOX") -> None:
        """Deliver a message the way a mail client or migration tool does (IMAP APPEND),
        with `when` as the server's arrival time."""
        with self.session() as client:
            status, data = client.append(quote(folder), None, imaplib.Time2Internaldate(when), raw)
            assert status == "OK", data

    def create(self, folder: str) -> None:
        with self.session() as client:
            status, data = client.create(quote(folder))
            assert status == "OK", data

    def recreate(self, folder: str) -> None:
        """Delete and create the folder again: its messages are gone and it gets a new
        UIDVALIDITY, as after a mailbox rebuild or migration."""
        with self.session() as client:
            before = self._validity(client, folder)
            assert client.delete(quote(folder))[0] == "OK"
            assert client.create(quote(folder))[0] == "OK"
            assert self._validity(client, folder) != before

    def validity(self, folder: str = "INBOX") -> int:
        with self.session() as client:
            return self._validity(client, folder)

    @staticmethod
    def _validity(client: imaplib.IMAP4, folder: str) -> int:
        status, _ = client.select(quote(folder), readonly=True)
        assert status == "OK"
        value = int(client.response("UIDVALIDITY")[1][0])
        client.close()
        return value

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4]:
        client = self.client()
        try:
            yield client
        finally:
            client.logout()

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _users() -> tuple[str, str, str, pwd.struct_passwd]:
    """(login user, internal user and group, the mail files' owner): Dovecot's own
    accounts under root; the current user otherwise (Dovecot runs rootless then)."""
    if os.geteuid() == 0:
        return "dovenull", "dovecot", "dovecot", pwd.getpwnam("dovecot")
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, me.pw_name, grp.getgrgid(me.pw_gid).gr_name, me


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    base = Path(tempfile.mkdtemp(prefix="listener-dovecot-"))
    base.chmod(0o755)
    server: Dovecot | None = None
    try:
        login_user, internal_user, internal_group, owner = _users()
        mail = base / "mail"
        mail.mkdir()
        os.chown(mail, owner.pw_uid, owner.pw_gid)
        cert, _ = self_signed_cert(base)
        (base / "users").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::{mail}/support\n")
        port, tls_port = free_port(), free_port()
        (base / "dovecot.conf").write_text(CONFIG.format(
            base=base, port=port, tls_port=tls_port, login_user=login_user,
            internal_user=internal_user, internal_group=internal_group))
        process = subprocess.Popen([str(DOVECOT), "-F", "-c", str(base / "dovecot.conf")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        server = Dovecot(base, port, tls_port, cert, process)
        _wait_until_ready(server)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _wait_until_ready(server: Dovecot) -> None:
    deadline = time.monotonic() + 20
    assert server.process is not None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            output = server.process.stdout.read().decode(errors="replace") \
                if server.process.stdout else ""
            raise RuntimeError(f"dovecot exited: {output}\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1) as probe:
                if probe.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{server.port}\n{server.log()}")
