"""A real OpenLDAP server (Debian's ``slapd``) for the LDAP login tests.

``Slapd.start()`` writes a ``slapd.conf`` with one mdb database into a temporary folder, makes a
throw-away certificate authority and a server certificate for 127.0.0.1 (``cryptography``),
starts ``slapd`` in the foreground as the current user, listening on loopback only (plain LDAP,
StartTLS on the same port, and LDAPS on a second port), loads ``DIRECTORY`` with ``ldapadd`` (so
the memberOf overlay fills the admins' ``memberOf``) and logs every operation (``stats``) to a
file the tests read to see which filters reached the server. ``stop()`` ends it. The system's own
slapd service is never used.

Without slapd, the tests that need it skip, except under CI (env ``CI`` set), where they fail:
``make test`` installs it (``TEST_APT_PACKAGES`` in the Makefile).
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUFFIX = "dc=wisp,dc=test"
ROOT_DN = f"cn=root,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
READER_DN = f"cn=reader,ou=services,{SUFFIX}"  # the service account the provider searches with
READER_PASSWORD = "Reader-Pass-1"
PEOPLE = f"ou=people,{SUFFIX}"
ADMINS_GROUP = f"cn=wisp-admins,ou=groups,{SUFFIX}"
PASSWORD = "Ldap-User-Pass-7"  # every person's password

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib/openldap"), Path("/usr/libexec/openldap"))


def _person(uid: str, *, ou: str = "people", mail: str | None = None, cn: str | None = None) -> str:
    lines = [f"dn: uid={uid},ou={ou},{SUFFIX}", "objectClass: inetOrgPerson", f"uid: {uid}",
             f"cn: {cn or uid}", f"sn: {uid}", f"userPassword: {PASSWORD}"]
    if mail:
        lines.append(f"mail: {mail}")
    return "\n".join(lines)


# alice: a user; bob: an admin (member of wisp-admins); carol: no mail; twin: two entries with the
# same uid; "st*r": a uid with a literal asterisk (and "stXr", which "st*r" would match unescaped);
# jürgen: a non-ASCII uid (written base64 below, as LDIF requires); mallory: a bad mail address
PEOPLE_ENTRIES = [
    _person("alice", mail="alice@example.org", cn="Alice Liddell"),
    _person("bob", mail="Bob@Example.org"),
    _person("carol"),
    _person("twin", mail="twin1@example.org"),
    _person("twin", ou="staff", mail="twin2@example.org"),
    _person("st*r", mail="star@example.org"),
    _person("stXr", mail="stxr@example.org"),
    _person("mallory", mail="not an address"),
]


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode("utf-8")).decode("ascii")


JUERGEN = "jürgen"
DIRECTORY = "\n\n".join([
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: wisp\no: Wisp tests",
    f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
    f"dn: ou=staff,{SUFFIX}\nobjectClass: organizationalUnit\nou: staff",
    f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
    f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
    f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
    f"userPassword: {READER_PASSWORD}",
    *PEOPLE_ENTRIES,
    f"dn:: {_b64(f'uid={JUERGEN},ou=people,{SUFFIX}')}\nobjectClass: inetOrgPerson\nuid:: {_b64(JUERGEN)}\n"
    f"cn: Juergen\nsn: J\nmail: juergen@example.org\nuserPassword: {PASSWORD}",
    f"dn: {ADMINS_GROUP}\nobjectClass: groupOfNames\ncn: wisp-admins\nmember: uid=bob,ou=people,{SUFFIX}",
]) + "\n"


def slapd_binary() -> str | None:
    return shutil.which("slapd") or next((p for p in ("/usr/sbin/slapd", "/usr/libexec/slapd")
                                          if os.access(p, os.X_OK)), None)


def require_slapd() -> str:
    """The slapd binary; skips the test without it (fails under CI, which always installs it)."""
    binary = slapd_binary()
    if binary and shutil.which("ldapadd") and SCHEMA_DIR.is_dir():
        return binary
    message = "slapd/ldap-utils are not installed (apt-get install slapd ldap-utils); the LDAP tests did NOT run"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI installs them (make test: TEST_APT_PACKAGES)")
    pytest.skip(message)
    raise AssertionError("unreachable")


def _die_with_parent() -> None:
    """Linux: slapd gets SIGTERM when the test process dies, even when it is killed (no stray servers)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Wisp test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


@dataclass
class Slapd:
    folder: Path
    ldap_port: int = 0
    ldaps_port: int = 0
    ca_file: Path = Path()
    log_file: Path = Path()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def log_since(self, mark: int) -> str:
        return self.log()[mark:]

    def log_mark(self) -> int:
        return len(self.log())

    @classmethod
    def start(cls) -> Slapd:
        binary = require_slapd()
        folder = Path(tempfile.mkdtemp(prefix="wisp-slapd-"))
        server = cls(folder=folder, ldap_port=_free_port(), ldaps_port=_free_port(), log_file=folder / "slapd.log")
        server.ca_file, cert, key = _write_certificates(folder)
        (folder / "db").mkdir()
        module_dir = next((d for d in MODULE_DIRS if (d / "back_mdb.so").exists() or (d / "back_mdb.la").exists()),
                          None)
        modules = (f"modulepath {module_dir}\nmoduleload back_mdb\nmoduleload memberof\n" if module_dir else "")
        schema = "".join(f"include {SCHEMA_DIR / name}.schema\n" for name in ("core", "cosine", "inetorgperson", "nis"))
        (folder / "slapd.conf").write_text(
            f"{schema}{modules}"
            f"pidfile {folder / 'slapd.pid'}\nargsfile {folder / 'slapd.args'}\n"
            f"TLSCACertificateFile {server.ca_file}\nTLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
            "database mdb\nmaxsize 16777216\n"
            f'suffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\nrootpw {ROOT_PASSWORD}\ndirectory {folder / "db"}\n'
            "overlay memberof\n"
            # only the service account may search; anyone may bind (compare a password)
            "access to attrs=userPassword by anonymous auth by * none\n"
            f'access to * by dn.exact="{READER_DN}" read by self read by * none\n',
            encoding="utf-8",
        )
        urls = f"{server.ldap_url}/ {server.ldaps_url}/"
        log = server.log_file.open("wb")
        # -d stats: stay in the foreground and log each operation (with its filter) to stderr
        server.process = subprocess.Popen([binary, "-f", str(folder / "slapd.conf"), "-h", urls, "-d", "stats"],
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          preexec_fn=_die_with_parent)
        log.close()
        try:
            server._wait_until_listening()
            subprocess.run(["ldapadd", "-x", "-H", server.ldap_url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
                           input=DIRECTORY.encode("utf-8"), check=True, capture_output=True, timeout=30)
        except BaseException:
            output = server.log()
            server.stop()
            raise RuntimeError(f"slapd did not start or load its data; its log:\n{output[-4000:]}") from None
        return server

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}")
            try:
                for port in (self.ldap_port, self.ldaps_port):
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
