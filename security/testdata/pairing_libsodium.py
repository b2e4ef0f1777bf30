"""Independent check of security/PAIRING.md's test vector: CPace over
libsodium's ristretto255 (through ctypes) and Python's hashlib and hmac,
sharing no code with the Go implementation. Run from the repository root:

    python3 security/testdata/pairing_libsodium.py

It needs libsodium (libsodium.so.23, Debian's libsodium23); it first checks
itself against draft-irtf-cfrg-cpace-21's ristretto255 vector.
"""
import ctypes, hashlib, hmac, re
s = ctypes.CDLL("libsodium.so.23"); assert s.sodium_init() >= 0
def lp(b): 
    assert len(b) < 128; return bytes([len(b)]) + b
def lv(*a): return b"".join(lp(x) for x in a)
def from_hash(h):
    out = ctypes.create_string_buffer(32); assert s.crypto_core_ristretto255_from_hash(out, h) == 0; return out.raw
def smult(y, P):
    out = ctypes.create_string_buffer(32); assert s.crypto_scalarmult_ristretto255(out, y, P) == 0; return out.raw
def run(prs, ci, sid, ya, yb, ada, adb):
    dsi = b"CPaceRistretto255"
    zpad = max(0, 128 - 1 - len(lp(prs)) - len(lp(dsi)))
    g = from_hash(hashlib.sha512(lv(dsi, prs, bytes(zpad), ci, sid)).digest())
    Ya, Yb = smult(ya, g), smult(yb, g)
    K = smult(ya, Yb); assert K == smult(yb, Ya)
    isk = hashlib.sha512(lv(dsi + b"_ISK", sid, K) + lv(Ya, ada) + lv(Yb, adb)).digest()
    return g, Ya, Yb, K, isk
# draft-21 ristretto255 vector first, to validate this script
g, Ya, Yb, K, isk = run(b"Password", bytes.fromhex("0b415f696e69746961746f720b425f726573706f6e646572"),
    bytes.fromhex("7e4b4791d6a8ef019b936c79fb7f2c57"),
    bytes.fromhex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08"),
    bytes.fromhex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d"), b"ADa", b"ADb")
assert g.hex() == "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56"
assert isk.hex().startswith("b69effbf61b51d56"), isk.hex()
# nearnet pairing vector
fa, fo, sid = bytes(range(0, 32)), bytes(range(32, 64)), bytes(range(64, 96))
ci = lv(b"nearnet-pairing-v1", fa, fo)
ya = bytes.fromhex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08")
yb = bytes.fromhex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d")
g, Ya, Yb, K, isk = run(b"123456", ci, sid, ya, yb, b"answer", b"offer")
mk = hashlib.sha512(b"CPaceMac" + sid + isk).digest()
ma, mo = lv(Ya, b"answer"), lv(Yb, b"offer")
doc = dict(re.findall(r"^    (pair\.[a-z0-9_]+) += (\S+)$", open("security/PAIRING.md").read(), re.M))
bad = 0
for name, v in [("ci", ci), ("generator", g), ("message_answer", ma), ("message_offer", mo), ("k", K),
                ("isk", isk), ("mac_key", mk),
                ("tag_answer", hmac.new(mk, ma, hashlib.sha512).digest()),
                ("tag_offer", hmac.new(mk, mo, hashlib.sha512).digest())]:
    ok = doc["pair." + name] == v.hex()
    bad += not ok
    print("ok  " if ok else "FAIL", "pair." + name, v.hex())
raise SystemExit(bad)
