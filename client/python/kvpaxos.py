"""kvpaxos: a Python client of the kvpaxos replicated key/value store.

Written from docs/protocol.md alone (checked against client/client.cpp where the
page left something open). Needs only Debian's ``python3-zmq`` and
``python3-msgpack`` and the standard library::

    apt-get install python3-zmq python3-msgpack

Usage (run with ``/usr/bin/python3``, the interpreter those packages are for)::

    import kvpaxos

    with kvpaxos.Client(["127.0.0.1:7201", "127.0.0.1:7202", "127.0.0.1:7203"],
                        server_key="keys/client-port/cluster.key",
                        key="keys/admin.key_secret") as c:
        rev = c.put("color", "blue")            # -> the revision of the put
        c.append("color", b"\\x00green")         # keys and values: str or bytes
        assert c.get("color") == b"blue\\x00green"  # values come back as bytes
        print(c.last_revision)                  # the revision that get read at
        r = c.get_prefix("user/", limit=10)     # RangeResult(kvs, more, count, revision)
        for kv in r.kvs:
            print(kv.key, kv.value, kv.mod_revision)
        c.delete_prefix("user/")                # DeleteResult(deleted, revision)
        t = c.transaction(compare=[kvpaxos.Version("lock") == 0],
                          success=[kvpaxos.Put("lock", "me")],
                          failure=[kvpaxos.Get("lock")])
        print(t.succeeded, t.responses)

Keys and values are arbitrary bytes. Every method accepts ``str`` (encoded as
UTF-8), ``bytes``, ``bytearray`` or ``memoryview`` and returns ``bytes``.

Revisions (docs/protocol.md, section 6): ``put`` and ``append`` return the
store's revision just after the write; the result tuples of ``get_range``,
``delete*`` and ``transaction`` carry it as ``.revision``; ``get`` returns the
value alone, and every call leaves the revision of its reply in
``Client.last_revision`` (``None`` when the reply did not say, see below).

Outcomes. A call returns when the cluster executed it exactly once. Otherwise:

- ``OutcomeUnknown``: no node answered before the deadline (``timeout``), or the
  node said ``session_expired``. The operation may or may not have taken effect,
  possibly later. Never assume it failed; read to find out. Its subclass
  ``ReplyLost`` means it did run, exactly once, but its reply (a delete's count,
  a transaction's branch) was released before it arrived.
- ``Refused``: a node answered that the request is wrong (``ErrorReply``, e.g.
  ``bad_request`` for a key over 65,536 bytes), or refused the CURVE handshake,
  or the frame is too large to send. The operation did not run; retrying it
  unchanged fails again.
- ``Unavailable``: the operation was never sent (opening the session failed,
  or ``status`` got no answer). It did not take effect.

All three derive from ``KvpaxosError``. Retries and fail-over follow section 8
of docs/protocol.md: one encoding per operation (same client id, seq and ack on
every copy), 250 ms per attempt growing x1.5 to 1 s, round robin over the
endpoints on a fresh DEALER each time, until the call's deadline.

A ``Client`` is not thread-safe (one request outstanding per client id): use
one per thread.
"""

import collections
import os
import threading
import time

try:
    import msgpack
    import zmq
    import zmq.utils.monitor
    import zmq.utils.z85
except ImportError as _missing:  # pragma: no cover - depends on the host
    raise ImportError(
        "kvpaxos needs pyzmq and msgpack (%s): apt-get install python3-zmq python3-msgpack, "
        "and run with /usr/bin/python3 (the interpreter Debian's packages are for)" % _missing
    ) from _missing

__all__ = [
    "Client", "KvpaxosError", "OutcomeUnknown", "ReplyLost", "Refused", "Unavailable",
    "KeyValue", "RangeResult", "DeleteResult", "TxnResult", "OpResponse",
    "Compare", "Value", "Version", "CreateRevision", "ModRevision",
    "Get", "Put", "Append", "Delete", "Range", "prefix_end",
]

# --- the wire (docs/protocol.md, sections 2 and 3) ------------------------------------

PROTOCOL_VERSION = 1

CLIENT_REQUEST, CLIENT_REPLY, STATUS_REQUEST, STATUS_REPLY = 100, 101, 102, 103
FAULT_REQUEST, FAULT_REPLY, ERROR_REPLY, WATCH_REQUEST, WATCH_RESPONSE = 104, 105, 106, 107, 108

OP_GET, OP_PUT, OP_APPEND, OP_DELETE_RANGE, OP_RANGE, OP_TXN, OP_MEMBER = 1, 2, 3, 4, 5, 6, 7
_OP_NAMES = {OP_GET: "get", OP_PUT: "put", OP_APPEND: "append", OP_DELETE_RANGE: "delete",
             OP_RANGE: "range read", OP_TXN: "transaction", OP_MEMBER: "member change"}

OK, BAD_REQUEST, UNSUPPORTED_VERSION, STALE_REQUEST = 0, 1, 2, 3
FAULT_INJECTION_DISABLED, UNKNOWN_NODE, SHUTTING_DOWN, OVERLOADED, SESSION_EXPIRED = 4, 5, 6, 7, 8
CODE_NAMES = {OK: "ok", BAD_REQUEST: "bad_request", UNSUPPORTED_VERSION: "unsupported_version",
              STALE_REQUEST: "stale_request", FAULT_INJECTION_DISABLED: "fault_injection_disabled",
              UNKNOWN_NODE: "unknown_node", SHUTTING_DOWN: "shutting_down",
              OVERLOADED: "overloaded", SESSION_EXPIRED: "session_expired"}

TARGET_VALUE, TARGET_VERSION, TARGET_CREATE_REVISION, TARGET_MOD_REVISION = 0, 1, 2, 3
CMP_EQUAL, CMP_NOT_EQUAL, CMP_LESS, CMP_GREATER = 0, 1, 2, 3
RANGE_KEYS_ONLY, RANGE_COUNT_ONLY = 1, 2

MAX_KEY_BYTES = 65536
MAX_VALUE_BYTES = 16777216
MAX_CLIENT_FRAME_BYTES = MAX_VALUE_BYTES + MAX_KEY_BYTES + 4096  # 16,846,848
MAX_REPLY_MESSAGE_VALUES = 262144

FIRST_ATTEMPT_TIMEOUT = 0.25   # section 8: 250 ms, x1.5 after each failed attempt ...
MAX_ATTEMPT_TIMEOUT = 1.0      # ... capped at 1 s
FIRST_OVERLOAD_BACKOFF = 0.02  # section 10: 20 ms doubling to 1 s

STATUS_FIELDS = ("name", "node", "applied_below", "forget_below", "decided_below", "keys",
                 "sessions", "fault_injection", "snapshot_below", "snapshot_bytes",
                 "data_dir_bytes", "revision", "watches", "watch_history_from", "leader",
                 "epoch")


def _pack(tag, fields):
    # use_bin_type=False packs bytes as msgpack str (fixstr/str16/str32), the family
    # the node itself sends; the node accepts str or bin (section 2).
    return msgpack.packb([tag, PROTOCOL_VERSION, fields], use_bin_type=False)


def _unpack(frame):
    """The (tag, fields) of a reply body, or None when it is not one we can read."""
    try:
        body = msgpack.unpackb(frame, raw=True, use_list=True,
                               max_array_len=MAX_REPLY_MESSAGE_VALUES, max_map_len=0,
                               max_ext_len=0, max_str_len=len(frame), max_bin_len=len(frame))
    except Exception:  # undecodable: the caller keeps waiting (section 8)
        return None
    if (not isinstance(body, list) or len(body) != 3 or not isinstance(body[0], int)
            or isinstance(body[0], bool) or not isinstance(body[2], list)):
        return None
    return body[0], body[2]


def _pad(fields, defaults):
    """Missing trailing fields take their defaults (an older node); extra ones are ignored."""
    return list(fields[:len(defaults)]) + list(defaults[len(fields):])


def _bytes(x, what="key"):
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise TypeError("%s must be str or bytes, not %s" % (what, type(x).__name__))


def prefix_end(prefix):
    """The range_end that makes [prefix, prefix_end(prefix)) the keys with that prefix.

    The prefix with its last byte below 0xff incremented and what follows cut
    (b"user/" -> b"user0", b"a\\xff" -> b"b"), or b"\\0" (every key from the start
    on) when the prefix is empty or all 0xff (docs/protocol.md, section 6).
    """
    p = bytearray(_bytes(prefix, "prefix"))
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return b"\0"
    p[-1] += 1
    return bytes(p)


# --- results ------------------------------------------------------------------------

KeyValue = collections.namedtuple(
    "KeyValue", "key value create_revision mod_revision version")
KeyValue.__doc__ = """One key of a range read: bytes key and value (b"" with keys_only), the
revision that created it, that of its last change, and its number of writes (1 on creation)."""

RangeResult = collections.namedtuple("RangeResult", "kvs more count revision")
RangeResult.__doc__ = """A range read: kvs (list of KeyValue, in byte order), more (keys in
range that are not in kvs), count (every key in range, whatever the limit) and the revision
it read at."""

DeleteResult = collections.namedtuple("DeleteResult", "deleted revision")
DeleteResult.__doc__ = """A delete: how many keys it deleted, and the store's revision after it
(each deleted key is one revision)."""

OpResponse = collections.namedtuple("OpResponse", "op value kvs more count")
OpResponse.__doc__ = """One op of a transaction's branch: op (the OpKind number), value (get),
kvs/more/count (range; count also for a delete)."""

TxnResult = collections.namedtuple("TxnResult", "succeeded responses revision")
TxnResult.__doc__ = """A transaction: succeeded (every compare held, so `success` ran), one
OpResponse per op of the branch that ran, and the store's revision after it."""


def _key_value(f):
    key, value, create, mod, version = _pad(f, [b"", b"", 0, 0, 0])
    return KeyValue(key, value, create, mod, version)


def _op_response(f):
    op, value, kvs, more, count = _pad(f, [0, b"", [], False, 0])
    return OpResponse(op, value, [_key_value(kv) for kv in kvs], more, count)


# --- transactions: compares and ops, in the style of python-etcd3 ----------------------

class Compare(object):
    """One condition of a transaction: `target(key) op operand` (docs/protocol.md, Compare).

    Build it with the comparison operators of Value, Version, CreateRevision or
    ModRevision: ``Version("lock") == 0`` (absent), ``Value("k") != b"v"``,
    ``ModRevision("k") < 42``.
    """

    def __init__(self, target, op, key, value=b"", number=0):
        self.target, self.op, self.key = target, op, _bytes(key)
        self.value, self.number = _bytes(value, "value"), int(number)

    def _fields(self):
        return [self.target, self.op, self.key, self.value, self.number]

    def __repr__(self):
        return "Compare(%r, %r, %r, %r, %r)" % (self.target, self.op, self.key, self.value,
                                                self.number)


class _Target(object):
    _target = None

    def __init__(self, key):
        self.key = _bytes(key)

    def _compare(self, op, operand):
        if self._target == TARGET_VALUE:
            return Compare(self._target, op, self.key, value=_bytes(operand, "value"))
        if not isinstance(operand, int) or operand < 0:
            raise TypeError("compare a %s with a non-negative int" % type(self).__name__)
        return Compare(self._target, op, self.key, number=operand)

    def __eq__(self, other):
        return self._compare(CMP_EQUAL, other)

    def __ne__(self, other):
        return self._compare(CMP_NOT_EQUAL, other)

    def __lt__(self, other):
        return self._compare(CMP_LESS, other)

    def __gt__(self, other):
        return self._compare(CMP_GREATER, other)

    __hash__ = None


class Value(_Target):
    """A key's value, compared bytewise: ``Value("k") == "v"`` (an absent key's value is b"")."""
    _target = TARGET_VALUE


class Version(_Target):
    """A key's number of writes: ``Version("k") == 0`` is "k does not exist"."""
    _target = TARGET_VERSION


class CreateRevision(_Target):
    """The revision that created a key (0 when absent)."""
    _target = TARGET_CREATE_REVISION


class ModRevision(_Target):
    """The revision of a key's last change (0 when absent)."""
    _target = TARGET_MOD_REVISION


class _RequestOp(object):
    def __init__(self, op, key, value=b"", range_end=b"", limit=0, flags=0):
        self._f = [op, _bytes(key), _bytes(value, "value"), _bytes(range_end, "range_end"),
                   int(limit), int(flags)]

    def _fields(self):
        return list(self._f)

    def __repr__(self):
        return "%s%r" % (type(self).__name__, tuple(self._f[1:]))


class Get(_RequestOp):
    """A transaction op: read key (its OpResponse.value)."""

    def __init__(self, key):
        _RequestOp.__init__(self, OP_GET, key)


class Put(_RequestOp):
    """A transaction op: set key to value."""

    def __init__(self, key, value):
        _RequestOp.__init__(self, OP_PUT, key, value)


class Append(_RequestOp):
    """A transaction op: append value to key (a put when the key is absent)."""

    def __init__(self, key, value):
        _RequestOp.__init__(self, OP_APPEND, key, value)


class Delete(_RequestOp):
    """A transaction op: delete key, [key, range_end), or with prefix=True every key
    with the prefix `key` (its OpResponse.count: how many)."""

    def __init__(self, key, range_end=b"", prefix=False):
        _RequestOp.__init__(self, OP_DELETE_RANGE, key,
                            range_end=prefix_end(key) if prefix else range_end)


class Range(_RequestOp):
    """A transaction op: read [key, range_end) (b"": key alone; prefix=True: every key
    with the prefix `key`), at most limit keys (0: no limit)."""

    def __init__(self, key, range_end=b"", limit=0, keys_only=False, count_only=False,
                 prefix=False):
        _RequestOp.__init__(self, OP_RANGE, key,
                            range_end=prefix_end(key) if prefix else range_end, limit=limit,
                            flags=_range_flags(keys_only, count_only))


def _range_flags(keys_only, count_only):
    return (RANGE_KEYS_ONLY if keys_only else 0) | (RANGE_COUNT_ONLY if count_only else 0)


class _Transactions(object):
    """``client.transactions``: the compare and op builders, as python-etcd3 spells them."""
    value, version = staticmethod(Value), staticmethod(Version)
    create, mod = staticmethod(CreateRevision), staticmethod(ModRevision)
    get, put, append = staticmethod(Get), staticmethod(Put), staticmethod(Append)
    delete, range = staticmethod(Delete), staticmethod(Range)


# --- errors -------------------------------------------------------------------------

class KvpaxosError(Exception):
    """Base of every error this module raises for an operation."""


class OutcomeUnknown(KvpaxosError):
    """The operation may or may not have taken effect (possibly later): no node answered
    before the deadline, or the node answered session_expired. Read to find out; do not
    assume it failed. `op` names the operation."""

    def __init__(self, message, op=None):
        KvpaxosError.__init__(self, message)
        self.op = op


class ReplyLost(OutcomeUnknown):
    """The operation ran exactly once, but the node released its reply (a delete's count,
    a transaction's branch) before it reached this client (stale_request, section 5)."""


class Refused(KvpaxosError):
    """A node refused the request, which did not run: an ErrorReply (`code`, `code_name`,
    the node's text in `error`), a refused CURVE handshake (code None), or a frame over the
    limit this client would not send. Fix the request; retrying it unchanged fails again."""

    def __init__(self, message, code=None, error="", endpoint=None):
        KvpaxosError.__init__(self, message)
        self.code, self.error, self.endpoint = code, error, endpoint
        self.code_name = CODE_NAMES.get(code) if code is not None else None


class Unavailable(KvpaxosError):
    """The operation was not sent, so it did not take effect: the session could not be
    opened (no node answered), or a status request got no answer."""


# --- CURVE keys (docs/security.md, "Key files") ----------------------------------------

def _valid_z85_key(text):
    if len(text) != 40:
        return False
    try:
        return len(zmq.utils.z85.decode(text)) == 32
    except Exception:
        return False


def _parse_key_file(path, need_secret):
    """(public, secret) Z85 bytes from a ZeroMQ certificate file (kvctl keygen, pyzmq)."""
    try:
        with open(path, "rb") as f:
            text = f.read(64 * 1024 + 1)
    except OSError as e:
        raise ValueError("cannot read key file %s: %s" % (path, e.strerror or e))
    if len(text) > 64 * 1024:
        raise ValueError("%s is too large for a key file" % path)
    found = {}
    for line in text.decode("latin-1").split("\n"):
        line = line.strip(" \t\r")
        if line.startswith("#"):
            continue  # a comment; a key may hold '#', but not at the start of its line
        for name in ("public-key", "secret-key"):
            if line.startswith(name):
                rest = line[len(name):].strip(" \t")
                if rest.startswith("="):
                    rest = rest[1:].strip(" \t")
                    if len(rest) >= 2 and rest[0] in "\"'" and rest[-1] == rest[0]:
                        rest = rest[1:-1]
                    found[name] = rest
    public, secret = found.get("public-key"), found.get("secret-key")
    if not public:
        raise ValueError("%s holds no public-key; is it a CURVE key file (kvctl keygen NAME)?"
                         % path)
    if not _valid_z85_key(public):
        raise ValueError("%s: public-key is not a 40-character Z85 CURVE key" % path)
    if not need_secret:
        return public.encode("ascii"), None
    if not secret:
        raise ValueError("%s holds no secret-key; give the NAME.key_secret file, not NAME.key"
                         % path)
    if not _valid_z85_key(secret):
        raise ValueError("%s: secret-key is not a 40-character Z85 CURVE key" % path)
    if zmq.curve_public(secret.encode("ascii")) != public.encode("ascii"):
        raise ValueError("%s: public-key does not belong to its secret-key (a damaged or edited "
                         "file); generate a new pair with kvctl keygen" % path)
    return public.encode("ascii"), secret.encode("ascii")


def _server_keys(server_key):
    """The cluster's client public keys (Z85 bytes), tried in order (key rotation)."""
    if isinstance(server_key, bytes):
        server_key = server_key.decode("ascii")
    items = server_key.split(",") if isinstance(server_key, str) else list(server_key)
    keys = []
    for item in items:
        if isinstance(item, bytes):
            item = item.decode("ascii")
        if _valid_z85_key(item) and not os.path.exists(item):
            keys.append(item.encode("ascii"))
        else:
            keys.append(_parse_key_file(item, need_secret=False)[0])
    if not keys:
        raise ValueError("server_key names no key")
    return keys


def _own_key(key):
    """This client's (public, secret) pair: a .key_secret file, a (public, secret) pair, or
    None for a fresh ephemeral pair (accepted by nodes started without --client-keys)."""
    if key is None:
        return zmq.curve_keypair()
    if isinstance(key, (tuple, list)):
        public, secret = (_bytes(k, "key") for k in key)
        if not (_valid_z85_key(public.decode("latin-1")) and _valid_z85_key(secret.decode("latin-1"))):
            raise ValueError("key pair must be two 40-character Z85 CURVE keys")
        if zmq.curve_public(secret) != public:
            raise ValueError("the public key of the key pair does not belong to its secret key")
        return public, secret
    return _parse_key_file(key, need_secret=True)


# --- one DEALER to one node -------------------------------------------------------------

_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                     | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


class _Connection(object):
    """A DEALER connected to one node, with a socket monitor until the handshake is done, so
    that a node refusing the handshake is an error that says so at once, not a timeout."""

    def __init__(self, ctx, endpoint, curve, server_key, ephemeral):
        self.endpoint = endpoint
        self._keyed, self._ephemeral = curve is not None, ephemeral
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_CLIENT_FRAME_BYTES)
        if curve is not None:
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve[0])
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve[1])
        self._monitor = self.sock.get_monitor_socket(_HANDSHAKE_EVENTS)
        self.handshake_done = False
        self.key_refused = False
        try:
            self.sock.connect("tcp://" + endpoint)
        except zmq.ZMQError as e:
            self.close()
            raise Refused("cannot connect to '%s': %s (expected HOST:PORT)" % (endpoint, e),
                          endpoint=endpoint)

    def close(self):
        if self._monitor is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        self.sock.close(linger=0)

    def send(self, frame):
        """Queues one frame (the body, no delimiter); False if the queue is full."""
        try:
            self.sock.send(frame, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _handshake_error(self, event, value):
        ep = self.endpoint
        if not self._keyed:
            return ("the node at %s requires CURVE keys: give server_key (the cluster's client "
                    "public key, the .key of the nodes' --client-key) and key (this client's "
                    ".key_secret)" % ep)
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.key_refused = True
            hint = (" (this client has an ephemeral key: give key=, a .key_secret whose .key "
                    "is there)" if self._ephemeral else "")
            return ("the node at %s refused our key (ZAP status %d): is this client's public "
                    "key among the node's --client-keys?%s" % (ep, value, hint))
        if value == getattr(zmq, "PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH", -1):
            return ("the node at %s does not use CURVE (it runs without keys); leave out "
                    "server_key and key" % ep)
        detail = ("protocol error" if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                  else "no detail")
        # libzmq mostly reports a node without keys as "no detail" too (a race in how it
        # closes), so that case is named here as well.
        return ("the CURVE handshake with %s failed (%s): is server_key the public key of "
                "the nodes' --client-key (and does the node run with keys at all)?"
                % (ep, detail))

    def receive(self, end):
        """Waits until monotonic time `end` for one frame. Returns the frame (bytes), None
        on timeout, or a str: why the node refused the handshake (nothing was delivered)."""
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ms = max(1, int(left * 1000 + 0.999))
            if self.handshake_done:
                if not self.sock.poll(ms, zmq.POLLIN):
                    return None
                return self.sock.recv_multipart()[0]  # further frames are not ours
            poller = zmq.Poller()
            poller.register(self.sock, zmq.POLLIN)
            poller.register(self._monitor, zmq.POLLIN)
            ready = dict(poller.poll(ms))
            if self._monitor in ready:
                ev = zmq.utils.monitor.recv_monitor_message(self._monitor)
                if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self.handshake_done = True
                    # Nobody reads the monitor from now on: stop it (client/client.cpp).
                    self.sock.disable_monitor()
                    self._monitor.close(linger=0)
                    self._monitor = None
                else:
                    return self._handshake_error(ev["event"], ev["value"])
            if self.sock in ready:
                return self.sock.recv_multipart()[0]


def _host_port(endpoint):
    endpoint = endpoint.strip()
    if endpoint.startswith("tcp://"):
        endpoint = endpoint[len("tcp://"):]
    if "://" in endpoint or ":" not in endpoint:
        raise ValueError("endpoint %r: expected HOST:PORT or tcp://HOST:PORT" % endpoint)
    return endpoint


def _new_client_id():
    # Uniform in [1, 2^64 - 1] (section 5).
    while True:
        cid = int.from_bytes(os.urandom(8), "big")
        if cid:
            return cid


class _ReadAgain(Exception):
    """stale_request for a read: it ran, its reply is gone; issue it again with a new seq."""


# --- the client -------------------------------------------------------------------------

class Client(object):
    """A client of a kvpaxos cluster.

    endpoints: the nodes' client addresses, a list of "HOST:PORT" or "tcp://HOST:PORT"
      (or one comma-separated str). Requests go to one at a time and fail over round robin.
    timeout: the overall deadline of one call, in seconds (kvctl --timeout, 5 s by default);
      after it the outcome is unknown (OutcomeUnknown).
    server_key: CURVE on (docs/security.md): the cluster's client public key, as its Z85
      text or the path of its .key file (the public half of the nodes' --client-key). A list
      (or a comma-separated str) while the key is being rotated: a node that presents another
      key is tried with the next.
    key: this client's own pair, the path of a .key_secret file (kvctl keygen) or a
      (public, secret) pair of Z85 keys; None with a server_key draws an ephemeral pair,
      which only nodes started without --client-keys accept.
    Without server_key the link is plain ZMTP (loopback or --insecure clusters).

    Use it as a context manager, or call close(). Not thread-safe: one per thread.
    """

    transactions = _Transactions()

    def __init__(self, endpoints, timeout=5.0, server_key=None, key=None):
        if isinstance(endpoints, (str, bytes)):
            endpoints = (endpoints.decode() if isinstance(endpoints, bytes) else endpoints).split(",")
        self._endpoints = [_host_port(e) for e in endpoints if e.strip()]
        if not self._endpoints:
            raise ValueError("no endpoints given")
        self.timeout = float(timeout)
        if not self.timeout > 0:
            raise ValueError("timeout must be above 0 seconds")
        if server_key is None and key is not None:
            raise ValueError("key given without server_key: CURVE needs the cluster's client "
                             "public key too")
        self._server_keys = _server_keys(server_key) if server_key is not None else None
        self._curve = _own_key(key) if server_key is not None else None
        self._ephemeral = server_key is not None and key is None
        self._ctx = zmq.Context()
        self._conn = None
        self._current = 0      # index of the endpoint tried first
        self._server_key = 0   # index of the server key that last worked
        self._lock = threading.Lock()
        self._new_session()
        #: The revision of the last reply (the store's revision after a write, the one a
        #: read read at), or None when the last reply did not carry one.
        self.last_revision = None

    # -- lifecycle

    def close(self):
        """Closes the sockets. The client cannot be used afterwards."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def endpoints(self):
        """The endpoints, as HOST:PORT, in the order they are tried."""
        return list(self._endpoints)

    @property
    def current_endpoint(self):
        """The endpoint (HOST:PORT) the next request goes to first: the one that last answered."""
        return self._endpoints[self._current]

    @property
    def client_id(self):
        """This client's current id (a new one after session_expired)."""
        return self._id

    # -- key/value operations

    def get(self, key):
        """The value of key (bytes), b"" when the key is absent (get_kv tells absent from
        empty). The revision it read at is left in last_revision."""
        return self._call(OP_GET, key=key)[3]

    def put(self, key, value):
        """Sets key to value. Returns the store's revision after the put (None in the rare
        case the reply was released before it arrived; the put took effect once all the same)."""
        return self._call(OP_PUT, key=key, value=value)[5]

    def append(self, key, value):
        """Appends value to key's value (a put when the key is absent). Returns the revision
        as put does."""
        return self._call(OP_APPEND, key=key, value=value)[5]

    def get_kv(self, key):
        """The KeyValue of key (with its revisions and version), or None when it is absent."""
        r = self.get_range(key)
        return r.kvs[0] if r.kvs else None

    def get_range(self, key, range_end=b"", limit=0, keys_only=False, count_only=False):
        """The keys in [key, range_end), in byte order: a RangeResult(kvs, more, count,
        revision). range_end b"" reads key alone; b"\\0" every key from key on. At most
        `limit` keys (0: no limit; the node also stops at 32,768 keys or 16 MiB, setting
        more); count is every key in range. keys_only leaves the values b""; count_only
        returns count alone. To read on after more, call again from kvs[-1].key + b"\\0"
        (each page is its own read at its own revision), or use iter_range."""
        f = self._call(OP_RANGE, key=key, range_end=range_end, limit=limit,
                       flags=_range_flags(keys_only, count_only))
        return RangeResult([_key_value(kv) for kv in f[6]], f[7], f[8], f[5])

    def get_prefix(self, prefix, limit=0, keys_only=False, count_only=False):
        """The keys that start with prefix (see get_range)."""
        return self.get_range(prefix, prefix_end(prefix), limit, keys_only, count_only)

    def get_all(self, limit=0, keys_only=False, count_only=False):
        """Every key (see get_range)."""
        return self.get_range(b"", b"\0", limit, keys_only, count_only)

    def iter_range(self, key, range_end=b"", page=1000, keys_only=False):
        """Yields the KeyValues of [key, range_end) page by page (each page one read)."""
        key = _bytes(key)
        while True:
            r = self.get_range(key, range_end, limit=page, keys_only=keys_only)
            for kv in r.kvs:
                yield kv
            if not r.more or not r.kvs:
                return
            key = r.kvs[-1].key + b"\0"

    def iter_prefix(self, prefix, page=1000, keys_only=False):
        """Yields the KeyValues of the keys with prefix, page by page."""
        return self.iter_range(prefix, prefix_end(prefix), page, keys_only)

    def delete(self, key):
        """Deletes key. Returns DeleteResult(deleted, revision): deleted is 1, or 0 when the
        key was absent (not an error)."""
        return self.delete_range(key)

    def delete_range(self, key, range_end=b""):
        """Deletes the keys in [key, range_end) (b"": key alone; b"\\0": every key from key
        on). Returns DeleteResult(deleted, revision)."""
        f = self._call(OP_DELETE_RANGE, key=key, range_end=range_end)
        return DeleteResult(f[8], f[5])

    def delete_prefix(self, prefix):
        """Deletes every key that starts with prefix. Returns DeleteResult(deleted, revision)."""
        return self.delete_range(prefix, prefix_end(prefix))

    def transaction(self, compare, success=(), failure=()):
        """If every Compare in `compare` holds (an empty list holds), runs the `success` ops,
        otherwise the `failure` ops (Get, Put, Append, Delete, Range), atomically and exactly
        once. Returns TxnResult(succeeded, responses, revision): one OpResponse per op of the
        branch that ran. At most 128 compares and 128 ops per branch."""
        compares = [c._fields() for c in compare]
        for ops in (success, failure):
            for o in ops:
                if not isinstance(o, _RequestOp):
                    raise TypeError("transaction ops are Get, Put, Append, Delete or Range, "
                                    "not %s" % type(o).__name__)
        f = self._call(OP_TXN, compares=compares, success=[o._fields() for o in success],
                       failure=[o._fields() for o in failure])
        return TxnResult(f[9], [_op_response(r) for r in f[10]], f[5])

    txn = transaction

    # -- status

    def status(self, endpoint=None, timeout=None):
        """One node's own view, outside the log (docs/protocol.md, section 9): a dict of the
        StatusReply fields (name, node, applied_below, forget_below, decided_below, keys,
        sessions, fault_injection, snapshot_below, snapshot_bytes, data_dir_bytes, revision,
        watches, watch_history_from, leader, epoch; missing ones read 0) plus "endpoint".
        endpoint: HOST:PORT (default: the endpoint this client talks to). One attempt with the
        whole timeout, no fail-over; raises Unavailable when the node does not answer."""
        endpoint = _host_port(endpoint) if endpoint is not None else self._endpoints[self._current]
        timeout = self.timeout if timeout is None else float(timeout)
        frame = _pack(STATUS_REQUEST, [])
        with self._lock:
            self._check_open()
            nkeys = len(self._server_keys) if self._server_keys else 1
            got = None
            for i in range(nkeys):
                index = (self._server_key + i) % nkeys
                conn = self._connect(endpoint, index)
                try:
                    conn.send(frame)
                    got = conn.receive(time.monotonic() + timeout)
                    refused_key = conn.key_refused
                finally:
                    conn.close()
                if not isinstance(got, str) or refused_key:
                    break
            if isinstance(got, str):
                raise Refused(got + "; the status request was not delivered", endpoint=endpoint)
            if got is None:
                raise Unavailable("no reply from %s within %ss; is kvpaxosd running there?"
                                  % (endpoint, _secs(timeout)))
            body = _unpack(got)
            if body is None:
                raise Refused("undecodable reply from %s to a status request" % endpoint,
                              endpoint=endpoint)
            tag, f = body
            if tag == ERROR_REPLY:
                code, text = _pad(f, [BAD_REQUEST, b""])
                raise Refused("%s refused the status request (%s): %s"
                              % (endpoint, CODE_NAMES.get(code, code), _text(text)),
                              code=code, error=_text(text), endpoint=endpoint)
            if tag != STATUS_REPLY:
                raise Refused("unexpected reply (type %s) from %s to a status request"
                              % (tag, endpoint), endpoint=endpoint)
            values = _pad(f, [b""] + [0] * (len(STATUS_FIELDS) - 1))
            out = dict(zip(STATUS_FIELDS, values))
            out["name"] = _text(out["name"])
            out["fault_injection"] = bool(out["fault_injection"])
            out["endpoint"] = endpoint
            return out

    # -- the machinery (docs/protocol.md, sections 5 and 8)

    def _check_open(self):
        if self._ctx is None:
            raise ValueError("the client is closed")

    def _new_session(self):
        self._id = _new_client_id()
        self._seq = 1           # the next seq to assign
        self._ack = 0           # highest seq whose ClientReply arrived
        self._session_open = False  # a reply arrived under this id (its seq 1 ran)
        # The frame of a seq 1 that got no answer: it may have run, so it goes out again,
        # the same bytes, before anything else (never both set with _session_open).
        self._unanswered_opening = None

    def _connect(self, endpoint, server_key_index):
        key = self._server_keys[server_key_index] if self._server_keys else None
        return _Connection(self._ctx, endpoint, self._curve, key, self._ephemeral)

    def _drop_connection(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _call(self, op, key=b"", value=b"", range_end=b"", limit=0, flags=0, compares=(),
              success=(), failure=()):
        """Runs one op; returns the ClientReply's fields (padded to 11)."""
        fields = [op, _bytes(key), _bytes(value, "value"), _bytes(range_end, "range_end"),
                  int(limit), int(flags), list(compares), list(success), list(failure)]
        what = _OP_NAMES[op]
        with self._lock:
            self._check_open()
            end = time.monotonic() + self.timeout
            # An id whose seq 1 was refused (it ran nowhere) has no session: the node would
            # answer its seq 2 session_expired. One whose seq 1 got no answer keeps it.
            if self._seq > 1 and not self._session_open and self._unanswered_opening is None:
                self._new_session()
            if not self._session_open and (self._unanswered_opening is not None
                                           or op != OP_GET):
                self._open_session(what, end)
            while True:
                try:
                    return self._send(fields, what, end)
                except _ReadAgain:
                    # A read that ran but whose reply is gone: read again, with a new seq.
                    if time.monotonic() >= end:
                        raise OutcomeUnknown(
                            "the %s ran but its reply was released before it arrived, and "
                            "the %ss deadline passed; read again" % (what, _secs(self.timeout)),
                            op=what)

    def _open_session(self, what, end):
        """Sends seq 1, a get: the unanswered one again, else a get of b"". A late copy of
        seq 1 runs again once the session is evicted, harmless for a get (section 8)."""
        opening = "%s (its session's opening get)" % what
        try:
            if self._unanswered_opening is not None:
                self._transmit(OP_GET, 1, self._unanswered_opening, opening, end)
            else:
                self._send([OP_GET, b"", b"", b"", 0, 0, [], [], []], opening, end)
        except _ReadAgain:
            pass  # the get ran: the session is open
        except OutcomeUnknown:
            raise Unavailable(
                "no answer from %s within %ss to the get that opens this client's "
                "session, so the %s was not sent: it did not take effect; is the "
                "cluster running, and can a majority of its nodes reach each other?"
                % (",".join(self._endpoints), _secs(self.timeout), what))

    def _send(self, op_fields, what, end):
        seq = self._seq
        self._seq += 1  # one seq per operation, assigned before the first send
        frame = _pack(CLIENT_REQUEST, [self._id, seq, self._ack] + op_fields)
        return self._transmit(op_fields[0], seq, frame, what, end)

    def _transmit(self, op, seq, frame, what, end):
        """Sends the copies of one request until its reply or the deadline."""
        session = self._id
        try:
            return self._deliver(op, seq, frame, what, end)
        except OutcomeUnknown:
            if seq == 1 and self._id == session and not self._session_open:
                self._unanswered_opening = frame  # it may have run: exactly once, same bytes
            raise

    def _deliver(self, op, seq, frame, what, end):
        if len(frame) > MAX_CLIENT_FRAME_BYTES:
            raise Refused("the %s is %d bytes encoded, over the %d-byte frame limit "
                          "(docs/protocol.md, section 3); it was not sent"
                          % (what, len(frame), MAX_CLIENT_FRAME_BYTES))
        attempt = FIRST_ATTEMPT_TIMEOUT
        overload = FIRST_OVERLOAD_BACKOFF
        n = len(self._endpoints)
        refusals = {}            # endpoint index -> why its handshake was refused
        maybe_delivered = False  # some copy may have reached a node
        unreadable = None
        nkeys = len(self._server_keys) if self._server_keys else 1
        keys_tried = 0
        while time.monotonic() < end:
            now = time.monotonic()
            endpoint = self._endpoints[self._current]
            if self._conn is None:
                self._conn = self._connect(endpoint, self._server_key)
            self._conn.send(frame)
            attempt_end = min(end, now + attempt)
            resend_here = refused = other_key = False
            while True:
                got = self._conn.receive(attempt_end)
                if got is None:
                    break
                if isinstance(got, str):  # the handshake was refused: nothing was delivered
                    other_key = not self._conn.key_refused and keys_tried < nkeys - 1
                    if not other_key:
                        refusals[self._current] = got
                    refused = True
                    # Useless from now on (libzmq may not even connect again after a
                    # protocol error): never reuse it.
                    self._drop_connection()
                    break
                body = _unpack(got)
                if body is None:
                    unreadable = "%s sent a reply this client cannot read" % endpoint
                    continue
                tag, f = body
                if tag == ERROR_REPLY:
                    code, text = _pad(f, [BAD_REQUEST, b""])
                    if code == OVERLOADED:
                        # Refused before it was decoded: nothing ran. Back off, then the
                        # same bytes to the same node.
                        time.sleep(max(0.0, min(overload, end - time.monotonic())))
                        overload = min(MAX_ATTEMPT_TIMEOUT, overload * 2)
                        resend_here = True
                        break
                    raise Refused(_refusal_text(endpoint, what, code, _text(text)), code=code,
                                  error=_text(text), endpoint=endpoint)
                if tag != CLIENT_REPLY or len(f) < 3 or f[0] != self._id or f[1] != seq:
                    continue  # a late answer to an earlier request
                result = self._finish(op, what, seq, endpoint, f)
                if result is not None:
                    return result
                break  # shutting_down: as no answer, fail over
            if other_key:
                # This node presents another of the cluster's client keys (a rotation in
                # progress): the request did not go out; try the next key here.
                keys_tried += 1
                self._server_key = (self._server_key + 1) % nkeys
                self._drop_connection()
                continue
            keys_tried = 0
            maybe_delivered = maybe_delivered or not refused
            if not maybe_delivered and len(refusals) == n:
                raise Refused(_join_refusals(self._endpoints, refusals)
                              + "; the %s was not delivered, so it did not run" % what)
            if resend_here:
                continue
            # No answer here: the same bytes go to the next node, on a new DEALER.
            self._drop_connection()
            self._current = (self._current + 1) % n
            attempt = min(MAX_ATTEMPT_TIMEOUT, attempt * 1.5)
        if not maybe_delivered and len(refusals) == n:
            raise Refused(_join_refusals(self._endpoints, refusals)
                          + "; the %s was not delivered, so it did not run" % what)
        extra = ("; " + _join_refusals(self._endpoints, refusals)) if refusals else ""
        if unreadable:
            extra += "; " + unreadable
        self.last_revision = None
        if op in (OP_GET, OP_RANGE):
            effect = "a read changes nothing, so it is safe to call again"
        else:
            effect = "the %s may or may not have taken effect" % what
        raise OutcomeUnknown(
            "no answer from %s within %ss; %s; is the cluster running, and can a majority "
            "of its nodes reach each other?%s"
            % (",".join(self._endpoints), _secs(self.timeout), effect, extra), op=what)

    def _finish(self, op, what, seq, endpoint, f):
        f = _pad(f, [0, 0, OK, b"", b"", 0, [], False, 0, False, []])
        code = f[2]
        if code == SESSION_EXPIRED:
            # This copy did not run; an earlier or a late one may. Never retried behind the
            # caller's back: the next call starts a new session (new id, seq 1, a get).
            self._new_session()
            self.last_revision = None
            raise OutcomeUnknown(
                "%s: %s; the %s may or may not have taken effect; this client starts a new "
                "session for its next call" % (endpoint, _text(f[4]), what), op=what)
        if code == SHUTTING_DOWN:
            return None
        self._ack = seq
        if code in (OK, STALE_REQUEST):  # it ran, so this id's seq 1 ran: the session is open
            self._session_open = True
            self._unanswered_opening = None
        if code == OK:
            self.last_revision = f[5]
            return f
        if code == STALE_REQUEST:
            # Our one outstanding seq ran exactly once, but the node no longer holds its
            # reply (section 5).
            self.last_revision = None
            if op in (OP_PUT, OP_APPEND):
                f[5] = None  # done; its revision is lost
                return f
            if op in (OP_GET, OP_RANGE):
                raise _ReadAgain()
            raise ReplyLost(
                "%s executed the %s exactly once but released its reply (%s) before it "
                "arrived; read the keys to see what it did"
                % (endpoint, what, "the count of deleted keys" if op == OP_DELETE_RANGE
                   else "which branch ran and what its reads returned"), op=what)
        raise Refused(_refusal_text(endpoint, what, code, _text(f[4])), code=code,
                      error=_text(f[4]), endpoint=endpoint)


def _join_refusals(endpoints, refusals):
    """The refusals, once for every endpoint that gave the same one."""
    groups = collections.OrderedDict()
    for i in sorted(refusals):
        template = refusals[i].replace(endpoints[i], "\0")
        groups.setdefault(template, []).append(endpoints[i])
    return "; ".join(t.replace("\0", ",".join(eps)) for t, eps in groups.items())


def _text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def _secs(t):
    return ("%g" % t) if t != int(t) else "%.1f" % t


def _refusal_text(endpoint, what, code, text):
    name = CODE_NAMES.get(code, "code %s" % code)
    if code == UNSUPPORTED_VERSION:
        advice = "this client speaks protocol version %d" % PROTOCOL_VERSION
    else:
        advice = "fix the request; retrying it unchanged would fail again"
    return "%s refused the %s (%s): %s; it did not run; %s" % (endpoint, what, name, text, advice)
