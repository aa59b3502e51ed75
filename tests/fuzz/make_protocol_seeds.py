#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>: framing, frontend, backend, fields, pinning, startup_options).

Seeds are real message sequences laid out as in
https://www.postgresql.org/docs/15/protocol-message-formats.html ; rerun after changing them.
"""
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent


def i16(v):
    return struct.pack("!h", v)


def i32(v):
    return struct.pack("!i", v)


def s(text):
    return text.encode() + b"\0"


def msg(tag, body=b""):
    return tag.encode() + i32(len(body) + 4) + body


def untagged(body):
    return i32(len(body) + 4) + body


STARTUP = untagged(i32(196608) + s("user") + s("alice") + s("database") + s("db") + s("application_name") + s("psql") + b"\0")
STARTUP_32 = untagged(i32(196610) + s("user") + s("u") + s("_pq_.x") + s("1") + b"\0")
SSL = untagged(i32(80877103))
GSSENC = untagged(i32(80877104))
CANCEL = untagged(i32(80877102) + i32(4242) + i32(-12345))

SIMPLE = msg("Q", s("SELECT 1")) + msg("X")
EXTENDED = (
    msg("P", s("s1") + s("SELECT $1::int, $2") + i16(2) + i32(23) + i32(0))
    + msg("B", s("") + s("s1") + i16(1) + i16(0) + i16(2) + i32(2) + b"42" + i32(-1) + i16(1) + i16(1))
    + msg("D", b"P" + s(""))
    + msg("E", s("") + i32(0))
    + msg("C", b"S" + s("s1"))
    + msg("H")
    + msg("S")
)
COPY_IN = msg("d", b"1\tone\n") + msg("d", b"2\ttwo\n") + msg("c") + msg("f", s("aborted"))
FUNCTION = msg("F", i32(1598) + i16(1) + i16(1) + i16(1) + i32(4) + i32(5) + i16(1))
PASSWORDS = msg("p", s("md5d41d8cd98f00b204e9800998ecf8427e")) + msg("p", s("SCRAM-SHA-256") + i32(32) + b"n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvY") + msg("p", b"c=biws,r=abc,p=xyz=") + msg("p", s("SCRAM-SHA-256") + i32(-1))

AUTH = (
    msg("R", i32(10) + s("SCRAM-SHA-256-PLUS") + s("SCRAM-SHA-256") + b"\0")
    + msg("R", i32(11) + b"r=abc,s=QSXCR+Q6sek8bf92,i=4096")
    + msg("R", i32(12) + b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    + msg("R", i32(5) + b"\xde\xad\x00\xef")
    + msg("R", i32(3)) + msg("R", i32(2)) + msg("R", i32(7)) + msg("R", i32(8) + b"\x01\x02") + msg("R", i32(9))
    + msg("R", i32(0))
)
STARTUP_REPLY = (
    msg("S", s("server_version") + s("15.5"))
    + msg("S", s("client_encoding") + s("UTF8"))
    + msg("K", i32(31337) + i32(-7))
    + msg("Z", b"I")
)
QUERY_REPLY = (
    msg("T", i16(2) + s("id") + i32(16384) + i16(1) + i32(23) + i16(4) + i32(-1) + i16(0)
        + s("name") + i32(16384) + i16(2) + i32(25) + i16(-1) + i32(-1) + i16(0))
    + msg("D", i16(2) + i32(1) + b"1" + i32(-1))
    + msg("D", i16(2) + i32(1) + b"2" + i32(3) + b"two")
    + msg("C", s("SELECT 2"))
    + msg("Z", b"T")
)
EXTENDED_REPLY = (
    msg("1") + msg("t", i16(2) + i32(23) + i32(25)) + msg("n") + msg("2") + msg("s") + msg("3") + msg("I")
    + msg("V", i32(2) + b"ok") + msg("V", i32(-1)) + msg("Z", b"E")
)
ERRORS = (
    msg("E", b"S" + s("ERROR") + b"V" + s("ERROR") + b"C" + s("42P01") + b"M" + s("relation \"nope\" does not exist")
        + b"P" + s("15") + b"F" + s("parse_relation.c") + b"L" + s("1392") + b"R" + s("parserOpenTable") + b"\0")
    + msg("N", b"S" + s("NOTICE") + b"V" + s("NOTICE") + b"C" + s("00000") + b"M" + s("skipping") + b"\0")
    + msg("A", i32(4242) + s("jobs") + s("{\"id\":1}"))
    + msg("v", i32(0) + i32(2) + s("_pq_.a") + s("_pq_.b"))
)
COPY_OUT = (
    msg("G", b"\0" + i16(2) + i16(0) + i16(0)) + msg("H", b"\1" + i16(1) + i16(1)) + msg("W", b"\0" + i16(0))
    + msg("d", b"row\n") + msg("c")
)

# Bodies (no tag, no length word) for fuzz_fields, which reads each as every message it covers.
FIELD_BODIES = {
    "parse": s("s1") + s("SELECT $1::int, $2") + i16(2) + i32(23) + i32(0),
    "bind": s("") + s("s1") + i16(1) + i16(0) + i16(2) + i32(2) + b"42" + i32(-1) + i16(1) + i16(1),
    "describe_statement": b"S" + s("_pgsluice_1"),
    "parameter_status": s("TimeZone") + s("Europe/Paris"),
    "error_statement_name": b"S" + s("ERROR") + b"V" + s("ERROR") + b"C" + s("26000")
    + b"M" + s("prepared statement \"_pgsluice_1\" does not exist") + b"F" + s("prepare.c") + b"\0",
    "error_truncated": b"C" + s("42P01") + b"M" + b"relation",
}

# SQL texts for fuzz_pinning: the fast path, the lexer, literals, comments and dollar quotes.
PINNING_SQL = {
    "select": b"SELECT * FROM t WHERE id = 1;",
    "set_session": b"SET search_path TO app, public",
    "multi_statement": b"BEGIN; SET LOCAL work_mem = '64MB'; SELECT 1; DISCARD ALL",
    "quoted": b"SELECT 'SET ROLE x', \"LISTEN\" FROM t; /* PREPARE p AS */ SELECT $tag$ LISTEN y $tag$",
    "hold_cursor": b"DECLARE c CURSOR WITH HOLD FOR SELECT pg_advisory_lock(1)",
    "temp_table": b"create temporary table tt (a int); deallocate all",
}

# Startup parameters for fuzz_startup_options: NUL-separated name/value strings.
STARTUP_PARAMS = {
    "psql": s("user") + s("alice") + s("database") + s("db") + s("application_name") + s("psql") + s("client_encoding") + b"UTF8",
    "options": s("options") + s("-c search_path=app\\ x --work-mem=64MB -cstatement_timeout=5s") + s("user") + b"u",
    "quotes": s("user") + s("u") + s("DateStyle") + s("ISO'; DROP TABLE t; --\\") + s("my.setting") + b"a\\'b",
    "bad": s("options") + s("-d 5") + s("replication") + s("database") + s("1bad") + b"x",
}

SEEDS = {
    "framing": {
        "startup": STARTUP,
        "startup_3_2": STARTUP_32,
        "ssl": SSL,
        "gssenc": GSSENC,
        "cancel": CANCEL,
        "simple": b"\0" + SIMPLE,
        "extended_small_limit": b"\x02" + EXTENDED,
        "oversized": b"\x01" + msg("Q", s("x" * 100)),
        "negative_length": b"\0" + b"Q\xff\xff\xff\xff",
        "protocol_2_0": untagged(i32(131072) + s("user") + s("u") + b"\0"),
    },
    "frontend": {
        "startup_then_simple": b"\x01" + STARTUP + SIMPLE,
        "startup_3_2": b"\x01" + STARTUP_32,
        "ssl": b"\x01" + SSL,
        "gssenc": b"\x01" + GSSENC,
        "cancel": b"\x01" + CANCEL,
        "extended": b"\0" + EXTENDED,
        "copy_in": b"\0" + COPY_IN,
        "function_call": b"\0" + FUNCTION,
        "passwords": b"\0" + PASSWORDS,
    },
    "backend": {
        "auth": AUTH,
        "startup_reply": STARTUP_REPLY,
        "query_reply": QUERY_REPLY,
        "extended_reply": EXTENDED_REPLY,
        "errors_notices": ERRORS,
        "copy_out": COPY_OUT,
    },
    "fields": FIELD_BODIES,
    "pinning": PINNING_SQL,
    "startup_options": STARTUP_PARAMS,
}


def main():
    for target, seeds in SEEDS.items():
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (out / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
