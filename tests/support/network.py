"""A recorder that replaces name lookups and socket connects, so egress tests can never send traffic out.

``Network`` (the ``network`` fixture) patches ``socket.getaddrinfo`` and ``socket.socket.connect``:

* lookups answer from ``network.answer(name, ...)`` (successive lookups can get successive answers, for
  DNS rebinding); numeric spellings (``127.1``, ``0x7f.1``, ``[::1]``) are parsed by the C library without
  any DNS (``AI_NUMERICHOST``); every other name fails as unknown;
* connects reach only the loopback test servers registered with ``network.allow(port)``, or a
  loopback server standing in for a public address (``network.route(ip, port, to_port)``). Everything
  else — 10.x, 169.254.169.254, a public address — is recorded and refused ("refused" by default,
  ``network.behave(ip, "unreachable" | "timeout")`` to play other failures). A broken guard therefore
  fails its test instead of reaching the address.

Also here: a throwaway certificate authority for loopback TLS servers (``make_tls``) and ``serve_tls``.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


@dataclass
class Network:
    answers: dict[str, deque[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)
    allowed_ports: set[int] = field(default_factory=set)
    routes: dict[tuple[str, int], int] = field(default_factory=dict)
    behaviours: dict[str, str] = field(default_factory=dict)

    def answer(self, name: str, *answers: str | list[str]) -> None:
        """Answer lookups of ``name``: each argument is one lookup's answer (an address or a list of them);
        the last answer repeats."""
        self.answers[name.lower()] = deque([a] if isinstance(a, str) else list(a) for a in answers)

    def allow(self, port: int) -> None:
        """Let connects to 127.0.0.1:``port`` (a test server) through."""
        self.allowed_ports.add(port)

    def route(self, ip: str, port: int, to_port: int) -> None:
        """A connect to ``ip``:``port`` reaches the loopback server on ``to_port`` instead (a stand-in)."""
        self.routes[(str(ipaddress.ip_address(ip)), port)] = to_port

    def behave(self, ip: str, how: str) -> None:
        self.behaviours[str(ipaddress.ip_address(ip))] = how

    def lookups_of(self, name: str) -> int:
        return sum(1 for n in self.lookups if n == name.lower())

    def refused_connects(self) -> list[tuple[str, int]]:
        return [(ip, port) for ip, port in self.connects
                if (ip, port) not in self.routes and not (ip == "127.0.0.1" and port in self.allowed_ports)]

    # The replacements ---------------------------------------------------------------------
    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 — socket's names
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name.lower())
        queue = self.answers.get(name.lower().rstrip("."))
        if queue is not None:
            addresses = queue[0] if len(queue) == 1 else queue.popleft()
            infos = []
            for address in addresses:
                ip = ipaddress.ip_address(address)
                fam = socket.AF_INET if ip.version == 4 else socket.AF_INET6
                if family not in (0, socket.AF_UNSPEC, fam):
                    continue
                sockaddr = (str(ip), int(port or 0)) if ip.version == 4 else (str(ip), int(port or 0), 0, 0)
                infos.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
            if not infos:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return infos
        # Numeric forms only: no query ever leaves the machine.
        return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    def connect(self, sock, address):
        ip, port = str(ipaddress.ip_address(address[0].split("%")[0])), int(address[1])
        self.connects.append((ip, port))
        if (ip, port) in self.routes:
            return _real_connect(sock, ("127.0.0.1", self.routes[(ip, port)]))
        if ip == "127.0.0.1" and port in self.allowed_ports:
            return _real_connect(sock, address)
        how = self.behaviours.get(ip, "refused")
        if how == "unreachable":
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        if how == "timeout":
            raise TimeoutError("timed out")
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    def install(self, monkeypatch) -> Network:
        recorder = self

        def connect(sock, address):
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return _real_connect(sock, address)  # unix sockets (e.g. a local database) are not egress
            return recorder.connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: connect(sock, address) or 0)
        return self


# TLS ------------------------------------------------------------------------------------------

@dataclass
class TLSFiles:
    ca: Path  # the authority's certificate (a client's "verify" bundle)
    cert: Path  # the server's certificate chain
    key: Path


def make_tls(directory: Path, hostname: str) -> TLSFiles:
    """A fresh CA and a server certificate for ``hostname`` signed by it (cryptography, no network)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Egress test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    files = TLSFiles(directory / f"{hostname}-ca.pem", directory / f"{hostname}.pem", directory / f"{hostname}.key")
    files.ca.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(leaf.public_bytes(pem))
    files.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


def serve_tls(server, files: TLSFiles) -> list[str]:
    """Wrap a (not yet started) sandbox.base.FakeServer in TLS; returns the list the SNI names land in."""
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(files.cert), str(files.key))
    context.sni_callback = lambda _sock, name, _ctx: names.append(name or "")
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.httpd.handle_error = lambda *args: None  # a refused handshake is the point of some tests
    return names


