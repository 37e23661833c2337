#!/usr/bin/python3
"""kvpaxosd under a service manager: what a real kvpaxosd sends to $NOTIFY_SOCKET.

The test plays systemd's part (Type=notify): it binds a unix datagram socket,
starts kvpaxosd with NOTIFY_SOCKET naming it, and checks the datagrams against
what the node does: READY=1 only once the client port accepts connections and
the data dir is recovered, nothing at all when start-up fails, a STATUS line
while a first start waits for a majority, STOPPING=1 on SIGTERM.

    /usr/bin/python3 test/deploy/sd_notify_test.py KVPAXOSD KVCTL
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from test_client import port_free  # noqa: E402

KVPAXOSD = KVCTL = None
START_S = 30.0  # how long a start may take on a loaded machine


def pick_ports(n):
    """n peer ports BASE+51.. and n client ports BASE+151.., free and below the kernel's
    ephemeral range; the +51 offset keeps clear of the BASE+1/BASE+101 ports that
    test/e2e/lib.bash and test/python pick in the same range."""
    for _ in range(100):
        base = 20000 + random.randrange(120) * 100
        peers = [base + 51 + i for i in range(n)]
        clients = [base + 151 + i for i in range(n)]
        if all(port_free(p) for p in peers + clients):
            return peers, clients
    raise RuntimeError("no free ports found")


class ServiceManager(object):
    """systemd's end of the notify protocol: a datagram socket bound to `address`
    (a path, or '@name' for an abstract socket)."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def receive(self, timeout, proc=None):
        """The next datagram as a dict of its VARIABLE=value lines, or None after
        `timeout` seconds (or once `proc` has exited and nothing more came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(0.1)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                if proc is not None and proc.poll() is not None:
                    proc = None
                    deadline = min(deadline, time.monotonic() + 0.5)  # a last datagram in flight
                continue
            return dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        return None

    def close(self):
        self.sock.close()
        if not self.address.startswith("@"):
            os.unlink(self.address)


class KvpaxosdUnderNotify(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="kvpaxos-sd-notify-")
        self.procs = []
        self.manager = None

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.manager is not None:
            self.manager.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def listen(self, address=None):
        self.manager = ServiceManager(address or os.path.join(self.work, "notify"))
        return self.manager

    def start(self, name, cluster, client_port, notify=None, log=None):
        env = {k: v for k, v in os.environ.items()
               if k != "NOTIFY_SOCKET" and not k.startswith("KVPAXOS_")}
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify
        data = os.path.join(self.work, name)
        args = [KVPAXOSD, "--name", name, "--cluster", cluster,
                "--client-addr", "127.0.0.1:%d" % client_port, "--data-dir", data]
        if not os.path.exists(data):
            args += ["--initial-cluster-state", "new"]
        out = open(log or os.path.join(self.work, name + ".log"), "ab")
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        out.close()
        self.procs.append(proc)
        return proc

    def kvctl(self, client_port, *command, timeout="10s"):
        return subprocess.run([KVCTL, "--endpoints", "127.0.0.1:%d" % client_port,
                               "--timeout", timeout] + list(command),
                              capture_output=True, text=True, timeout=30)

    def log_of(self, name):
        with open(os.path.join(self.work, name + ".log")) as f:
            return f.read()

    def wait_serving(self, name, proc, client_port):
        """Until kvctl status answers on `client_port` (fails if the node exits)."""
        deadline = time.monotonic() + START_S
        while self.kvctl(client_port, "status", timeout="1s").returncode != 0:
            self.assertIsNone(proc.poll(), self.log_of(name))
            self.assertLess(time.monotonic(), deadline, self.log_of(name))
            time.sleep(0.1)

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=15), 0, "kvpaxosd exits 0 after SIGTERM")

    def test_ready_once_the_client_port_answers_and_stopping_on_sigterm(self):
        manager = self.listen()
        (peer,), (client,) = pick_ports(1)
        cluster = "s1=127.0.0.1:%d" % peer
        proc = self.start("s1", cluster, client, notify=manager.address)
        ready = manager.receive(START_S, proc)
        self.assertIsNotNone(ready, "no datagram; log:\n" + self.log_of("s1"))
        self.assertEqual(ready.get("READY"), "1", ready)
        # One try, no retries: READY=1 promises the port is bound now.
        socket.create_connection(("127.0.0.1", client), timeout=2).close()
        self.assertEqual(ready.get("STATUS"), "serving clients on 127.0.0.1:%d, peers on "
                         "127.0.0.1:%d" % (client, peer))
        put = self.kvctl(client, "put", "k", "before-restart")
        self.assertEqual((put.returncode, put.stdout), (0, "OK\n"), put.stderr)
        self.assertIsNone(manager.receive(0.3), "READY=1 is sent once")

        self.stop(proc)
        stopping = manager.receive(5)
        self.assertIsNotNone(stopping, "no STOPPING=1 after SIGTERM")
        self.assertEqual(stopping.get("STOPPING"), "1", stopping)
        self.assertEqual(stopping.get("STATUS"), "stopping on signal %d" % signal.SIGTERM)

        # A restart recovers its data dir before it says READY=1 again.
        proc = self.start("s1", cluster, client, notify=manager.address)
        again = manager.receive(START_S, proc)
        self.assertEqual((again or {}).get("READY"), "1", self.log_of("s1"))
        got = self.kvctl(client, "get", "k")
        self.assertEqual((got.returncode, got.stdout), (0, "before-restart\n"), got.stderr)
        self.stop(proc)

    def test_abstract_notify_socket(self):
        manager = self.listen("@kvpaxos-sd-notify-%d-%d" % (os.getpid(), random.randrange(1 << 30)))
        (peer,), (client,) = pick_ports(1)
        proc = self.start("a1", "a1=127.0.0.1:%d" % peer, client, notify=manager.address)
        ready = manager.receive(START_S, proc)
        self.assertEqual((ready or {}).get("READY"), "1", self.log_of("a1"))
        self.stop(proc)
        self.assertEqual((manager.receive(5) or {}).get("STOPPING"), "1")

    def test_nothing_is_sent_when_the_client_port_cannot_be_bound(self):
        manager = self.listen()
        (peer,), (client,) = pick_ports(1)
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        taken.bind(("127.0.0.1", client))
        taken.listen(1)
        try:
            proc = self.start("t1", "t1=127.0.0.1:%d" % peer, client, notify=manager.address)
            self.assertEqual(proc.wait(timeout=START_S), 2, self.log_of("t1"))
        finally:
            taken.close()
        self.assertIsNone(manager.receive(0.5), "a node that never served must not say READY=1")
        self.assertIn("cannot listen for clients", self.log_of("t1"))

    def test_first_start_says_what_it_waits_for_then_ready(self):
        manager = self.listen()
        peers, clients = pick_ports(3)
        cluster = ",".join("w%d=127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(peers))
        first = self.start("w1", cluster, clients[0], notify=manager.address)
        waiting = manager.receive(START_S, first)
        self.assertIsNotNone(waiting, self.log_of("w1"))
        self.assertNotIn("READY", waiting, "w1 cannot serve before a majority is up")
        self.assertEqual(waiting.get("STATUS"),
                         "--initial-cluster-state new: waiting for a majority of the nodes")
        # --join-timeout (60 s by default) and 30 s more, in microseconds.
        self.assertEqual(waiting.get("EXTEND_TIMEOUT_USEC"), str(90 * 1000 * 1000))
        others = [self.start("w%d" % (i + 1), cluster, clients[i]) for i in (1, 2)]
        ready = manager.receive(START_S, first)
        self.assertEqual((ready or {}).get("READY"), "1", self.log_of("w1"))
        socket.create_connection(("127.0.0.1", clients[0]), timeout=2).close()
        # A node still in its first-start survey does not stop on SIGTERM: wait
        # until all three serve.
        for i, proc in enumerate([first] + others):
            self.wait_serving("w%d" % (i + 1), proc, clients[i])
        for proc in [first] + others:
            self.stop(proc)

    def test_unusable_or_unset_notify_socket_changes_nothing(self):
        for notify in (os.path.join(self.work, "nobody-listens"), None):
            (peer,), (client,) = pick_ports(1)
            name = "u1" if notify else "u2"
            proc = self.start(name, "%s=127.0.0.1:%d" % (name, peer), client, notify=notify)
            self.wait_serving(name, proc, client)
            self.stop(proc)
            warnings = self.log_of(name).count("cannot notify the service manager")
            self.assertEqual(warnings, 1 if notify else 0, self.log_of(name))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: sd_notify_test.py KVPAXOSD KVCTL")
    KVPAXOSD, KVCTL = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
