#!/usr/bin/env python3
"""Seed fuzz/corpus/* from the golden captures in tests/golden/*.pcap.

Every TCP port-179 payload becomes a `framing` input; every complete BGP
message in it becomes inputs for `message`/`round_trip` (type byte + body)
and for the per-type body targets. Run from the repository root.
"""
import glob, hashlib, os, struct

TYPES = {1: "open", 2: "update", 3: "notification", 5: "route_refresh"}

def packets(path):
    data = open(path, "rb").read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield linktype, data[off + 16: off + 16 + incl]
        off += 16 + incl

def tcp_payload(linktype, frame):
    if linktype == 1:
        eth_type = struct.unpack(">H", frame[12:14])[0]
        ip = frame[14:]
    elif linktype == 113:
        eth_type = struct.unpack(">H", frame[14:16])[0]
        ip = frame[16:]
    elif linktype == 276:
        eth_type = struct.unpack(">H", frame[0:2])[0]
        ip = frame[20:]
    else:
        return b""
    if eth_type == 0x0800:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6:
            return b""
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
    elif eth_type == 0x86DD:
        if ip[6] != 6:
            return b""
        tcp = ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return b""
    return tcp[(tcp[12] >> 4) * 4:]

def save(target, blob):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, hashlib.sha1(blob).hexdigest()[:16]), "wb").write(blob)

for pcap in sorted(glob.glob("tests/golden/*.pcap")):
    for lt, frame in packets(pcap):
        payload = tcp_payload(lt, frame)
        if not payload:
            continue
        save("framing", payload)
        while len(payload) >= 19 and payload[:16] == b"\xff" * 16:
            n = struct.unpack(">H", payload[16:18])[0]
            if n < 19 or n > len(payload):
                break
            msg, payload = payload[:n], payload[n:]
            ty, body = msg[18], msg[19:]
            save("message", bytes([ty]) + body)
            save("round_trip", bytes([ty]) + body)
            if ty in TYPES:
                save(TYPES[ty], body)
