#!/usr/bin/python3
"""A nearnet conformance client, written from PROTOCOL.md alone.

It drives running `nearnet` processes on loopback through what the document
requires of a listener: the WebSocket upgrade (section 4), framing and its
limits (5), hellos, versions and PSK proofs (6), close codes and refusal
reasons (7), datagrams (9), acks (11), streams (12), resources with resume
(13), pairing by a short code with CPace over ristretto255 (16), and node
shutdown (7, 1001). It also checks the document's test vectors (appendix A)
with its own arithmetic.

It uses Debian's packages only: python3-websockets (its sans-I/O client does
the RFC 6455 framing), python3-openssl (TLS 1.3 with the exporter, which
Python's ssl module lacks) and python3-cryptography (AES-GCM, certificates),
and libsodium (libsodium23, through ctypes) for ristretto255.
QUIC (section 14) is not checked: Debian 12 packages no Python QUIC stack.

Each check prints "ok NAME" or "FAIL NAME: why"; the exit status is 1 if
any failed. conformance_test.go runs it against a freshly built binary.
"""

import argparse
import base64
import ctypes
import ctypes.util
import datetime
import hashlib
import hmac
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import time
import traceback

from OpenSSL import SSL, crypto
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from websockets.client import ClientConnection
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

TIMEOUT = 10.0  # one wait for the peer; a hang, not a measurement
MAX_MESSAGE = 4 << 20  # the default maximum message size (section 5)

KIND_HELLO, KIND_DATA, KIND_BASE, KIND_REQ, KIND_REFUSED, KIND_ACK = 1, 2, 3, 4, 5, 6
KIND_PAIR, KIND_PAIR_CONFIRM = 7, 8


class Fail(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Fail(what)


def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


# ---------------------------------------------------------------- identity


class Identity:
    """A P-256 key and self-signed certificate (section 3)."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.fingerprint = "sha256:" + hashlib.sha256(spki).hexdigest()
        self.x509 = crypto.X509.from_cryptography(cert)
        self.pkey = crypto.PKey.from_cryptography_key(self.key)


# --------------------------------------------------------------- transport


class Transport:
    """One TCP connection, with TLS 1.3 unless tls is False (mode none)."""

    def __init__(self, addr, ident=None, alpn=(b"nearnet/1",)):
        self.sock = socket.create_connection(addr, timeout=TIMEOUT)
        self.tls = None
        if ident is None:
            return
        self.sock.settimeout(None)  # pyOpenSSL needs a blocking socket; reads wait in select
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.use_certificate(ident.x509)
        ctx.use_privatekey(ident.pkey)
        ctx.set_verify(SSL.VERIFY_PEER, lambda *a: True)  # trust is decided after TLS (section 3)
        if alpn:
            ctx.set_alpn_protos(list(alpn))
        self.tls = SSL.Connection(ctx, self.sock)
        self.tls.set_connect_state()
        self.tls.do_handshake()

    def exporter(self, label, n, context=b""):
        return self.tls.export_keying_material(label, n, context)

    def alpn(self):
        return self.tls.get_alpn_proto_negotiated()

    def send(self, b):
        if self.tls:
            self.tls.sendall(b)
        else:
            self.sock.sendall(b)

    def recv(self, n=1 << 16):
        """Bytes, or b"" at the end of the peer's data (EOF or close_notify)."""
        if self.tls is None:
            try:
                return self.sock.recv(n)
            except ConnectionResetError:
                return b""
            except socket.timeout:
                raise Fail("no data from the peer within %.0fs" % TIMEOUT) from None
        while True:
            if not self.tls.pending():
                r, _, _ = select.select([self.sock], [], [], TIMEOUT)
                if not r:
                    raise Fail("no data from the peer within %.0fs" % TIMEOUT)
            try:
                return self.tls.recv(n)
            except SSL.WantReadError:
                continue
            except SSL.ZeroReturnError:
                return b""
            except SSL.SysCallError:
                return b""

    def readable(self):
        """Whether recv would return at once."""
        if self.tls is not None and self.tls.pending():
            return True
        return bool(select.select([self.sock], [], [], 0)[0])

    def read_exact(self, n):
        b = b""
        while len(b) < n:
            c = self.recv(n - len(b))
            if not c:
                raise Fail("EOF after %d of %d bytes" % (len(b), n))
            b += c
        return b

    def close_write(self):
        """Half-close: TLS close_notify (section 12), or a TCP FIN without TLS."""
        if self.tls:
            self.tls.shutdown()
        else:
            self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -------------------------------------------------------------------- link


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__("closed %s %r" % (code, reason))
        self.code, self.reason = code, reason


class Link:
    """A nearnet link from the dialer's side: upgrade, then messages."""

    def __init__(self, addr, ident=None, path="/nearnet/v1", alpn=(b"nearnet/1",)):
        self.t = Transport(addr, ident, alpn)
        self.ws = ClientConnection(
            parse_uri("ws://%s:%d%s" % (addr[0], addr[1], path)),
            subprotocols=[Subprotocol("nearnet.v1")],
            max_size=None,  # the peer may send MAX_MESSAGE + 1 bytes (section 15)
        )
        self.key = self.ws.key  # Sec-WebSocket-Key, as sent
        self.ws.send_request(self.ws.connect())
        self.flush()
        self.pending = []  # frames received and not yet taken
        self.response = None
        self.eof = False
        while self.response is None:
            self.pump()
        if self.ws.handshake_exc is not None:
            raise Fail("upgrade refused: %s" % self.ws.handshake_exc)
        expect(self.ws.subprotocol == "nearnet.v1", "101 without subprotocol nearnet.v1")
        self.frag = None

    def flush(self):
        for b in self.ws.data_to_send():
            if b:
                self.t.send(b)

    def pump(self):
        if self.eof:
            raise Closed(None, "EOF without a close frame")
        data = self.t.recv()
        if data:
            self.ws.receive_data(data)
        else:
            if self.response is None:
                raise Fail("EOF before the answer to the upgrade")
            self.eof = True
            self.ws.receive_eof()
        for ev in self.ws.events_received():
            if isinstance(ev, Response):
                self.response = ev
            else:
                self.pending.append(ev)
        self.flush()  # pongs and close echoes

    def frame(self):
        while not self.pending:
            self.pump()
        return self.pending.pop(0)

    def message(self, pongs=None):
        """The next whole message as (opcode, payload); Closed at a close frame."""
        while True:
            f = self.frame()
            if f.opcode == Opcode.CLOSE:
                code, reason = None, ""
                if len(f.data) >= 2:
                    code = struct.unpack(">H", f.data[:2])[0]
                    reason = f.data[2:].decode("utf-8", "replace")
                raise Closed(code, reason)
            if f.opcode == Opcode.PONG:
                if pongs is not None:
                    pongs.append(f.data)
                continue
            if f.opcode == Opcode.PING:
                continue  # answered by websockets
            if f.opcode in (Opcode.TEXT, Opcode.BINARY):
                self.frag = (f.opcode, bytearray(f.data))
            elif f.opcode == Opcode.CONT:
                self.frag[1].extend(f.data)
            if f.fin:
                op, data = self.frag
                self.frag = None
                return op, bytes(data)

    def nearnet(self):
        """The next nearnet message as (kind, body), skipping extensions."""
        while True:
            op, data = self.message()
            expect(op == Opcode.BINARY, "a text message from the peer")
            expect(len(data) > 0, "an empty message from the peer")
            if data[0] >= 0x80:
                continue
            return data[0], data[1:]

    def data(self, acks=None):
        """The next data message's body; acks (a list) collects ack counts."""
        while True:
            kind, body = self.nearnet()
            if kind == KIND_ACK:
                if acks is not None:
                    acks.append(struct.unpack(">Q", body)[0])
                continue
            if kind == KIND_BASE:
                continue
            expect(kind == KIND_DATA, "unexpected kind 0x%02x" % kind)
            return body

    def send(self, kind, body=b""):
        self.ws.send_binary(bytes([kind]) + body)
        self.flush()

    def close(self, code=1000, reason=""):
        self.ws.send_close(code, reason)
        self.flush()

    def expect_close(self, code, reason_re=None, what=""):
        try:
            while True:
                self.message()
        except Closed as c:
            expect(c.code == code, "%s: closed %s %r, want %d" % (what, c.code, c.reason, code))
            if reason_re:
                expect(re.search(reason_re, c.reason), "%s: reason %r does not match %r" % (what, c.reason, reason_re))
            return c.reason


def hello_dict(peer, name="conformance", **extra):
    h = {"version": 1, "peer": peer, "name": name}
    h.update(extra)
    return h


def psk_proof(t, key, role):
    """Section 6: HMAC-SHA256(key, TLS-Exporter("EXPORTER-nearnet-psk-proof", role, 32))."""
    return hmac256(key, t.exporter(b"EXPORTER-nearnet-psk-proof", 32, role))


def new_peer():
    return os.urandom(16).hex()


# ----------------------------------------------------------- pairing (16)

_sodium = None


def sodium():
    global _sodium
    if _sodium is None:
        lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
        expect(lib.sodium_init() >= 0, "sodium_init failed")
        _sodium = lib
    return _sodium


def ristretto_from_hash(h):
    """RFC 9496 4.3.4 on 64 uniform bytes (libsodium's crypto_core_ristretto255_from_hash)."""
    out = ctypes.create_string_buffer(32)
    sodium().crypto_core_ristretto255_from_hash(out, h)
    return out.raw


def ristretto_mul(y, point):
    """scalar_mult_vfy: decode point (canonical only), multiply, encode; fails on the identity."""
    out = ctypes.create_string_buffer(32)
    expect(sodium().crypto_scalarmult_ristretto255(out, y, point) == 0, "scalar_mult_vfy: invalid point or identity")
    return out.raw


def lv(*xs):
    """lv_cat with one-byte lengths (every input of section 16 is below 128 bytes)."""
    out = b""
    for x in xs:
        expect(len(x) < 128, "an lv_cat input of %d bytes" % len(x))
        out += bytes([len(x)]) + x
    return out


class CPace:
    """One side of section 16's exchange: role "answer" (typed the code) or "offer" (shows it)."""

    def __init__(self, code, sid, fp_answer, fp_offer, role, y=None):
        self.sid, self.role = sid, role
        self.ci = lv(b"nearnet-pairing-v1", fp_answer, fp_offer)
        dsi = b"CPaceRistretto255"
        zpad = max(0, 128 - 1 - (1 + len(code)) - (1 + len(dsi)))
        self.gen_str = lv(dsi, code, b"\0" * zpad, self.ci, sid)
        self.g = ristretto_from_hash(hashlib.sha512(self.gen_str).digest())
        if y is None:
            b = bytearray(os.urandom(32))
            b[31] &= 0x0F
            y = bytes(b)
        self.y = y
        self.msg = lv(ristretto_mul(y, self.g), role.encode())

    def receive(self, peer):
        """The peer's message in; this side's tag out (self.want: the tag the peer must send)."""
        expect(len(peer) >= 35 and peer[0] == 32 and peer[33] == len(peer) - 34, "malformed CPace message %s" % peer.hex())
        other = b"offer" if self.role == "answer" else b"answer"
        expect(peer[34:] == other, "the peer's AD is %r, want %r" % (peer[34:], other))
        self.k = ristretto_mul(self.y, peer[1:33])
        ma, mb = (self.msg, peer) if self.role == "answer" else (peer, self.msg)
        self.isk = hashlib.sha512(lv(b"CPaceRistretto255_ISK", self.sid, self.k) + ma + mb).digest()
        self.mac_key = hashlib.sha512(b"CPaceMac" + self.sid + self.isk).digest()
        self.want = hmac.new(self.mac_key, peer, hashlib.sha512).digest()
        return hmac.new(self.mac_key, self.msg, hashlib.sha512).digest()


def spki_fingerprint(cert):
    """The raw 32-byte fingerprint of a pyOpenSSL certificate (section 3)."""
    spki = cert.to_cryptography().public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


# ------------------------------------------------------------------ checks


class Suite:
    def __init__(self, args):
        self.a = args
        self.key = bytes.fromhex(open(args.key_file).read().strip())
        self.ident = Identity()
        self.failed = 0

    def run(self, name, fn):
        try:
            fn()
            print("ok", name, flush=True)
        except Exception as e:  # noqa: BLE001: every fault is one failed check
            self.failed += 1
            why = str(e) if isinstance(e, (Fail, Closed)) else traceback.format_exc().strip().replace("\n", " | ")
            print("FAIL %s: %s" % (name, why), flush=True)

    # A link in mode psk to the listener, hello exchanged.
    def psk_link(self, addr=None, hello=None, **extra):
        l = Link(addr or self.a.psk, self.ident)
        h = hello or hello_dict(new_peer(), **extra)
        h.setdefault("proof", base64.b64encode(psk_proof(l.t, self.key, b"client")).decode())
        l.send(KIND_HELLO, json.dumps(h).encode())
        kind, body = l.nearnet()
        expect(kind == KIND_HELLO, "first message from the listener is kind 0x%02x, not a hello" % kind)
        l.hello = json.loads(body)
        return l

    def handshake_psk(self):
        l = self.psk_link()
        expect(l.t.alpn() == b"nearnet/1", "ALPN %r, want nearnet/1" % l.t.alpn())
        h = l.hello
        expect(h["version"] == 1, "listener hello version %r" % h["version"])
        expect(h["peer"] == self.a.psk_peer, "listener hello peer %r, want %s" % (h["peer"], self.a.psk_peer))
        expect(h.get("name") == "srv", "listener hello name %r" % h.get("name"))
        want = psk_proof(l.t, self.key, b"server")
        expect(base64.b64decode(h["proof"], validate=True) == want, "the listener's proof does not verify")
        l.send(KIND_DATA, "héllo ✓".encode())
        expect(l.data() == "héllo ✓".encode(), "echo differs")
        l.close(1000)
        l.expect_close(1000, what="closing handshake")

    def path_root(self):
        l = Link(self.a.psk, self.ident, path="/")  # Network framework to a Bonjour endpoint (section 15)
        l.send(KIND_HELLO, json.dumps(hello_dict(new_peer(), proof=base64.b64encode(psk_proof(l.t, self.key, b"client")).decode())).encode())
        kind, _ = l.nearnet()
        expect(kind == KIND_HELLO, "no hello after an upgrade to /")
        l.close()

    def alpn_rules(self):
        l = Link(self.a.psk, self.ident, alpn=())  # no ALPN: accepted over TCP (section 3)
        l.t.close()
        try:
            Transport(self.a.psk, self.ident, alpn=(b"h2",))
        except SSL.Error as e:
            expect("no application protocol" in str(e) or "alert" in str(e), "TLS error %s" % e)
            return
        raise Fail("a client offering only h2 was accepted")

    def version_answer(self):
        for v in (2, 99):
            l = self.psk_link(hello=hello_dict(new_peer(), version=v))
            expect(l.hello["version"] == 1, "version %d answered %r, want 1" % (v, l.hello["version"]))
            l.close()

    def refusals(self):
        wrong = hmac256(b"\x01" * 32, b"x")
        proof = lambda l: base64.b64encode(psk_proof(l.t, self.key, b"client")).decode()  # noqa: E731
        cases = [
            ("wrong key", lambda l: hello_dict(new_peer(), proof=base64.b64encode(wrong).decode()), 4002, "proved a different key"),
            ("no proof", lambda l: hello_dict(new_peer()), 4002, "no proof was sent"),
            ("unpadded proof", lambda l: hello_dict(new_peer(), proof=proof(l).rstrip("=")), 4005, "not valid base64"),
            ("short proof", lambda l: hello_dict(new_peer(), proof="AAAA"), 4005, "3 bytes, want 32"),
            ("version 0", lambda l: hello_dict(new_peer(), version=0, proof=proof(l)), 4005, "unsupported version 0"),
            ("version -1", lambda l: hello_dict(new_peer(), version=-1, proof=proof(l)), 4005, "unsupported version -1"),
            ("version string", lambda l: hello_dict(new_peer(), version="1", proof=proof(l)), 4005, "not a JSON integer"),
            ("version 1.0", lambda l: hello_dict(new_peer(), version=1.0, proof=proof(l)), 4005, "not a JSON integer"),
            ("uppercase peer", lambda l: hello_dict(new_peer().upper(), proof=proof(l)), 4005, "32 lowercase hex"),
            ("own peer ID", lambda l: hello_dict(self.a.psk_peer, proof=proof(l)), 4005, "own peer ID"),
            ("peer of wrong type", lambda l: {"version": 1, "peer": 7, "proof": proof(l)}, 4005, 'field "peer" must be a JSON string'),
            ("meta too large", lambda l: hello_dict(new_peer(), proof=proof(l), meta={"k": "v" * 5000}), 4005, "4 KiB"),
        ]
        for what, make, code, reason in cases:
            l = Link(self.a.psk, self.ident)
            h = make(l)
            l.send(KIND_HELLO, json.dumps(h).encode())
            l.expect_close(code, re.escape(reason), what)
            l.t.close()
        # Not a hello at all.
        l = Link(self.a.psk, self.ident)
        l.send(KIND_DATA, b"hi")
        l.expect_close(4005, "not a hello", "data before the hello")
        l = Link(self.a.psk, self.ident)
        l.ws.send_text(json.dumps(hello_dict(new_peer())).encode())
        l.flush()
        l.expect_close(1002, "text frame", "hello as a text frame (section 5)")

    def untrusted(self):
        l = Link(self.a.pinned, self.ident)
        l.send(KIND_HELLO, json.dumps(hello_dict(new_peer())).encode())
        reason = l.expect_close(4003, None, "an identity the listener does not trust")
        expect(self.ident.fingerprint in reason, "4003 reason %r does not name %s" % (reason, self.ident.fingerprint))

    def http_refusals(self):
        def status(request):
            t = Transport(self.a.psk, self.ident)
            t.send(request.encode())
            resp = b""
            while b"\r\n\r\n" not in resp:
                c = t.recv()
                if not c:
                    break
                resp += c
            t.close()
            m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
            expect(m, "no HTTP status in %r" % resp[:80])
            return int(m.group(1)), resp

        base = ("GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {ver}\r\n"
                "Sec-WebSocket-Protocol: {proto}\r\n\r\n")
        ok = dict(path="/nearnet/v1", ver="13", proto="nearnet.v1")
        for what, req, want in [
            ("another path", base.format(**dict(ok, path="/other")), 404),
            ("another subprotocol", base.format(**dict(ok, proto="nearnet.v2")), 400),
            ("WebSocket version 12", base.format(**dict(ok, ver="12")), 426),
            ("POST", base.format(**ok).replace("GET", "POST", 1), 405),
        ]:
            got, resp = status(req)
            expect(got == want, "%s: HTTP %d, want %d" % (what, got, want))
        got, resp = status(base.format(**dict(ok, proto="nearnet.v2")))
        expect(b"this peer speaks nearnet.v1" in resp, "400 reason %r" % resp[-120:])
        got, _ = status(base.format(**ok))
        expect(got == 101, "valid request: HTTP %d" % got)

    def framing(self):
        l = self.psk_link()
        # Fragmented, with a ping between the fragments (section 5).
        l.ws.send_binary(bytes([KIND_DATA]) + b"frag", fin=False)
        l.ws.send_ping(b"p1")
        l.ws.send_continuation(b"mented", fin=True)
        l.flush()
        pongs = []
        op, body = l.message(pongs)
        while op == Opcode.BINARY and body[:1] == bytes([KIND_ACK]):
            op, body = l.message(pongs)
        expect(body == bytes([KIND_DATA]) + b"fragmented", "fragmented message echoed as %r" % body[:40])
        expect(pongs == [b"p1"], "pongs %r, want [b'p1']" % pongs)
        # An extension kind is ignored; the next message still arrives.
        l.send(0x80, b"ignore me")
        l.send(KIND_DATA, b"after the extension")
        expect(l.data() == b"after the extension", "message after an extension kind")
        # Exactly the maximum message size.
        big = os.urandom(MAX_MESSAGE)
        l.send(KIND_DATA, big)
        expect(l.data() == big, "a message of exactly 4 MiB was not echoed intact")
        # One byte more: 1009 (section 5). The header says so; the listener
        # need not read the payload, so only its start is sent.
        n = 1 + MAX_MESSAGE + 1
        l.t.send(bytes([0x82, 0xFF]) + struct.pack(">Q", n) + b"\0\0\0\0" + bytes([KIND_DATA]) + big[:1000])
        l.expect_close(1009, None, "a message over the maximum size")
        l.t.close()
        for what, raw, code in [
            ("unknown kind 0x07", None, 1002),
            ("empty binary message", None, 1002),
            ("unmasked frame from the dialer", b"\x82\x02\x02x", 1002),
            ("reserved bit set", None, 1002),
        ]:
            l = self.psk_link()
            if what == "unknown kind 0x07":
                l.send(0x07, b"?")
            elif what == "empty binary message":
                l.ws.send_binary(b"")
                l.flush()
            elif what == "reserved bit set":
                l.t.send(bytes([0xC2, 0x82]) + b"\0\0\0\0" + b"\x02x")  # FIN+RSV1+binary, masked with 0
            else:
                l.t.send(raw)
            l.expect_close(code, None, what)
            l.t.close()

    def acks(self):
        boot = os.urandom(8).hex()
        l = self.psk_link(boot=boot)
        expect(re.fullmatch(r"[0-9a-f]{16}", l.hello.get("boot", "")), "listener hello has no boot")
        for i in range(3):
            l.send(KIND_DATA, b"m%d" % i)
        acks, echoes = [], []
        while len(echoes) < 3 or not acks or acks[-1] < 3:
            kind, body = l.nearnet()
            if kind == KIND_ACK:
                acks.append(struct.unpack(">Q", body)[0])
            elif kind == KIND_DATA:
                echoes.append(body)
        expect(echoes == [b"m0", b"m1", b"m2"], "echoes %r" % echoes)
        expect(acks == sorted(acks) and acks[-1] == 3, "acks %r, want cumulative up to 3" % acks)
        l.send(KIND_ACK, struct.pack(">Q", 3))
        l.close()
        l.expect_close(1000, None, "close after acks")

    def datagrams(self):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(1.0)
        mine = os.urandom(8)
        while mine == b"\0" * 8:
            mine = os.urandom(8)
        l = self.psk_link(udp_port=udp.getsockname()[1], udp_session=mine.hex())
        theirs = bytes.fromhex(l.hello["udp_session"])
        port = l.hello["udp_port"]
        material = l.t.exporter(b"EXPORTER-nearnet-datagram", 64, mine + theirs)
        send_key, recv_key = AESGCM(material[:32]), AESGCM(material[32:])

        def seal(pn, payload):
            hdr = bytes([1]) + theirs + struct.pack(">Q", pn)
            return hdr + send_key.encrypt(b"\0\0\0\0" + struct.pack(">Q", pn), payload, hdr)

        def next_echo():
            d, _ = udp.recvfrom(2048)
            expect(d[0] == 1 and d[1:9] == mine, "datagram header %r" % d[:17])
            return recv_key.decrypt(b"\0\0\0\0" + d[9:17], d[17:], d[:17])

        got = None
        for pn in range(5):  # best effort: a few tries, each waiting up to 1 s
            udp.sendto(seal(pn, b"dgram-hello"), ("127.0.0.1", port))
            try:
                got = next_echo()
                break
            except socket.timeout:
                continue
        expect(got == b"dgram-hello", "no echo of a sealed datagram")
        # A replayed packet number is dropped: the next echo is the new one.
        udp.sendto(seal(0, b"replayed"), ("127.0.0.1", port))
        udp.sendto(seal(10, b"fresh"), ("127.0.0.1", port))
        expect(next_echo() == b"fresh", "a replayed datagram was delivered")
        # A forged tag is dropped too.
        bad = bytearray(seal(11, b"forged"))
        bad[-1] ^= 1
        udp.sendto(bytes(bad), ("127.0.0.1", port))
        udp.sendto(seal(12, b"genuine"), ("127.0.0.1", port))
        expect(next_echo() == b"genuine", "a datagram with a bad tag was delivered")
        l.close()
        udp.close()

    def open_stream(self, link, addr, ident, sid, name="py-stream", kind=None, tamper=False):
        """Section 12: a stream connection tied to link; returns its transport."""
        if ident is None:
            stream_key = hashlib.sha256(b"nearnet-stream-none\0" + link.key.encode()).digest()
        else:
            stream_key = link.t.exporter(b"EXPORTER-nearnet-stream-key", 32)
        handle = hmac256(stream_key, b"handle")[:16].hex()
        t = Transport(addr, ident)
        e = t.exporter(b"EXPORTER-nearnet-stream", 32) if ident else b""

        def proof(role, reply=False):
            return hmac256(stream_key, b"nearnet-stream-v1 " + role + b"\0" + e + handle.encode()
                           + struct.pack(">Q", sid) + bytes([1 if reply else 0]))

        p = proof(b"client")
        if tamper:
            p = bytes([p[0] ^ 1]) + p[1:]
        o = {"handle": handle, "id": sid, "name": name, "proof": base64.b64encode(p).decode()}
        if kind:
            o["kind"] = kind
        body = json.dumps(o).encode()
        t.send(b"NNS1" + struct.pack(">H", len(body)) + body)
        n = struct.unpack(">H", t.read_exact(2))[0]
        ans = json.loads(t.read_exact(n))
        if not ans.get("ok"):
            t.close()
            raise Fail("stream refused: %s" % ans.get("error"))
        expect(base64.b64decode(ans["proof"], validate=True) == proof(b"server"), "the listener's stream proof does not verify")
        return t

    def stream(self):
        l = self.psk_link()
        t = self.open_stream(l, self.a.psk, self.ident, 1)
        payload = os.urandom(1 << 20)
        got = bytearray()
        for i in range(0, len(payload), 16 << 10):
            t.send(payload[i:i + (16 << 10)])
            while t.readable():  # read the echo as it comes, or both sides' buffers fill
                c = t.recv()
                expect(c, "EOF before this side's half-close")
                got.extend(c)
        t.close_write()  # half-close; the echo keeps coming
        while True:
            c = t.recv()
            if not c:
                break
            got.extend(c)
        expect(bytes(got) == payload, "stream echo: %d bytes back of %d" % (len(got), len(payload)))
        t.close()
        try:
            self.open_stream(l, self.a.psk, self.ident, 2, tamper=True)
        except Fail as e:
            expect("refused" in str(e), str(e))
        else:
            raise Fail("a stream with a bad proof was accepted")
        l.close()

    def insecure(self):
        l = Link(self.a.none)
        l.send(KIND_HELLO, json.dumps(hello_dict(new_peer())).encode())
        kind, body = l.nearnet()
        expect(kind == KIND_HELLO and "proof" not in json.loads(body), "mode none hello")
        l.send(KIND_DATA, b"plain")
        expect(l.data() == b"plain", "echo in mode none")
        t = self.open_stream(l, self.a.none, None, 1)
        t.send(b"plain stream")
        t.close_write()
        got = b""
        while True:
            c = t.recv()
            if not c:
                break
            got += c
        expect(got == b"plain stream", "mode none stream echo %r" % got)
        l.close()

    def resource(self):
        content = os.urandom(1 << 20)
        name = "conf/resumed.bin"
        half = len(content) // 2

        def frame(obj):
            b = json.dumps(obj).encode()
            return struct.pack(">I", len(b)) + b

        def read_frame(t):
            n = struct.unpack(">I", t.read_exact(4))[0]
            expect(2 <= n <= 65536, "frame length %d" % n)
            return json.loads(t.read_exact(n))

        l = self.psk_link(addr=self.a.receive)
        # First attempt: half the content, then the stream ends (close_notify).
        t = self.open_stream(l, self.a.receive, self.ident, 1, name="", kind="resource")
        t.send(frame({"v": 1, "name": name, "size": len(content), "meta": {"type": "application/octet-stream"}}))
        r = read_frame(t)
        expect(r.get("accept") is True, "first offer: %r" % r)
        expect("offset" in r and r["offset"] == 0, "acceptance of a new file must carry offset 0: %r" % r)
        t.send(frame({"offset": 0}) + content[:half])
        t.close_write()
        t.recv()  # the receiver gives up on its side: EOF
        t.close()
        # Second attempt: resumes from the verified prefix.
        for sid in range(2, 42):  # the receiver may still be ending the first
            t = self.open_stream(l, self.a.receive, self.ident, sid, name="", kind="resource")
            t.send(frame({"v": 1, "name": name, "size": len(content)}))
            r = read_frame(t)
            if r.get("accept") is False and r.get("code") == "in_progress":
                t.close()
                time.sleep(0.1)
                continue
            break
        expect(r.get("accept") is True, "second offer: %r" % r)
        k = r["offset"]
        expect(0 < k <= half, "resume offset %d, want 1..%d" % (k, half))
        expect(r["prefix_sha256"] == hashlib.sha256(content[:k]).hexdigest(), "prefix_sha256 does not match")
        t.send(frame({"offset": k}) + content[k:] + frame({"sha256": hashlib.sha256(content).hexdigest()}))
        res = read_frame(t)
        expect(res.get("ok") is True, "result %r" % res)
        t.close()
        with open(os.path.join(self.a.receive_dir, name), "rb") as f:
            expect(f.read() == content, "the received file differs from what was sent")
        # A name the rules refuse (section 13, names).
        t = self.open_stream(l, self.a.receive, self.ident, 50, name="", kind="resource")
        t.send(frame({"v": 1, "name": "../escape", "size": 1}))
        r = read_frame(t)
        expect(r.get("accept") is False and r.get("code") == "unsafe_name", "unsafe name: %r" % r)
        t.close()
        l.close()

    def vectors(self):
        """Appendix A, recomputed here."""
        v = {}
        doc = open(self.a.protocol, encoding="utf-8").read().split("## Appendix A. Test vectors", 1)[1]
        for m in re.finditer(r"^    ([a-z0-9_.]+) += (.+)$", doc, re.M):
            v[m.group(1)] = m.group(2).strip()
        h = bytes.fromhex
        key = h(v["psk.key"])
        expect(hmac256(key, h(v["psk.exporter_client"])).hex() == v["psk.proof_client"], "psk.proof_client")
        expect(base64.b64encode(hmac256(key, h(v["psk.exporter_server"]))).decode() == v["psk.proof_server_base64"], "psk.proof_server")
        sk = hashlib.sha256(b"nearnet-stream-none\0" + v["stream.websocket_key"].encode()).digest()
        expect(sk.hex() == v["stream.key_none"], "stream.key_none")
        handle = hmac256(sk, b"handle")[:16].hex()
        expect(handle == v["stream.handle"], "stream.handle")
        p = hmac256(sk, b"nearnet-stream-v1 client\0" + h(v["stream.exporter"]) + handle.encode() + struct.pack(">Q", 1) + b"\0")
        expect(p.hex() == v["stream.proof_client"], "stream.proof_client")
        m = h(v["dgram.material"])
        ctx = h(v["dgram.dialer_session"]) + h(v["dgram.listener_session"])
        expect(ctx.hex() == v["dgram.context"], "dgram.context")
        pn = int(v["dgram.packet_number"])
        hdr = b"\x01" + h(v["dgram.listener_session"]) + struct.pack(">Q", pn)
        expect(hdr.hex() == v["dgram.header"], "dgram.header")
        d = hdr + AESGCM(m[:32]).encrypt(b"\0\0\0\0" + struct.pack(">Q", pn), v["dgram.payload"].encode(), hdr)
        expect(d.hex() == v["dgram.datagram"], "dgram.datagram")
        c = v["res.content"].encode()
        expect(hashlib.sha256(c[:5]).hexdigest() == v["res.prefix_sha256"], "res.prefix_sha256")
        expect(hashlib.sha256(c).hexdigest() == v["res.sha256"], "res.sha256")
        for name in ("res.offer", "res.accept_new", "res.accept_resume", "res.start", "res.trailer", "res.result"):
            length, body = v[name].split(" ", 1)
            expect(int(length, 16) == len(body.encode()), name + ": length")
        code, sid = v["pair.code"].encode(), h(v["pair.exporter"])
        fa, fo = h(v["pair.fingerprint_answer"]), h(v["pair.fingerprint_offer"])
        a = CPace(code, sid, fa, fo, "answer", h(v["pair.scalar_answer"]))
        o = CPace(code, sid, fa, fo, "offer", h(v["pair.scalar_offer"]))
        for name, got in (("ci", a.ci), ("generator_string", a.gen_str), ("generator", a.g),
                          ("message_answer", a.msg), ("message_offer", o.msg)):
            expect(got.hex() == v["pair." + name], "pair." + name)
        ta, to = a.receive(o.msg), o.receive(a.msg)
        for name, got in (("k", a.k), ("isk", a.isk), ("mac_key", a.mac_key), ("tag_answer", ta), ("tag_offer", to)):
            expect(got.hex() == v["pair." + name], "pair." + name)
        expect(a.want == to and o.want == ta and o.k == a.k, "the two sides of the pairing vector do not agree")

    def pairing(self):
        """Section 16, as the side showing a code, dialing nearnet receive --code: a wrong code, then the right one."""
        for code, right in ((self.a.pair_code_wrong, False), (self.a.pair_code, True)):
            l = Link(self.a.pair, self.ident)
            sid = l.t.exporter(b"EXPORTER-nearnet-pairing", 32, b"")
            mine = bytes.fromhex(self.ident.fingerprint[len("sha256:"):])
            theirs = spki_fingerprint(l.t.tls.get_peer_certificate())
            c = CPace(code.replace("-", "").encode(), sid, theirs, mine, "offer")
            l.send(KIND_PAIR, c.msg)
            kind, body = l.nearnet()
            expect(kind == KIND_PAIR, "kind 0x%02x where the listener's pair message belongs" % kind)
            l.send(KIND_PAIR_CONFIRM, c.receive(body))  # without waiting for the listener's tag
            kind, tag = l.nearnet()
            expect(kind == KIND_PAIR_CONFIRM and len(tag) == 64, "kind 0x%02x (%d bytes) where the listener's tag belongs" % (kind, len(tag)))
            if not right:
                expect(not hmac.compare_digest(tag, c.want), "the listener's tag verified for a wrong code")
                l.expect_close(4007, "^pairing code mismatch", "a wrong code")
                l.t.close()
                continue
            expect(hmac.compare_digest(tag, c.want), "the listener's tag does not verify for the right code")
            l.send(KIND_HELLO, json.dumps(hello_dict(new_peer(), name="py-paired")).encode())
            kind, body = l.nearnet()
            expect(kind == KIND_HELLO, "kind 0x%02x where the listener's hello belongs" % kind)
            expect(json.loads(body).get("version") == 1, "hello %r" % body)
            l.close()
            l.expect_close(1000, None, "closing after pairing")
            l.t.close()

    def shutdown(self):
        l = self.psk_link()
        os.kill(self.a.psk_pid, signal.SIGTERM)
        l.expect_close(1001, None, "the listener's node shutting down (section 7)")


def addr(s):
    host, port = s.rsplit(":", 1)
    return (host, int(port))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key-file", required=True, help="the listeners' pre-shared key (64 hex digits)")
    ap.add_argument("--psk", type=addr, required=True, help="nearnet listen --echo --key-file KEY --name srv")
    ap.add_argument("--psk-peer", required=True, help="its peer ID")
    ap.add_argument("--psk-pid", type=int, required=True, help="its process ID (sent SIGTERM last)")
    ap.add_argument("--pinned", type=addr, required=True, help="nearnet listen --trust (not this client's identity)")
    ap.add_argument("--none", type=addr, required=True, help="nearnet listen --insecure --echo")
    ap.add_argument("--receive", type=addr, required=True, help="nearnet receive --yes --key-file KEY")
    ap.add_argument("--receive-dir", required=True, help="its --dir")
    ap.add_argument("--pair", type=addr, required=True, help="nearnet receive --code CODE (mode pinned, nothing trusted)")
    ap.add_argument("--pair-code", required=True, help="its CODE")
    ap.add_argument("--pair-code-wrong", required=True, help="another code")
    ap.add_argument("--protocol", required=True, help="PROTOCOL.md")
    ap.add_argument("--only", help="run only the checks whose names match this regular expression")
    a = ap.parse_args()
    signal.alarm(120)  # a hang anywhere ends the run
    s = Suite(a)
    checks = [
        ("vectors", s.vectors),
        ("handshake_psk", s.handshake_psk),
        ("path_root", s.path_root),
        ("alpn", s.alpn_rules),
        ("version_answer", s.version_answer),
        ("refusals", s.refusals),
        ("untrusted_identity", s.untrusted),
        ("http_refusals", s.http_refusals),
        ("framing", s.framing),
        ("acks", s.acks),
        ("datagrams", s.datagrams),
        ("stream", s.stream),
        ("insecure", s.insecure),
        ("resource_resume", s.resource),
        ("pairing", s.pairing),
        ("shutdown_1001", s.shutdown),  # last: it ends the listener
    ]
    for name, fn in checks:
        if a.only and not re.search(a.only, name):
            continue
        s.run(name, fn)
    sys.exit(1 if s.failed else 0)


if __name__ == "__main__":
    main()
