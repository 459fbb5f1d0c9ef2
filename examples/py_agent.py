#!/usr/bin/python3
"""py_agent.py: a bulkhead agent in Python, from the .proto files alone.

Proves the wire protocol is language-neutral: this agent uses only Debian's
python3-zmq and python3-protobuf and the module protoc generates from
schemas/bulkhead.proto (the Makefile writes it to BUILD/py/bulkhead_pb2.py).

    py_agent.py --bus EP --bus-key FILE --key FILE send --to R --intent I --payload TEXT
    py_agent.py --bus EP --bus-key FILE --key FILE recv --count N

The session: a DEALER socket, CURVE client with the agent's own key, pinned
to the bus's public key; HELLO (version 1), then WELCOME names the agent the
bus authenticated. `send` prints the ACK for its message; `recv` prints each
DELIVER and acknowledges it (DeliveryAck) so the bus does not resend it.

Exit codes, as `bulkhead send|recv`: 0 success (delivered, queued, held),
1 denied or failed (the reason is printed), 2 bad usage.

Run it with /usr/bin/python3: a python3 elsewhere on PATH may not see
Debian's python3-zmq and python3-protobuf.
"""
import argparse
import os
import secrets
import stat
import sys
import time

PROTOCOL_VERSION = 1
VERDICTS = {0: "?", 1: "delivered", 2: "queued", 3: "held", 4: "denied"}
Z85_LEN = 40


class AgentError(Exception):
    """A failure with a stable code word (as bulkhead's) and a sentence."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


def fail(prog, err):
    sys.stderr.write("py_agent %s: %s: %s\n" % (prog, err.code, err.text))
    return 1


def import_modules(py_dir):
    """Imports zmq and the generated bulkhead_pb2, or says how to get them."""
    try:
        import zmq  # noqa: F401
        from google import protobuf  # noqa: F401
    except ImportError as e:
        raise AgentError("INVAL", "%s (this interpreter is %s; run with /usr/bin/python3, "
                         "which sees Debian's python3-zmq and python3-protobuf: "
                         "apt-get install python3-zmq python3-protobuf)" % (e, sys.executable))
    candidates = []
    if py_dir:
        candidates.append(py_dir)
    build = os.environ.get("BULKHEAD_BUILD")
    if build:
        candidates.append(os.path.join(build, "py"))
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.join(here, "..", "build", "release", "py"))
    for d in candidates:
        if os.path.isfile(os.path.join(d, "bulkhead_pb2.py")):
            sys.path.insert(0, d)
            break
    try:
        import bulkhead_pb2
    except ImportError as e:
        raise AgentError("INVAL", "cannot import bulkhead_pb2 (%s); looked in: %s. Build it with "
                         "`make` (it writes BUILD/py/bulkhead_pb2.py), then pass --py-dir "
                         "or set BULKHEAD_BUILD" % (e, ", ".join(candidates)))
    return zmq, bulkhead_pb2


def z85_valid(text):
    if len(text) != Z85_LEN:
        return False
    import zmq.utils.z85 as z85
    try:
        return len(z85.decode(text.encode("ascii"))) == 32
    except (ValueError, KeyError, UnicodeEncodeError):
        return False


def read_key_file(path, need_secret):
    """Reads a CZMQ zcert text file: `public-key = "..."`, `secret-key = "..."`.

    As bus_keys_load: a secret key file anyone but its owner can read is
    refused, since whoever reads it can act as this agent."""
    try:
        with open(path, "r", encoding="ascii", errors="replace") as f:
            st = os.fstat(f.fileno())
            lines = f.read(1 << 16).splitlines()
    except OSError as e:
        raise AgentError("KEY", "%s: %s" % (path, e.strerror))
    keys = {}
    for line in lines:
        name, sep, value = line.strip().partition("=")
        name = name.strip()
        if not sep or name not in ("public-key", "secret-key"):
            continue
        value = value.strip()
        if value.startswith('"'):
            value = value[1:].split('"', 1)[0]
        else:
            value = value.split()[0] if value.split() else ""
        keys[name] = value
    public = keys.get("public-key", "")
    secret = keys.get("secret-key", "")
    if not z85_valid(public):
        raise AgentError("KEY", "%s: no valid public-key line (make one with: bulkhead keygen NAME)"
                         % path)
    if need_secret and not secret:
        raise AgentError("KEY", "%s has no secret-key: an agent needs its secret key file "
                         "(NAME.key, not NAME.pub)" % path)
    if secret:
        if not z85_valid(secret):
            raise AgentError("KEY", "%s: secret-key is not 40 Z85 characters" % path)
        if st.st_mode & 0o077:
            raise AgentError("KEY", "%s: secret key file is readable by others (mode %03o); "
                             "run: chmod 600 %s" % (path, stat.S_IMODE(st.st_mode), path))
    return public, secret


def bus_public_key(key_or_path):
    if z85_valid(key_or_path) and not os.path.exists(key_or_path):
        return key_or_path
    return read_key_file(key_or_path, need_secret=False)[0]


class Agent:
    """One session with the bus: connect, HELLO, WELCOME, then frames."""

    def __init__(self, zmq, pb, endpoint, bus_key, key_file, timeout_ms, last_seq=0):
        self.zmq = zmq
        self.pb = pb
        self.timeout_ms = timeout_ms
        self.kept = []              # frames that arrived while waiting for an ACK
        server = bus_public_key(bus_key)
        public, secret = read_key_file(key_file, need_secret=True)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.curve_serverkey = server.encode("ascii")
        self.sock.curve_publickey = public.encode("ascii")
        self.sock.curve_secretkey = secret.encode("ascii")
        self.sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        self.sock.setsockopt(zmq.HANDSHAKE_IVL, 5000)
        self.sock.setsockopt(zmq.LINGER, 2000)     # let a last DeliveryAck leave
        self.sock.setsockopt(zmq.SNDTIMEO, 1000)   # at HWM: the bus is not reading
        try:
            self.sock.connect(endpoint)
        except zmq.ZMQError as e:
            self.close(linger=0)
            raise AgentError("CONNECT", "cannot connect to %s: %s" % (endpoint, e))
        try:
            self.welcome = self._hello(last_seq)
        except AgentError:
            self.close(linger=0)
            raise
        self.agent = self.welcome.agent

    def close(self, linger=None):
        """Closes the session; linger=0 drops what was not sent (a failed
        handshake must not keep the process waiting for a bus that is not
        there)."""
        if self.sock is not None:
            self.sock.close(linger=linger)
            self.sock = None
        self.ctx.term()

    def _send_frame(self, frame):
        try:
            self.sock.send(frame.SerializeToString())
        except self.zmq.Again:
            raise AgentError("TIMEOUT", "cannot send to the bus: it is not reading")
        except self.zmq.ZMQError as e:
            raise AgentError("CONNECT", "cannot send to the bus: %s" % e)

    def _decode(self, data):
        frame = self.pb.Frame()
        try:
            frame.ParseFromString(data)
        except Exception as e:  # protobuf raises DecodeError, or others on bad input
            raise AgentError("MALFORMED", "the bus sent a frame that does not decode: %s" % e)
        return frame

    def _hello(self, last_seq):
        """Says HELLO and waits for WELCOME, watching the handshake so that a
        key the bus refuses is reported as such, not as a timeout."""
        zmq = self.zmq
        monitor = self.sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        try:
            frame = self.pb.Frame()
            frame.hello.version = PROTOCOL_VERSION
            if last_seq:
                frame.hello.last_seq = last_seq
            frame.hello.software = "bulkhead-py/1"
            self._send_frame(frame)
            poller = zmq.Poller()
            poller.register(self.sock, zmq.POLLIN)
            poller.register(monitor, zmq.POLLIN)
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            while True:
                left = int((deadline - time.monotonic()) * 1000)
                if left <= 0:
                    raise AgentError("TIMEOUT", "no WELCOME from the bus within %d ms "
                                     "(is it running, and is the bus key right?)"
                                     % self.timeout_ms)
                ready = dict(poller.poll(left))
                if monitor in ready:
                    from zmq.utils.monitor import recv_monitor_message
                    event = recv_monitor_message(monitor)
                    if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                        raise AgentError("UNKNOWN", "the bus refused this key at the handshake "
                                         "(ZAP status %s): is the agent's public key in the "
                                         "policy?" % event["value"])
                    raise AgentError("CONNECT", "CURVE handshake with the bus failed "
                                     "(event %d): is the bus key right?" % event["event"])
                if self.sock in ready:
                    reply = self._decode(self.sock.recv())
                    body = reply.WhichOneof("body")
                    if body == "welcome":
                        return reply.welcome
                    if body == "error":
                        raise AgentError(reply.error.code, "bus refused HELLO: %s"
                                         % reply.error.reason)
                    # anything else before WELCOME is ignored
        finally:
            self.sock.disable_monitor()
            monitor.close(linger=0)

    def _read(self, timeout_ms):
        """The next frame from the socket within timeout_ms, or None."""
        if not self.sock.poll(max(timeout_ms, 0), self.zmq.POLLIN):
            return None
        return self._decode(self.sock.recv())

    def recv(self, timeout_ms):
        """The next frame (kept ones first), or None after timeout_ms."""
        if self.kept:
            return self.kept.pop(0)
        return self._read(timeout_ms)

    def send(self, fields, timeout_ms):
        """Sends one SEND and waits for its ACK (or an ERROR naming it)."""
        frame = self.pb.Frame()
        send = frame.send
        send.message_id = fields.pop("message_id", None) or secrets.token_hex(16)
        for name, value in fields.items():
            if value is None:
                continue
            if name == "causes":
                send.causes.extend(value)
            else:
                setattr(send, name, value)
        self._send_frame(frame)
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            reply = self._read(left) if left > 0 else None
            if reply is None:
                raise AgentError("TIMEOUT", "no ACK from the bus within %d ms" % timeout_ms)
            body = reply.WhichOneof("body")
            if body == "ack" and reply.ack.message_id == send.message_id:
                return reply
            if body == "error" and (not reply.error.HasField("message_id")
                                    or reply.error.message_id == send.message_id):
                return reply
            if len(self.kept) >= 100000:
                raise AgentError("BACKLOG", "100000 frames from the bus wait to be read")
            self.kept.append(reply)

    def ack(self, up_to):
        frame = self.pb.Frame()
        frame.delivery_ack.up_to = up_to
        self._send_frame(frame)


def positive_int(text):
    try:
        n = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a number" % text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="py_agent.py",
        description="A bulkhead agent in Python: sends messages and receives deliveries "
                    "through the bus, over CURVE, with this agent's own key.",
        epilog="Exit 0 on success (delivered, queued or held), 1 if denied or on error, "
               "2 on bad usage. Run with /usr/bin/python3.")
    p.add_argument("--bus", default=os.environ.get("BULKHEAD_BUS") or "tcp://127.0.0.1:7750",
                   metavar="EP", help="the bus endpoint (env BULKHEAD_BUS; default %(default)s)")
    p.add_argument("--bus-key", default=os.environ.get("BULKHEAD_BUS_KEY"), metavar="KEY",
                   help="the bus's public key: 40 Z85 characters or a file such as "
                        "DATA/bus.pub (env BULKHEAD_BUS_KEY)")
    p.add_argument("--key", default=os.environ.get("BULKHEAD_KEY"), metavar="FILE",
                   help="this agent's secret key file, NAME.key (env BULKHEAD_KEY)")
    p.add_argument("--timeout", type=positive_int, default=5000, metavar="MS",
                   help="how long to wait for the bus (default %(default)s)")
    p.add_argument("--py-dir", metavar="DIR",
                   help="where bulkhead_pb2.py is (default $BULKHEAD_BUILD/py, "
                        "then build/release/py)")
    p.add_argument("--last-seq", type=int, default=0, metavar="SEQ",
                   help="last DELIVER seq this agent processed (HELLO; default: the bus's cursor)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("send", help="send one message and print the bus's verdict",
                       description="Sends one message and prints the ACK: "
                       "'delivered|queued|held|denied seq=N class=C code=WORD: sentence'.")
    s.add_argument("--to", required=True, metavar="AGENT", help="recipient")
    s.add_argument("--intent", required=True, metavar="CLASS",
                   help="what this is, as the sender labels it (the bus decides the class)")
    s.add_argument("--payload", default=None, metavar="TEXT", help="the content")
    s.add_argument("--id", default=None, metavar="ID",
                   help="message id (default random); a resent id is not delivered twice")
    s.add_argument("--action", default=None, metavar="NAME", help="e.g. transfer.create")
    s.add_argument("--resource", default=None, metavar="TEXT", help="what it acts on")
    s.add_argument("--content-type", default=None, metavar="T", help="e.g. text/plain")
    s.add_argument("--untrusted", default=None, metavar="SRC",
                   help="the content came from outside (SRC names where)")
    s.add_argument("--cause", type=positive_int, action="append", default=[], metavar="SEQ",
                   help="log sequence of a message that caused this one (repeatable)")
    s.add_argument("--justification", default=None, metavar="TEXT",
                   help="what you are about to do and why (approvers read it)")
    s.add_argument("--tool", default=None, metavar="NAME", help="the tool that produced it")

    r = sub.add_parser("recv", help="receive messages, print and acknowledge them",
                       description="Prints one line per DELIVER: 'seq=N from=SENDER intent=I "
                       "class=C [RESTRICTED] id=ID payload=TEXT' and acknowledges it.")
    r.add_argument("--count", type=positive_int, default=0, metavar="N",
                   help="stop after N messages (default: until --wait passes with none)")
    r.add_argument("--wait", type=positive_int, default=2000, metavar="MS",
                   help="stop after MS with no message (default %(default)s)")
    r.add_argument("--no-ack", action="store_true",
                   help="do not acknowledge (they will be delivered again)")
    args = p.parse_args(argv)
    if not args.key or not args.bus_key:
        p.error("need --key FILE (the agent's secret key) and --bus-key KEY "
                "(the bus's public key, e.g. DATA/bus.pub)")
    return args


def cmd_send(agent, pb, args):
    fields = {
        "message_id": args.id,
        "recipient": args.to,
        "intent": args.intent,
        "action": args.action,
        "resource": args.resource,
        "content_type": args.content_type,
        "justification": args.justification,
        "tool": args.tool,
        "causes": args.cause or None,
    }
    if args.payload is not None:
        fields["payload"] = args.payload.encode("utf-8")
    if args.untrusted is not None:
        fields["provenance"] = pb.PROVENANCE_UNTRUSTED
        fields["source"] = args.untrusted
    reply = agent.send(fields, args.timeout)
    if reply.WhichOneof("body") == "error":
        print("error code=%s: %s" % (reply.error.code, reply.error.reason))
        return 1
    ack = reply.ack
    line = "%s seq=%d class=%s%s code=%s: %s" % (
        VERDICTS.get(ack.verdict, "?"), ack.seq, ack.intent_class or "-",
        " RESTRICTED" if ack.restricted else "", ack.code, ack.reason)
    if ack.approval_id:
        line += " approval=%s" % ack.approval_id
    print(line, flush=True)
    return 1 if ack.verdict == pb.VERDICT_DENIED else 0


def cmd_recv(agent, args):
    got = 0
    while args.count == 0 or got < args.count:
        frame = agent.recv(args.wait)
        if frame is None:
            break
        body = frame.WhichOneof("body")
        if body == "error":
            sys.stderr.write("py_agent recv: bus says %s: %s\n"
                             % (frame.error.code, frame.error.reason))
            continue
        if body != "deliver":
            continue
        d = frame.deliver
        approvers = ",".join(a.approver for a in d.approvals)
        print("seq=%d from=%s intent=%s class=%s%s id=%s%s payload=%s" % (
            d.seq, d.sender, d.intent, d.intent_class or "-",
            " RESTRICTED" if d.restricted else "", d.message_id,
            " approved-by=" + approvers if approvers else "",
            d.payload.decode("utf-8", errors="replace")), flush=True)
        got += 1
        if not args.no_ack:
            agent.ack(d.seq)
    if args.count and got < args.count:
        sys.stderr.write("py_agent recv: got %d of %d messages within --wait %d ms\n"
                         % (got, args.count, args.wait))
        return 1
    return 0


def main(argv):
    args = parse_args(argv)
    prog = args.command
    try:
        zmq, pb = import_modules(args.py_dir)
        agent = Agent(zmq, pb, args.bus, args.bus_key, args.key, args.timeout, args.last_seq)
    except AgentError as e:
        return fail(prog, e)
    try:
        sys.stderr.write("py_agent: connected as '%s' (policy %s)\n"
                         % (agent.agent, agent.welcome.policy_hash[:16]))
        if prog == "send":
            return cmd_send(agent, pb, args)
        return cmd_recv(agent, args)
    except AgentError as e:
        return fail(prog, e)
    finally:
        agent.close()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
