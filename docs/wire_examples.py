#!/usr/bin/python3
"""Prints the hex examples of docs/protocol.md, section 11.

Each message is packed as messages/codec.cpp encode() packs it: the array
[type, version = 1, fields], integers in their smallest form, strings as
msgpack str (Python str, use_bin_type=True: msgpack-c's str8/16/32), bools
as c2/c3, enums as their integer. Field lists follow the MSGPACK_DEFINE
order of messages/messages.hpp; keep both in step when a struct changes.

    /usr/bin/python3 docs/wire_examples.py
"""
import msgpack

VERSION = 1
CLIENT_REQUEST, CLIENT_REPLY, WATCH_REQUEST, WATCH_RESPONSE = 100, 101, 107, 108
GET, PUT, APPEND, DELETE_RANGE, RANGE, TXN = 1, 2, 3, 4, 5, 6
VALUE, VERSION_TARGET, CREATE_REVISION, MOD_REVISION = 0, 1, 2, 3
EQUAL, NOT_EQUAL, LESS, GREATER = 0, 1, 2, 3
EVENT_PUT, EVENT_DEL = 0, 1
OK = 0
CLIENT = 0x0123456789ABCDEF


# MemberResult [error, epoch, id, effective_from, config = Config [epoch, members],
# pending_from, alpha] at its defaults: what every reply but a member op's carries.
NO_MEMBER_RESULT = ["", 0, 0, 0, [0, []], 0, 0]


# The 12-field form (no MemberChange) that a client without member ops may send; the C++
# client sends the 13th field too, MemberChange at its defaults: 99 00 00 00 00 a0 a0 a0 a0 00.
def client_request(seq, ack, op, key="", value="", range_end="", limit=0, flags=0,
                   compares=(), success=(), failure=()):
    return [CLIENT, seq, ack, op, key, value, range_end, limit, flags,
            list(compares), list(success), list(failure)]


# As the node encodes it: all 12 fields, the MemberResult too.
def client_reply(seq, value="", error="", revision=0, kvs=(), more=False, count=0,
                 succeeded=False, responses=()):
    return [CLIENT, seq, OK, value, error, revision, list(kvs), more, count, succeeded,
            list(responses), NO_MEMBER_RESULT]


def key_value(key, value, create_revision, mod_revision, version):
    return [key, value, create_revision, mod_revision, version]


def compare(target, op, key, value="", number=0):
    return [target, op, key, value, number]


def request_op(op, key, value="", range_end="", limit=0, flags=0):
    return [op, key, value, range_end, limit, flags]


def op_response(op, value="", kvs=(), more=False, count=0):
    return [op, value, list(kvs), more, count]


def watch_request(watch_id, key="", range_end="", start_revision=0, cancel=False, ack=False,
                  ack_revision=0):
    return [watch_id, key, range_end, start_revision, cancel, ack, ack_revision]


def watch_response(watch_id, created=False, canceled=False, revision=0, compact_revision=0,
                   events=(), error=""):
    return [watch_id, created, canceled, revision, compact_revision, list(events), error]


def watch_event(type_, kv):
    return [type_, kv]


EXAMPLES = [
    ("Put(\"color\", \"blue\"), seq 3, ack 2",
     CLIENT_REQUEST, client_request(3, 2, PUT, "color", "blue")),
    ("its reply: ok at revision 8",
     CLIENT_REPLY, client_reply(3, revision=8)),
    ("Get(\"color\"), seq 4, ack 3: the reply",
     CLIENT_REPLY, client_reply(4, value="blue", revision=8)),
    ("range: prefix \"user/\" (range_end \"user0\"), limit 2, seq 5, ack 4",
     CLIENT_REQUEST, client_request(5, 4, RANGE, "user/", range_end="user0", limit=2)),
    ("its reply: 2 of 3 keys, more, at revision 9",
     CLIENT_REPLY, client_reply(5, revision=9, more=True, count=3, kvs=[
         key_value("user/alice", "a", 3, 7, 2),
         key_value("user/bob", "b", 5, 5, 1)])),
    ("txn: create-if-absent, version(\"lock\") = 0 ? put lock me : get lock; seq 6, ack 5",
     CLIENT_REQUEST, client_request(6, 5, TXN,
                                    compares=[compare(VERSION_TARGET, EQUAL, "lock")],
                                    success=[request_op(PUT, "lock", "me")],
                                    failure=[request_op(GET, "lock")])),
    ("its reply: succeeded, the put's response, revision 10",
     CLIENT_REPLY, client_reply(6, revision=10, succeeded=True,
                                responses=[op_response(PUT)])),
    ("delete_range: prefix \"user/\", seq 7, ack 6",
     CLIENT_REQUEST, client_request(7, 6, DELETE_RANGE, "user/", range_end="user0")),
    ("its reply: 3 keys deleted, revision 13",
     CLIENT_REPLY, client_reply(7, revision=13, count=3)),
    ("WatchRequest create: watch_id 1, key \"lock\", from revision 10",
     WATCH_REQUEST, watch_request(1, "lock", start_revision=10)),
    ("WatchResponse created (revision 9: the watch has looked at every change up to 9)",
     WATCH_RESPONSE, watch_response(1, created=True, revision=9)),
    ("WatchResponse with one put event (lock = me at revision 10)",
     WATCH_RESPONSE, watch_response(1, revision=10, events=[
         watch_event(EVENT_PUT, key_value("lock", "me", 10, 10, 1))])),
    ("WatchRequest ack of revision 10",
     WATCH_REQUEST, watch_request(1, ack=True, ack_revision=10)),
    ("WatchResponse progress (no events; nothing in range up to 13)",
     WATCH_RESPONSE, watch_response(1, revision=13)),
    ("WatchRequest cancel",
     WATCH_REQUEST, watch_request(1, cancel=True)),
]


def main():
    for title, tag, fields in EXAMPLES:
        body = msgpack.packb([tag, VERSION, fields], use_bin_type=True)
        assert msgpack.unpackb(body, raw=False) == [tag, VERSION, fields]
        print(f"# {title} ({len(body)} bytes)")
        print(body.hex(" "))
        print(f"# decoded: {[tag, VERSION, fields]}")
        print()


if __name__ == "__main__":
    main()
