#!/usr/bin/python3
"""Tests of the Python client (client/python/kvpaxos.py) against real kvpaxosd processes.

    /usr/bin/python3 test/python/test_client.py KVPAXOSD KVCTL [unittest args]

Starts a 3-node cluster on 127.0.0.1 (free ports, a temporary data dir, CURVE keys made
with `kvctl keygen`, only the test's client key admitted), a plain (keyless) one-node
cluster and a keyed one-node cluster that admits any client key, and stops them all at
the end, also on failure. A few tests drive the client against a scripted fake node (a
ROUTER in this process) to check the retry rules of docs/protocol.md, section 8, exactly,
and the worked examples of section 11 byte for byte.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

try:
    import msgpack
    import zmq
except ImportError as e:
    sys.stderr.write(
        "test_client.py: FAIL: %s. The Python client needs Debian's python3-zmq and "
        "python3-msgpack: apt-get install python3-zmq python3-msgpack (and run this with "
        "/usr/bin/python3, not %s)\n" % (e, sys.executable))
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
import kvpaxos  # noqa: E402

KVPAXOSD = KVCTL = None
WORK = None
CLUSTER = SOLO_PLAIN = SOLO_OPEN = None
LONG = 20.0  # a call's deadline where the test expects success (generous: a loaded machine)


# --- processes --------------------------------------------------------------------------

def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_base(n):
    """A base port with BASE+1..BASE+n (peers) and BASE+101..BASE+100+n (clients) free,
    below the kernel's ephemeral range (as test/e2e/lib.bash does)."""
    for _ in range(100):
        base = 20000 + random.randrange(120) * 100
        if all(port_free(base + i) and port_free(base + 100 + i) for i in range(1, n + 1)):
            return base
    raise RuntimeError("no free ports found")


def keygen(name, directory):
    subprocess.run([KVCTL, "keygen", name, "--dir", directory], check=True,
                   stdout=subprocess.DEVNULL)


class Node(object):
    def __init__(self, name, args, log):
        self.name, self.args, self.log = name, args, log
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([KVPAXOSD] + self.args, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self):
        if self.proc is not None:
            if self.alive():
                try:
                    self.proc.send_signal(signal.SIGCONT)
                except OSError:
                    pass
                self.proc.kill()
            self.proc.wait()

    def tail(self, lines=15):
        try:
            with open(self.log, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""


class Cluster(object):
    """n kvpaxosd nodes on 127.0.0.1, started with `keyflags` (none: plain tcp)."""

    def __init__(self, label, n, keyflags=None, data=True):
        self.label, self.n, self.keyflags, self.data = label, n, keyflags or [], data
        self.nodes, self.endpoints = [], []

    def start(self):
        for _ in range(5):
            if self._launch():
                return
            self.stop()
        raise RuntimeError("%s: the cluster did not start in 5 tries:\n%s"
                           % (self.label, self.logs()))

    def _launch(self):
        base = pick_base(self.n)
        names = ["%s%d" % (self.label, i) for i in range(1, self.n + 1)]
        cluster = ",".join("%s=127.0.0.1:%d" % (nm, base + i + 1) for i, nm in enumerate(names))
        self.nodes, self.endpoints = [], []
        for i, nm in enumerate(names):
            ep = "127.0.0.1:%d" % (base + 101 + i)
            args = ["--name", nm, "--cluster", cluster, "--client-addr", ep]
            if self.data:
                d = os.path.join(WORK, "data", nm)
                os.makedirs(d, exist_ok=True)
                args += ["--data-dir", d, "--initial-cluster-state", "new"]
            args += self.keyflags
            node = Node(nm, args, os.path.join(WORK, nm + ".log"))
            node.start()
            self.nodes.append(node)
            self.endpoints.append(ep)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not all(nd.alive() for nd in self.nodes):
                return False  # a port taken between pick and bind
            try:
                with self.client(timeout=1.0) as c:
                    c.get("startup")
                return True
            except kvpaxos.KvpaxosError:
                time.sleep(0.1)
        raise RuntimeError("%s: the cluster did not come up:\n%s" % (self.label, self.logs()))

    def client(self, endpoints=None, timeout=LONG, **kw):
        kw.setdefault("server_key", self.server_key)
        kw.setdefault("key", self.client_key)
        return kvpaxos.Client(endpoints or self.endpoints, timeout=timeout, **kw)

    server_key = client_key = None

    def stop(self):
        for nd in self.nodes:
            nd.kill()

    def logs(self):
        return "\n".join("--- %s\n%s" % (nd.log, nd.tail()) for nd in self.nodes)


def kvctl(*args, stdin=None):
    cmd = [KVCTL, "--endpoints", ",".join(CLUSTER.endpoints), "--timeout", "20s",
           "--server-key", CLUSTER.server_key, "--key", CLUSTER.client_key] + list(args)
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(cmd), r.returncode,
                                                  r.stderr.decode("utf-8", "replace")))
    return r.stdout


def setUpModule():
    global WORK, CLUSTER, SOLO_PLAIN, SOLO_OPEN
    WORK = tempfile.mkdtemp(prefix="kvpaxos-python-test-")
    keys = os.path.join(WORK, "keys")
    for n in ("c1", "c2", "c3"):
        keygen(n, os.path.join(keys, "peer"))
    keygen("cluster", os.path.join(keys, "port"))
    keygen("py", keys)        # admitted: in clients/
    keygen("stranger", keys)  # not admitted
    os.makedirs(os.path.join(keys, "clients"))
    shutil.copy(os.path.join(keys, "py.key"), os.path.join(keys, "clients", "py.key"))
    keygen("s1", os.path.join(keys, "solo-peer"))

    CLUSTER = Cluster("c", 3, [
        "--peer-keys", os.path.join(keys, "peer"),
        "--client-key", os.path.join(keys, "port", "cluster.key_secret"),
        "--client-keys", os.path.join(keys, "clients")])
    CLUSTER.server_key = os.path.join(keys, "port", "cluster.key")
    CLUSTER.client_key = os.path.join(keys, "py.key_secret")
    SOLO_PLAIN = Cluster("p", 1, data=False)
    SOLO_OPEN = Cluster("s", 1, [  # keyed, no --client-keys: any client key is let in
        "--peer-keys", os.path.join(keys, "solo-peer"),
        "--client-key", os.path.join(keys, "port", "cluster.key_secret")], data=False)
    SOLO_OPEN.server_key = CLUSTER.server_key
    try:
        for c in (CLUSTER, SOLO_PLAIN, SOLO_OPEN):
            c.start()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for c in (CLUSTER, SOLO_PLAIN, SOLO_OPEN):
        if c is not None:
            c.stop()
    if WORK is not None:
        shutil.rmtree(WORK, ignore_errors=True)


def unique(prefix):
    return "%s-%d-%d/" % (prefix, os.getpid(), random.randrange(1 << 30))


class ClusterTestCase(unittest.TestCase):
    def run(self, result=None):
        # On failure, show the nodes' logs.
        failures = len(result.failures) + len(result.errors) if result else 0
        out = unittest.TestCase.run(self, result)
        if result is not None and len(result.failures) + len(result.errors) > failures:
            sys.stderr.write("\n" + CLUSTER.logs() + "\n")
        return out


# --- against the real cluster (CURVE on) ------------------------------------------------

class KeyValueTest(ClusterTestCase):
    def test_put_get_append_round_trip(self):
        k = unique("rt") + "k"
        with CLUSTER.client() as c:
            r1 = c.put(k, "hello")
            self.assertIsInstance(r1, int)
            self.assertEqual(c.get(k), b"hello")
            self.assertEqual(c.last_revision, r1)  # a read reports the revision it read at
            r2 = c.append(k, " world")
            self.assertGreater(r2, r1)
            self.assertEqual(c.get(k), b"hello world")
            r3 = c.put(k, b"again")
            self.assertEqual(c.get(k), b"again")
            kv = c.get_kv(k)
            self.assertEqual((kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version),
                             (k.encode(), b"again", r1, r3, 3))

    def test_arbitrary_bytes(self):
        key = unique("bin").encode() + b"\x00\xff\xfe key \x00"
        value = bytes(range(256)) * 3 + b"\x00"
        with CLUSTER.client() as c:
            c.put(key, value)
            got = c.get(key)
            self.assertIsInstance(got, bytes)
            self.assertEqual(got, value)
            c.append(bytearray(key), memoryview(b"\x00\x80"))
            self.assertEqual(c.get(key), value + b"\x00\x80")
            text_key = unique("utf8") + "caf\u00e9"
            c.put(text_key, "caf\u00e9")  # str: as UTF-8
            self.assertEqual(c.get(text_key.encode("utf-8")), "caf\u00e9".encode("utf-8"))
            with self.assertRaises(TypeError):
                c.put(key, 42)

    def test_absent_key_reads_empty(self):
        k = unique("absent")
        with CLUSTER.client() as c:
            self.assertEqual(c.get(k + "never-written"), b"")
            self.assertIsNone(c.get_kv(k + "never-written"))
            c.put(k + "empty", b"")
            self.assertEqual(c.get(k + "empty"), b"")
            self.assertIsNotNone(c.get_kv(k + "empty"))  # a range tells absent from empty

    def test_kvctl_reads_python_and_python_reads_kvctl(self):
        k = unique("interop")
        with CLUSTER.client() as c:
            c.put(k + "from-python", b"py\x00\xffvalue")
            self.assertEqual(kvctl("get", k + "from-python"), b"py\x00\xffvalue\n")
            kvctl("put", k + "from-kvctl", "kv-value")
            self.assertEqual(c.get(k + "from-kvctl"), b"kv-value")
            kvctl("append", k + "from-kvctl", "-", stdin=b"\x00\xfe\n")
            self.assertEqual(c.get(k + "from-kvctl"), b"kv-value\x00\xfe\n")
            c.append(k + "from-kvctl", "+py")
            self.assertEqual(kvctl("get", k + "from-kvctl"), b"kv-value\x00\xfe\n+py\n")

    def test_ranges_and_deletes(self):
        p = unique("range")
        with CLUSTER.client() as c:
            revs = [c.put(p + name, name.upper()) for name in ("a", "b", "c", "d", "e")]
            c.put(p[:-1] + "0outside", "x")  # just past the prefix
            r = c.get_prefix(p, limit=2)
            self.assertEqual([kv.key for kv in r.kvs], [(p + "a").encode(), (p + "b").encode()])
            self.assertEqual([kv.value for kv in r.kvs], [b"A", b"B"])
            self.assertEqual((r.more, r.count), (True, 5))
            self.assertGreaterEqual(r.revision, revs[-1])
            self.assertEqual(r.kvs[0].create_revision, revs[0])
            r = c.get_range(p + "b", p + "d")
            self.assertEqual([kv.key for kv in r.kvs], [(p + "b").encode(), (p + "c").encode()])
            self.assertFalse(r.more)
            r = c.get_prefix(p, keys_only=True)
            self.assertEqual([kv.value for kv in r.kvs], [b""] * 5)
            r = c.get_prefix(p, count_only=True)
            self.assertEqual((r.kvs, r.count, r.more), ([], 5, False))
            self.assertEqual([kv.value for kv in c.iter_prefix(p, page=2)],
                             [b"A", b"B", b"C", b"D", b"E"])
            self.assertGreaterEqual(c.get_all(limit=1).count, 6)
            d = c.delete(p + "a")
            self.assertEqual(d.deleted, 1)
            self.assertEqual(c.delete(p + "a").deleted, 0)  # absent: not an error
            before = d.revision
            d = c.delete_prefix(p)
            self.assertEqual(d.deleted, 4)
            self.assertEqual(d.revision, before + 4)  # one revision per deleted key
            self.assertEqual(c.get_prefix(p).count, 0)
            self.assertEqual(c.get(p[:-1] + "0outside"), b"x")

    def test_transaction(self):
        p = unique("txn")
        lock = p + "lock"
        T = kvpaxos
        with CLUSTER.client() as c:
            t = c.transaction(compare=[T.Version(lock) == 0], success=[T.Put(lock, "me")],
                              failure=[T.Get(lock)])
            self.assertTrue(t.succeeded)
            self.assertEqual([r.op for r in t.responses], [kvpaxos.OP_PUT])
            self.assertEqual(c.get(lock), b"me")
            t2 = c.transaction(compare=[T.Version(lock) == 0], success=[T.Put(lock, "you")],
                               failure=[T.Get(lock)])
            self.assertFalse(t2.succeeded)
            self.assertEqual(t2.responses[0].value, b"me")
            self.assertEqual(t2.revision, t.revision)  # a branch that only reads: no revision
            # Several ops: each sees the ones before it, one revision per change.
            t3 = c.transaction(
                compare=[T.Value(lock) == "me", T.ModRevision(lock) < t.revision + 1],
                success=[T.Append(lock, "!"), T.Get(lock), T.Put(p + "x", "1"),
                         T.Range(p, prefix=True), T.Delete(p + "x")],
                failure=[])
            self.assertTrue(t3.succeeded)
            self.assertEqual(t3.responses[1].value, b"me!")
            self.assertEqual(t3.responses[3].count, 2)
            self.assertEqual(t3.responses[4].count, 1)
            self.assertEqual(t3.revision, t.revision + 3)
            self.assertEqual(c.txn([c.transactions.value(lock) != "me!"], [], []).succeeded,
                             False)

    def test_status(self):
        with CLUSTER.client() as c:
            names = set()
            for ep in CLUSTER.endpoints:
                s = c.status(ep)
                names.add(s["name"])
                self.assertEqual(s["endpoint"], ep)
                self.assertGreater(s["applied_below"], 0)
                self.assertGreater(s["data_dir_bytes"], 0)
                self.assertFalse(s["fault_injection"])
                for field in kvpaxos.STATUS_FIELDS:
                    self.assertIn(field, s)
            self.assertEqual(names, {"c1", "c2", "c3"})
        with kvpaxos.Client(["127.0.0.1:1"], timeout=0.5) as dead:
            with self.assertRaises(kvpaxos.Unavailable):
                dead.status()

    def test_bad_request_is_refused_and_the_node_keeps_serving(self):
        k = unique("bad")
        with CLUSTER.client() as c:
            start = time.monotonic()
            with self.assertRaises(kvpaxos.Refused) as cm:
                c.put(b"k" * (kvpaxos.MAX_KEY_BYTES + 1), "v")
            self.assertLess(time.monotonic() - start, 5.0)  # an answer, not a timeout
            e = cm.exception
            self.assertNotIsInstance(e, kvpaxos.OutcomeUnknown)
            self.assertEqual((e.code, e.code_name), (kvpaxos.BAD_REQUEST, "bad_request"))
            self.assertIn("key of 65537 bytes exceeds the limit of 65536", e.error)
            self.assertIn("did not run", str(e))
            with self.assertRaises(kvpaxos.Refused) as cm:
                c.get_range(k + "z", k + "a")
            self.assertIn("range_end must be above key", cm.exception.error)
            c.put(k, "still serving")
            self.assertEqual(c.get(k), b"still serving")
        # A refused first op (seq 1, a get) opens no session on the node: the client starts a
        # new one rather than send seq 2 to a session the node never had.
        with CLUSTER.client() as c:
            with self.assertRaises(kvpaxos.Refused):
                c.get(b"k" * (kvpaxos.MAX_KEY_BYTES + 1))
            c.put(k, "after a refused first op")
            self.assertEqual(c.get(k), b"after a refused first op")
        # A frame over the limit is not sent at all (the node would close the connection).
        with CLUSTER.client() as c:
            with self.assertRaises(kvpaxos.Refused) as cm:
                c.put(k, b"v" * (kvpaxos.MAX_CLIENT_FRAME_BYTES + 1))
            self.assertIn("not sent", str(cm.exception))


class ExactlyOnceTest(ClusterTestCase):
    def test_same_bytes_at_every_node_execute_once(self):
        """One encoded append sent to all three nodes, and twice more to the first: every
        copy is answered with the one execution's reply, and the value holds it once."""
        k = (unique("raw") + "k").encode()
        cid = random.randrange(1, 1 << 64)
        pub, sec = kvpaxos._own_key(CLUSTER.client_key)
        server = kvpaxos._server_keys(CLUSTER.server_key)[0]
        ctx = zmq.Context()
        socks = []
        try:
            for ep in CLUSTER.endpoints:
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server, pub, sec
                s.connect("tcp://" + ep)
                socks.append(s)

            def receive(sock, seq):
                end = time.monotonic() + LONG
                while time.monotonic() < end:
                    if sock.poll(int((end - time.monotonic()) * 1000) + 1):
                        tag, _, f = msgpack.unpackb(sock.recv(), raw=True)
                        if tag == kvpaxos.CLIENT_REPLY and f[1] == seq:
                            return f
                self.fail("no reply to seq %d" % seq)

            def exchange(sock, frame):
                sock.send(frame)
                return receive(sock, msgpack.unpackb(frame, raw=True)[2][1])

            opening = kvpaxos._pack(100, [cid, 1, 0, kvpaxos.OP_GET, b"", b"", b"", 0, 0,
                                          [], [], []])
            self.assertEqual(exchange(socks[0], opening)[2], kvpaxos.OK)
            append = kvpaxos._pack(100, [cid, 2, 1, kvpaxos.OP_APPEND, k, b"+once", b"", 0, 0,
                                         [], [], []])
            for s in socks:  # three copies in flight at once, at three nodes
                s.send(append)
            replies = [receive(s, 2) for s in socks]
            replies += [exchange(socks[0], append), exchange(socks[1], append)]
            self.assertEqual({r[2] for r in replies}, {kvpaxos.OK})
            self.assertEqual(len({r[5] for r in replies}), 1, "one execution, one revision")
        finally:
            for s in socks:
                s.close(linger=0)
            ctx.term()
        with CLUSTER.client() as c:
            self.assertEqual(c.get(k), b"+once")
            self.assertEqual(c.get_kv(k).version, 1)

    def test_retry_after_sigstop_executes_once(self):
        """The node holding the request is stopped: the client times out there, resends the
        same bytes to the next node, which executes it; the stopped node resumes with the old
        copy in its socket, and the value still holds the append once."""
        k = unique("stop") + "k"
        with CLUSTER.client() as c:
            c.put(k, "base")
            victim = CLUSTER.endpoints.index(c.current_endpoint)
            first = CLUSTER.nodes[victim]
            first.signal(signal.SIGSTOP)
            try:
                start = time.monotonic()
                c.append(k, "+x")
                took = time.monotonic() - start
            finally:
                first.signal(signal.SIGCONT)
            self.assertGreaterEqual(took, kvpaxos.FIRST_ATTEMPT_TIMEOUT)  # it did time out
            self.assertNotEqual(c.current_endpoint, CLUSTER.endpoints[victim])
            self.assertEqual(c.get(k), b"base+x")
        # Read at the resumed node alone (through the log: after its late copy).
        with CLUSTER.client([CLUSTER.endpoints[victim]]) as c1:
            self.assertEqual(c1.get(k), b"base+x")
            c1.put(unique("stop") + "after", "1")
            self.assertEqual(c1.get(k), b"base+x")
            self.assertEqual(c1.get_kv(k).version, 2)

    def test_zz_failover_past_a_sigkilled_node(self):
        k = unique("kill") + "k"
        with CLUSTER.client() as c:
            c.put(k, "v1")
            victim = CLUSTER.endpoints.index(c.current_endpoint)
            node = CLUSTER.nodes[victim]
            node.kill()
            try:
                self.assertEqual(c.put(k, "v2") is not None, True)
                self.assertNotEqual(c.current_endpoint, CLUSTER.endpoints[victim])
                self.assertEqual(c.get(k), b"v2")
            finally:
                node.start()  # from its data dir: it recovers and catches up
            deadline = time.monotonic() + 30
            while True:
                try:
                    with CLUSTER.client([CLUSTER.endpoints[victim]], timeout=2.0) as back:
                        self.assertEqual(back.get(k), b"v2")
                    break
                except kvpaxos.KvpaxosError:
                    if time.monotonic() > deadline:
                        raise


class NoAnswerTest(ClusterTestCase):
    def test_outcome_unknown_when_every_node_is_down(self):
        k = unique("down") + "k"
        with CLUSTER.client(timeout=1.5) as c:
            c.put(k, "before")  # the session is open
            for nd in CLUSTER.nodes:
                nd.signal(signal.SIGSTOP)
            try:
                start = time.monotonic()
                with self.assertRaises(kvpaxos.OutcomeUnknown) as cm:
                    c.put(k, "during")
                took = time.monotonic() - start
                msg = str(cm.exception)
                for ep in CLUSTER.endpoints:
                    self.assertIn(ep, msg)
                self.assertIn("within 1.5s", msg)
                self.assertIn("the put may or may not have taken effect", msg)
                self.assertEqual(cm.exception.op, "put")
                self.assertGreaterEqual(took, 1.5)
                self.assertLess(took, 4.0)
                # A fresh client's first put is not even sent: its session's get got no answer.
                # Nor is its next op: first the same get again, which gets no answer either.
                fresh = CLUSTER.client(timeout=1.0)
                self.addCleanup(fresh.close)
                fresh_id = fresh.client_id
                with self.assertRaises(kvpaxos.Unavailable) as cm:
                    fresh.put(k, "never")
                self.assertIn("was not sent", str(cm.exception))
                with self.assertRaises(kvpaxos.Unavailable):
                    fresh.get(k)
            finally:
                for nd in CLUSTER.nodes:
                    nd.signal(signal.SIGCONT)
            # The unanswered get may have run once the nodes resumed: the fresh client goes on
            # in the same session (same id), never in a new one, and its put runs.
            fresh.timeout = LONG
            fresh.put(k + "-fresh", "after")
            self.assertEqual(fresh.client_id, fresh_id)
            self.assertEqual(fresh.get(k + "-fresh"), b"after")
            c.timeout = LONG
            # The unknown put may have run after all, once the nodes resumed; nothing else did.
            self.assertIn(c.get(k), (b"before", b"during"))
            c.put(k, "after")
            self.assertEqual(c.get(k), b"after")
            self.assertNotEqual(c.get(k), b"never")

    def test_outcome_unknown_when_nothing_listens(self):
        base = pick_base(2)
        eps = ["127.0.0.1:%d" % (base + 101), "tcp://127.0.0.1:%d" % (base + 102)]
        with kvpaxos.Client(eps, timeout=1.0) as c:
            with self.assertRaises(kvpaxos.OutcomeUnknown) as cm:
                c.get("k")
            self.assertIn("127.0.0.1:%d,127.0.0.1:%d" % (base + 101, base + 102),
                          str(cm.exception))


class CurveTest(ClusterTestCase):
    """The main cluster runs with keys, so every test above is on the CURVE path; these
    check what a misconfigured client hears: a refusal at once, never a timeout."""

    def assertRefusedQuickly(self, client, needle):
        # Twice: a client keeps refusing at once after a refused handshake.
        for op in (lambda: client.put("curve-k", "v"), lambda: client.get("curve-k")):
            start = time.monotonic()
            with self.assertRaises(kvpaxos.Refused) as cm:
                op()
            self.assertLess(time.monotonic() - start, 5.0)
            self.assertIn(needle, str(cm.exception))
            self.assertIn("did not run", str(cm.exception))

    def test_keyless_client_is_refused(self):
        with kvpaxos.Client(CLUSTER.endpoints, timeout=LONG) as c:
            self.assertRefusedQuickly(c, "requires CURVE keys")

    def test_unknown_client_key_is_refused(self):
        with CLUSTER.client(key=os.path.join(WORK, "keys", "stranger.key_secret")) as c:
            self.assertRefusedQuickly(c, "refused our key")
        with CLUSTER.client(key=None) as c:  # an ephemeral key: not among --client-keys
            self.assertRefusedQuickly(c, "ephemeral")

    def test_wrong_server_key_is_refused(self):
        with CLUSTER.client(server_key=os.path.join(WORK, "keys", "peer", "c1.key")) as c:
            self.assertRefusedQuickly(c, "is server_key the public key")

    def test_key_forms_and_rotation(self):
        pub = kvpaxos._server_keys(CLUSTER.server_key)[0].decode()
        own = kvpaxos._own_key(CLUSTER.client_key)
        wrong = os.path.join(WORK, "keys", "peer", "c2.key")
        k = unique("curve") + "k"
        with CLUSTER.client(server_key=pub, key=own) as c:  # Z85 text and a (pub, sec) pair
            c.put(k, "z85")
        with CLUSTER.client(server_key=[wrong, CLUSTER.server_key]) as c:  # a rotation
            self.assertEqual(c.get(k), b"z85")
        with CLUSTER.client(server_key=wrong + "," + pub) as c:
            self.assertEqual(c.status()["name"], "c1")
        with self.assertRaises(ValueError):
            kvpaxos.Client(CLUSTER.endpoints, key=CLUSTER.client_key)  # no server_key
        with self.assertRaises(ValueError) as cm:
            CLUSTER.client(key=CLUSTER.server_key)  # a public file as our own pair
        self.assertIn("holds no secret-key", str(cm.exception))

    def test_ephemeral_key_where_any_client_may_connect(self):
        with SOLO_OPEN.client(key=None) as c:
            c.put("eph", "emeral")
            self.assertEqual(c.get("eph"), b"emeral")

    def test_plain_node(self):
        with SOLO_PLAIN.client() as c:
            c.put("plain", "text")
            self.assertEqual(c.get("plain"), b"text")
        with SOLO_PLAIN.client(server_key=CLUSTER.server_key, key=CLUSTER.client_key) as c:
            # libzmq names the mechanism mismatch only now and then ("does not use CURVE");
            # mostly it is "no detail", which names this case too.
            self.assertRefusedQuickly(c, "CURVE")
            self.assertRefusedQuickly(c, "keys")


# --- against a scripted fake node ---------------------------------------------------------

class FakeNode(object):
    """A ROUTER on 127.0.0.1 that records every frame and answers what `handler(fields,
    copy)` returns (a list of reply bodies; copy counts the frames of that seq so far)."""

    def __init__(self, handler):
        self.handler = handler
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1", 32100, 32700)
        self.endpoint = "127.0.0.1:%d" % port
        self.frames = []  # (monotonic time, body)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            if not self.sock.poll(20):
                continue
            rid, body = self.sock.recv_multipart()
            self.frames.append((time.monotonic(), body))
            fields = msgpack.unpackb(body, raw=True)[2]
            copies = sum(1 for _, b in self.frames if b == body)
            for reply in self.handler(fields, copies) or []:
                self.sock.send_multipart([rid, reply])

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close(linger=0)
        self.ctx.term()


def reply(fields, code=kvpaxos.OK, value=b"", error=b"", revision=7, kvs=(), more=False,
          count=0, succeeded=False, responses=()):
    return kvpaxos._pack(101, [fields[0], fields[1], code, value, error, revision, list(kvs),
                               more, count, succeeded, list(responses)])


def error_reply(code, text):
    return kvpaxos._pack(106, [code, text])


class RetryRulesTest(unittest.TestCase):
    def fakes(self, *handlers):
        nodes = [FakeNode(h) for h in handlers]
        for n in nodes:
            self.addCleanup(n.close)
        return nodes

    def test_same_bytes_round_robin_with_growing_waits(self):
        silent = lambda f, n: []
        a, b = self.fakes(silent, silent)
        with kvpaxos.Client([a.endpoint, b.endpoint], timeout=3.0) as c:
            with self.assertRaises(kvpaxos.OutcomeUnknown):
                c.get("k")
        frames = sorted(a.frames + b.frames)
        self.assertGreaterEqual(len(frames), 5)
        self.assertEqual(len({body for _, body in frames}), 1, "one encoding, resent as is")
        order = [("a" if (t, body) in a.frames else "b") for t, body in frames]
        self.assertEqual(order[:5], ["a", "b", "a", "b", "a"])
        gaps = [frames[i + 1][0] - frames[i][0] for i in range(4)]
        for gap, want in zip(gaps, [0.25, 0.375, 0.5625, 0.84375]):
            self.assertGreaterEqual(gap, want - 0.02)
            self.assertLess(gap, want + 0.25)

    def test_session_opens_with_a_get_and_acks_ride_along(self):
        (a,) = self.fakes(lambda f, n: [reply(f, revision=f[1])])
        with kvpaxos.Client([a.endpoint]) as c:
            self.assertEqual(c.put("k", "v"), 2)
            self.assertEqual(c.append("k", "w"), 3)
        sent = [msgpack.unpackb(body, raw=True)[2] for _, body in a.frames]
        self.assertEqual([(f[1], f[2], f[3]) for f in sent],
                         [(1, 0, kvpaxos.OP_GET), (2, 1, kvpaxos.OP_PUT),
                          (3, 2, kvpaxos.OP_APPEND)])
        self.assertEqual(len({f[0] for f in sent}), 1)

    def test_overloaded_resends_the_same_bytes_to_the_same_node(self):
        def handler(f, copies):
            if f[3] == kvpaxos.OP_PUT and copies <= 2:
                return [error_reply(kvpaxos.OVERLOADED, b"too many bytes in flight")]
            return [reply(f)]
        a, b = self.fakes(handler, lambda f, n: [])
        with kvpaxos.Client([a.endpoint, b.endpoint]) as c:
            self.assertEqual(c.put("k", "v"), 7)
        puts = [body for _, body in a.frames if msgpack.unpackb(body)[2][3] == kvpaxos.OP_PUT]
        self.assertEqual(len(puts), 3)
        self.assertEqual(len(set(puts)), 1)
        self.assertEqual(b.frames, [])

    def test_error_reply_is_refused_without_retry(self):
        a, b = self.fakes(
            lambda f, n: [reply(f)] if f[3] == kvpaxos.OP_GET else
            [error_reply(kvpaxos.BAD_REQUEST, b"key of 70000 bytes exceeds the limit of 65536")],
            lambda f, n: [])
        with kvpaxos.Client([a.endpoint, b.endpoint]) as c:
            with self.assertRaises(kvpaxos.Refused) as cm:
                c.put("k", "v")
            self.assertEqual(cm.exception.code, kvpaxos.BAD_REQUEST)
            self.assertIn(a.endpoint, str(cm.exception))
        self.assertEqual(len(a.frames), 2)  # the session's get and one put
        self.assertEqual(b.frames, [])

    def test_session_expired_is_unknown_and_starts_a_new_session(self):
        def handler(f, copies):
            if f[1] == 2 and f[3] == kvpaxos.OP_PUT and not handler.expired:
                handler.expired = True
                return [reply(f, code=kvpaxos.SESSION_EXPIRED, error=b"session evicted")]
            return [reply(f)]
        handler.expired = False
        (a,) = self.fakes(handler)
        with kvpaxos.Client([a.endpoint]) as c:
            first_id = c.client_id
            with self.assertRaises(kvpaxos.OutcomeUnknown) as cm:
                c.put("k", "v")
            self.assertIn("may or may not have taken effect", str(cm.exception))
            self.assertIn("new session", str(cm.exception))
            c.put("k", "v2")
            self.assertNotEqual(c.client_id, first_id)
        sent = [msgpack.unpackb(body, raw=True)[2] for _, body in a.frames]
        self.assertEqual([(f[0] == first_id, f[1], f[2], f[3]) for f in sent],
                         [(True, 1, 0, 1), (True, 2, 1, 2), (False, 1, 0, 1), (False, 2, 1, 2)])

    def test_refused_opening_starts_a_new_session(self):
        refusing = [True]
        (a,) = self.fakes(lambda f, n: [error_reply(kvpaxos.BAD_REQUEST, b"not today")]
                          if refusing[0] else [reply(f)])
        with kvpaxos.Client([a.endpoint]) as c:
            first_id = c.client_id
            with self.assertRaises(kvpaxos.Refused):
                c.put("k", "v")
            refusing[0] = False
            c.put("k", "v2")
            self.assertNotEqual(c.client_id, first_id)
        sent = [msgpack.unpackb(body, raw=True)[2] for _, body in a.frames]
        self.assertEqual([(f[0] == first_id, f[1], f[2], f[3]) for f in sent],
                         [(True, 1, 0, kvpaxos.OP_GET), (False, 1, 0, kvpaxos.OP_GET),
                          (False, 2, 1, kvpaxos.OP_PUT)])

    def test_unanswered_opening_is_sent_again_as_the_same_bytes(self):
        answering = [False]
        (a,) = self.fakes(lambda f, n: [reply(f)] if answering[0] else [])
        with kvpaxos.Client([a.endpoint], timeout=0.6) as c:
            first_id = c.client_id
            with self.assertRaises(kvpaxos.Unavailable):
                c.put("k", "v")
            unanswered = len(a.frames)
            answering[0] = True
            c.timeout = 5.0
            c.put("k", "v2")
            self.assertEqual(c.client_id, first_id, "seq 1 may have run: the same session")
        bodies = [body for _, body in a.frames]
        self.assertGreaterEqual(unanswered, 1)
        self.assertEqual(len(set(bodies[:unanswered + 1])), 1, "seq 1 again, byte for byte")
        sent = [msgpack.unpackb(body, raw=True)[2] for body in bodies[unanswered:]]
        self.assertEqual([(f[0] == first_id, f[1], f[2], f[3]) for f in sent],
                         [(True, 1, 0, kvpaxos.OP_GET), (True, 2, 1, kvpaxos.OP_PUT)])

    def test_stale_request(self):
        def handler(f, copies):
            if f[1] >= 2 and copies == 1 and f[3] != kvpaxos.OP_GET or f[1] == 3:
                return [reply(f, code=kvpaxos.STALE_REQUEST, error=b"already executed")]
            return [reply(f, value=b"fresh", revision=f[1])]
        (a,) = self.fakes(handler)
        with kvpaxos.Client([a.endpoint]) as c:
            self.assertIsNone(c.put("k", "v"))           # seq 2: ran once, revision lost
            self.assertEqual(c.get("k"), b"fresh")        # seq 3 stale: read again as seq 4
            self.assertEqual(c.last_revision, 4)
            with self.assertRaises(kvpaxos.ReplyLost):    # seq 5: ran, its count is lost
                c.delete("k")
        seqs = [msgpack.unpackb(body, raw=True)[2][1] for _, body in a.frames]
        self.assertEqual(seqs, [1, 2, 3, 4, 5])

    def test_late_replies_and_garbage_are_ignored(self):
        def handler(f, copies):
            stale = list(f)
            stale[1] = f[1] - 1
            return [b"\xc1 not msgpack", kvpaxos._pack(101, [f[0] ^ 1, f[1], 0, b"other", b"",
                                                             1, [], False, 0, False, []]),
                    reply(stale, value=b"late"), reply(f, value=b"mine")]
        (a,) = self.fakes(handler)
        with kvpaxos.Client([a.endpoint]) as c:
            self.assertEqual(c.get("k"), b"mine")
            self.assertEqual(c.get("k"), b"mine")

    def test_worked_examples_of_protocol_md_byte_for_byte(self):
        """docs/protocol.md, section 11: the client's frames are the page's bytes, and it
        reads the page's replies."""
        h = bytes.fromhex
        examples = {
            3: ("93 64 01 9c cf 01 23 45 67 89 ab cd ef 03 02 02 a5 63 6f 6c 6f 72 a4 62 6c 75 65"
                " a0 00 00 90 90 90",
                "93 65 01 9c cf 01 23 45 67 89 ab cd ef 03 00 a0 a0 08 90 c2 00 c2 90"
                " 97 a0 00 00 00 92 00 90 00 00"),
            4: (None, "93 65 01 9c cf 01 23 45 67 89 ab cd ef 04 00 a4 62 6c 75 65 a0 08 90 c2 00"
                      " c2 90 97 a0 00 00 00 92 00 90 00 00"),
            5: ("93 64 01 9c cf 01 23 45 67 89 ab cd ef 05 04 05 a5 75 73 65 72 2f a0 a5 75 73 65"
                " 72 30 02 00 90 90 90",
                "93 65 01 9c cf 01 23 45 67 89 ab cd ef 05 00 a0 a0 09 92 95 aa 75 73 65 72 2f 61"
                " 6c 69 63 65 a1 61 03 07 02 95 a8 75 73 65 72 2f 62 6f 62 a1 62 05 05 01 c3 03"
                " c2 90 97 a0 00 00 00 92 00 90 00 00"),
            6: ("93 64 01 9c cf 01 23 45 67 89 ab cd ef 06 05 06 a0 a0 a0 00 00 91 95 01 00 a4 6c"
                " 6f 63 6b a0 00 91 96 02 a4 6c 6f 63 6b a2 6d 65 a0 00 00 91 96 01 a4 6c 6f 63"
                " 6b a0 a0 00 00",
                "93 65 01 9c cf 01 23 45 67 89 ab cd ef 06 00 a0 a0 0a 90 c2 00 c3 91 95 02 a0 90"
                " c2 00 97 a0 00 00 00 92 00 90 00 00"),
            7: ("93 64 01 9c cf 01 23 45 67 89 ab cd ef 07 06 04 a5 75 73 65 72 2f a0 a5 75 73 65"
                " 72 30 00 00 90 90 90",
                "93 65 01 9c cf 01 23 45 67 89 ab cd ef 07 00 a0 a0 0d 90 c2 03 c2 90"
                " 97 a0 00 00 00 92 00 90 00 00"),
        }
        (a,) = self.fakes(lambda f, n: [h(examples[f[1]][1])])
        with kvpaxos.Client([a.endpoint]) as c:
            c._id, c._seq, c._ack, c._session_open = 0x0123456789ABCDEF, 3, 2, True
            self.assertEqual(c.put("color", "blue"), 8)
            self.assertEqual(c.get("color"), b"blue")
            self.assertEqual(c.last_revision, 8)
            r = c.get_prefix("user/", limit=2)
            self.assertEqual(r, kvpaxos.RangeResult(
                [kvpaxos.KeyValue(b"user/alice", b"a", 3, 7, 2),
                 kvpaxos.KeyValue(b"user/bob", b"b", 5, 5, 1)], True, 3, 9))
            t = c.transaction([kvpaxos.Version("lock") == 0], [kvpaxos.Put("lock", "me")],
                              [kvpaxos.Get("lock")])
            self.assertEqual(t, kvpaxos.TxnResult(
                True, [kvpaxos.OpResponse(kvpaxos.OP_PUT, b"", [], False, 0)], 10))
            self.assertEqual(c.delete_prefix("user/"), kvpaxos.DeleteResult(3, 13))
        sent = {msgpack.unpackb(body)[2][1]: body for _, body in a.frames}
        for seq, (request, _) in examples.items():
            if request is not None:
                self.assertEqual(sent[seq].hex(" "), request, "seq %d" % seq)
        self.assertEqual(kvpaxos.prefix_end("user/"), b"user0")
        self.assertEqual(kvpaxos.prefix_end(b"a\xff"), b"b")
        self.assertEqual(kvpaxos.prefix_end(b"\xff\xff"), b"\0")
        self.assertEqual(kvpaxos.prefix_end(""), b"\0")


def main():
    global KVPAXOSD, KVCTL
    if len(sys.argv) < 3:
        sys.stderr.write("usage: /usr/bin/python3 %s KVPAXOSD KVCTL [unittest args]\n"
                         % sys.argv[0])
        sys.exit(2)
    KVPAXOSD, KVCTL = (os.path.abspath(p) for p in sys.argv[1:3])
    for path in (KVPAXOSD, KVCTL):
        if not os.access(path, os.X_OK):
            sys.stderr.write("test_client.py: %s is not an executable\n" % path)
            sys.exit(2)
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)


if __name__ == "__main__":
    main()
