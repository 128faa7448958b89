"""A soak with faults (bench/soak.sh runs it with LocalStack up): two `earshot serve` daemons on one
SQS queue judge a stream of uploads while S3 and SQS go away, the callback receiver refuses, a
daemon is killed with SIGKILL and S3 answers slowly; then an exact accounting of what happened
to every upload. Nothing here is timed: the run waits for evidence (job records) and then counts.

The daemons reach LocalStack through a TCP gate in this process (open, closed: new connections
dropped and relayed ones cut, or slow: every relayed chunk held back); uploads and the bucket's
notifications go to LocalStack directly, so an outage is the daemons' alone, as when a network
between a daemon and its storage fails.

Uploads (default 2,400 events: about 2,050 objects and 360 duplicate events; the audio is made
here, in pure Python and with ffmpeg):
  clean     melodies no library holds
  banned    excerpts of the library's references, as uploaded
  altered   excerpts re-encoded to MP3, 3 % faster, with noise
  bad       corrupt bytes, truncated MP3, empty files, a WAV named .mp3, files over the size
            limit, recordings over the duration limit
  dup       the S3 event of an object already uploaded, sent to the queue again
plus events for objects that do not exist, and queue messages that are no event at all.

The accounting (printed as a table, and written to .earshot/soak/report.json):
  judged            uploads with a job record (or parked with a reason: counted apart)
  called back once  uploads whose callback reached the receiver exactly once (after replaying
                    what was dead-lettered with `earshot callbacks replay`)
  called back twice each with why (a daemon killed between a callback and its record)
  lost              uploads whose bytes are neither at their key nor in their backup (SHA-256)
  blocked twice     uploads with more than one block record
"""

import argparse
import array
import calendar
import hashlib
import http.server
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import wave

import boto3
import botocore.config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCALSTACK = ("127.0.0.1", 4566)
ENDPOINT = "http://127.0.0.1:4566"
WORK = os.path.join(ROOT, ".earshot", "soak")
EARSHOT = os.path.join(ROOT, "target", "debug", "earshot")
BUCKET = "soak"
QUEUE = "soak-uploads"
PREFIX = "audio/"
BACKUP = "audit_freeze_backup/increment_audit/"
STATE = "audit_freeze_backup/earshot/"
SEED = "soak-seed"
RATE = 16000
MAX_OBJECT_BYTES = 3 * 1024 * 1024
MAX_DURATION_SECS = 60


def log(text):
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---------------------------------------------------------------------------------------------
# The gate between the daemons and LocalStack.


class Gate:
    """A TCP relay to LocalStack: open, closed (cuts relayed connections, drops new ones) or
    slow (holds every relayed chunk back by `delay` seconds)."""

    def __init__(self):
        self.mode = "open"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.conns = set()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode, delay=0.0):
        with self.lock:
            self.mode, self.delay = mode, delay
            cut = list(self.conns) if mode == "closed" else []
        for conn in cut:
            for s in conn:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        log(f"gate {mode}" + (f" ({delay:.1f} s a chunk)" if mode == "slow" else ""))

    def _accept(self):
        while True:
            inbound, _ = self.listener.accept()
            with self.lock:
                closed = self.mode == "closed"
            if closed:
                inbound.close()
                continue
            try:
                outbound = socket.create_connection(LOCALSTACK)
            except OSError:
                inbound.close()
                continue
            pair = (inbound, outbound)
            with self.lock:
                self.conns.add(pair)
            threading.Thread(target=self._pipe, args=(inbound, outbound, pair, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(outbound, inbound, pair, True), daemon=True).start()

    def _pipe(self, src, dst, pair, answers):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                with self.lock:
                    delay = self.delay if (answers and self.mode == "slow") else 0.0
                if delay:
                    time.sleep(delay)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard(pair)
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ---------------------------------------------------------------------------------------------
# The callback receiver.


class Receiver:
    """Records every callback; answers 503 while refusing."""

    def __init__(self):
        self.refusing = False
        self.lock = threading.Lock()
        self.delivered = []  # (time, trace_id, key, code, signature ok)
        self.refused = 0
        receiver = self

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    refusing = receiver.refusing
                    if refusing:
                        receiver.refused += 1
                if refusing:
                    self.send_response(503)
                    self.end_headers()
                    return
                good = self.headers.get("X-Signature", "") == hashlib.sha256(SEED.encode() + body).hexdigest()
                try:
                    data = json.loads(body)["data"]
                    entry = (time.time(), data["trace_id"], data.get("key"), json.loads(body)["code"], good)
                except (ValueError, KeyError, TypeError):
                    entry = (time.time(), None, None, None, good)
                with receiver.lock:
                    receiver.delivered.append(entry)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refuse(self, refusing):
        with self.lock:
            self.refusing = refusing
        log("callback receiver " + ("refusing (503)" if refusing else "accepting"))


# ---------------------------------------------------------------------------------------------
# Audio.

SCALE = [220.0 * 2 ** (n / 12) for n in (0, 2, 3, 5, 7, 8, 10, 12, 14, 15, 17, 19, 20, 22, 24)]


def melody(seed, secs):
    """A mono 16 kHz melody of notes with harmonics, different for every seed."""
    rng = random.Random(seed)
    out = array.array("h")
    while len(out) < secs * RATE:
        freq = rng.choice(SCALE) * rng.choice((1, 1, 2))
        length = int(RATE * rng.uniform(0.12, 0.4))
        amp = rng.uniform(0.2, 0.45)
        for i in range(length):
            t = i / RATE
            env = min(1.0, i / 200) * math.exp(-3 * t)
            v = math.sin(2 * math.pi * freq * t) + 0.5 * math.sin(4 * math.pi * freq * t) + 0.25 * math.sin(6 * math.pi * freq * t)
            out.append(int(32767 * amp * env * v / 1.75))
    return out[: secs * RATE]


def write_wav(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_audio(count):
    """The files to upload, as (kind, path) of each distinct recording; uploads reuse them under
    many keys."""
    audio = os.path.join(WORK, "audio")
    library = os.path.join(WORK, "references")
    for d in (audio, library):
        os.makedirs(d, exist_ok=True)
    refs = []
    for n in range(10):
        path = os.path.join(library, f"song-{n}.wav")
        if not os.path.exists(path):
            write_wav(path, melody(f"reference-{n}", 40))
        refs.append(path)
    made = {"clean": [], "banned": [], "altered": [], "bad": []}
    pool = max(20, count // 20)
    for n in range(pool):
        path = os.path.join(audio, f"clean-{n}.wav" if n % 2 else f"clean-{n}.mp3")
        if not os.path.exists(path):
            wav = os.path.join(audio, f"clean-{n}.src.wav")
            write_wav(wav, melody(f"clean-{n}", 4 + n % 4))
            if path.endswith(".mp3"):
                ffmpeg("-i", wav, "-b:a", "64k", path)
                os.remove(wav)
            else:
                os.rename(wav, path)
        made["clean"].append(path)
    for n, ref in enumerate(refs):
        start = 5 + 2 * n % 15
        banned = os.path.join(audio, f"banned-{n}.wav")
        altered = os.path.join(audio, f"altered-{n}.mp3")
        if not os.path.exists(banned):
            ffmpeg("-i", ref, "-ss", str(start), "-t", "15", banned)
        if not os.path.exists(altered):
            ffmpeg("-ss", str(start), "-t", "15", "-i", ref, "-f", "lavfi", "-i",
                   "anoisesrc=a=0.01:d=15:r=16000", "-filter_complex",
                   "[0:a]atempo=1.03,volume=0.8[a];[a][1:a]amix=inputs=2:duration=first", "-b:a", "64k", altered)
        made["banned"].append(banned)
        made["altered"].append(altered)
    rng = random.Random(7)
    bad = {
        "corrupt.mp3": bytes(rng.randrange(256) for _ in range(20000)),
        "empty.wav": b"",
    }
    with open(made["clean"][0], "rb") as f:
        mp3 = f.read()
    bad["truncated.mp3"] = mp3[: len(mp3) // 3]
    with open(made["clean"][1], "rb") as f:
        bad["wav-named.mp3"] = f.read()
    for name, data in bad.items():
        path = os.path.join(audio, name)
        with open(path, "wb") as f:
            f.write(data)
        made["bad"].append(path)
    oversize = os.path.join(audio, "oversize.wav")
    if not os.path.exists(oversize):
        ffmpeg("-f", "lavfi", "-i", "anoisesrc=a=0.3:d=100:r=16000", "-ac", "1", oversize)
    overlong = os.path.join(audio, "overlong.mp3")
    if not os.path.exists(overlong):
        ffmpeg("-f", "lavfi", "-i", "sine=f=330:d=90:r=8000", "-ac", "1", "-b:a", "8k", overlong)
    made["bad"] += [oversize, overlong]
    return refs, made


# ---------------------------------------------------------------------------------------------
# LocalStack and the daemons.


def client(service, endpoint=ENDPOINT):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 10, "mode": "standard"}),
    )


def empty_bucket(s3):
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def setup_storage(s3, sqs):
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    empty_bucket(s3)
    dlq = sqs.create_queue(QueueName=QUEUE + "-dlq")["QueueUrl"]
    sqs.purge_queue(QueueUrl=dlq)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=QUEUE, Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "8"}),
    })["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue)
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{
            "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}},
        }]
    })
    return queue, dlq


def write_config(gate_port, receiver_port):
    path = os.path.join(WORK, "earshot.toml")
    with open(path, "w") as f:
        f.write(f"""[s3]
endpoint_url = "http://127.0.0.1:{gate_port}"
region = "us-east-1"
force_path_style = true
access_key_id = "test"
secret_access_key = "test"

[[rules]]
id = "soak"
bucket = "{BUCKET}"
prefix = "{PREFIX}"
suffixes = ["mp3", "wav"]
scenes = ["porn", "ads", "illegal"]
engine = ["local"]
block = {{ enabled = true, mode = "move", review = "machine", min_score = 90, learn = false }}
callback = {{ url = "http://127.0.0.1:{receiver_port}/hook", seed = "{SEED}", max_attempts = 4, initial_backoff_ms = 1000 }}

[engines.local]
type = "local"
library = "{os.path.join(WORK, 'library')}"
refresh_secs = 30

[sources.sqs]
queue_url = "http://127.0.0.1:{gate_port}/000000000000/{QUEUE}"
endpoint_url = "http://127.0.0.1:{gate_port}"
max_concurrency = 4
wait_time_secs = 5
visibility_timeout_secs = 30

[limits]
max_object_bytes = {MAX_OBJECT_BYTES}
max_duration_secs = {MAX_DURATION_SECS}
""")
    return path


class Daemon:
    def __init__(self, name, config):
        self.name, self.config, self.proc, self.exits = name, config, None, []
        self.killed = 0

    def start(self, pause_at=None):
        logf = open(os.path.join(WORK, f"{self.name}.log"), "a")
        env = dict(os.environ, RUST_LOG="info", EARSHOT_LOG_FORMAT="json")
        if pause_at:
            env["EARSHOT_PAUSE_AT"] = pause_at
        self.proc = subprocess.Popen([EARSHOT, "--config", self.config, "serve"], cwd=WORK,
                                     env=env, stdout=logf, stderr=logf)
        log(f"{self.name} started (pid {self.proc.pid})")

    def kill_in_a_move(self, timeout=120):
        """SIGKILL while a move is between its copy and its delete: the daemon pauses there
        (`EARSHOT_PAUSE_AT=move-copied:…`), and the kill comes at its next pause. Returns the keys
        whose moves were cut."""
        path = os.path.join(WORK, f"{self.name}.log")
        with open(path) as f:
            f.seek(0, os.SEEK_END)
            deadline = time.time() + timeout
            while time.time() < deadline:
                line = f.readline()
                if not line:
                    time.sleep(0.05)
                    continue
                if '"point":"move-copied"' in line:
                    break
        self.kill()
        cut, done = set(), set()
        with open(path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                key = entry.get("span", {}).get("key")
                if entry.get("point") == "move-copied":
                    cut.add(key)
                elif entry.get("message", "").startswith("Blocked."):
                    done.add(key)
        return sorted(cut - done)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.killed += 1
        log(f"{self.name} killed with SIGKILL")

    def check(self):
        """An exit other than our kills."""
        if self.proc and self.proc.poll() is not None:
            self.exits.append(self.proc.returncode)
            log(f"{self.name} EXITED with {self.proc.returncode}; starting it again")
            self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.exits.append("hung at stop")
            if self.proc.returncode not in (0, None):
                self.exits.append(self.proc.returncode)


def earshot(config, *args):
    return subprocess.run([EARSHOT, "--config", config, *args], cwd=WORK, capture_output=True, text=True)


# ---------------------------------------------------------------------------------------------
# The run.


def s3_event(key, size, etag, sequencer):
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": {"key": key, "size": size, "eTag": etag, "sequencer": sequencer}},
    }]})


def plan_uploads(count, made, rng):
    """(kind, source path) per upload, shuffled, with the banned ones also bunched around the
    kill so that it lands among moves."""
    kinds = []
    shares = [("clean", 0.55), ("banned", 0.12), ("altered", 0.12), ("bad", 0.06), ("dup", 0.15)]
    for kind, share in shares:
        kinds += [kind] * int(count * share)
    kinds += ["clean"] * (count - len(kinds))
    rng.shuffle(kinds)
    plan = []
    for kind in kinds:
        plan.append((kind, None if kind == "dup" else rng.choice(made[kind])))
    return plan


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=2400, help="events sent: uploads and duplicate events")
    parser.add_argument("--rate", type=float, default=4.0, help="uploads a second")
    parser.add_argument("--settle", type=int, default=1800, help="seconds to wait for the last judgements")
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    for name in ("a.log", "b.log", "report.json"):
        if os.path.exists(os.path.join(WORK, name)):
            os.remove(os.path.join(WORK, name))
    shutil.rmtree(os.path.join(WORK, "library"), ignore_errors=True)
    rng = random.Random(2026)
    log("making audio ...")
    refs, made = make_audio(args.uploads)
    s3, sqs = client("s3"), client("sqs")
    queue, dlq = setup_storage(s3, sqs)
    gate, receiver = Gate(), Receiver()
    config = write_config(gate.port, receiver.port)
    for n, ref in enumerate(refs):
        r = earshot(config, "library", "add", "--scene", "illegal", "--label", f"banned-song-{n}", ref)
        if r.returncode != 0:
            sys.exit(f"library add failed: {r.stderr}")
    daemons = [Daemon("a", config), Daemon("b", config)]
    # Daemon a dwells 2 s in each move between its copy and its delete, so that its kill lands
    # there; started again, it does not.
    daemons[0].start(pause_at="move-copied:2")
    daemons[1].start()
    cut_moves = []

    duration = args.uploads / args.rate
    faults = sorted([
        (0.12 * duration, "s3+sqs unreachable", lambda: gate.set("closed"), 30),
        (0.30 * duration, "callback receiver refusing", lambda: receiver.refuse(True), 120),
        (0.45 * duration, "S3 slow (1.5 s a chunk)", lambda: gate.set("slow", 1.5), 40),
        (0.62 * duration, "daemon a killed (SIGKILL) in a move", lambda: cut_moves.extend(daemons[0].kill_in_a_move()), 5),
        (0.80 * duration, "s3+sqs unreachable", lambda: gate.set("closed"), 50),
    ], key=lambda f: f[0])
    ends = {
        "s3+sqs unreachable": lambda: gate.set("open"),
        "callback receiver refusing": lambda: receiver.refuse(False),
        "S3 slow (1.5 s a chunk)": lambda: gate.set("open"),
        "daemon a killed (SIGKILL) in a move": lambda: daemons[0].start(),
    }
    injected = []
    timeline = []  # (start, end, name)

    uploads = {}  # key -> {kind, sha256, size, etag}
    extras = {"missing": [], "malformed": 0}
    plan = plan_uploads(args.uploads, made, rng)
    start = time.time()
    pending_faults = list(faults)
    active = []
    n = 0
    for kind, source in plan:
        now = time.time() - start
        while pending_faults and pending_faults[0][0] <= now:
            at, name, begin, secs = pending_faults.pop(0)
            if name.startswith("daemon"):
                # Moves to be in: a burst of banned uploads first.
                for m in range(12):
                    src = made["banned"][m % len(made["banned"])]
                    key = f"{PREFIX}burst/{m:03d}-{os.path.basename(src)}"
                    uploads[key] = upload(s3, key, src, "banned")
            begin()
            injected.append(name)
            active.append((time.time() - start + secs, name))
            timeline.append((round(time.time() - start), round(time.time() - start + secs), name))
        for entry in list(active):
            if entry[0] <= now:
                ends[entry[1]]()
                active.remove(entry)
        for d in daemons:
            if d.proc.poll() is not None and not any(a[1].startswith("daemon") for a in active):
                d.check()
        if kind == "dup":
            if uploads:
                key = rng.choice(sorted(uploads))
                u = uploads[key]
                sqs.send_message(QueueUrl=queue, MessageBody=s3_event(key, u["size"], u["etag"], "%016X" % n))
                u["dups"] += 1
        else:
            key = f"{PREFIX}{kind}/{n:05d}-{os.path.basename(source)}"
            uploads[key] = upload(s3, key, source, kind)
        n += 1
        if n % 200 == 0:
            log(f"{n} uploads sent")
        delay = start + n / args.rate - time.time()
        if delay > 0:
            time.sleep(delay)
    for m in range(5):
        key = f"{PREFIX}missing/{m}.mp3"
        sqs.send_message(QueueUrl=queue, MessageBody=s3_event(key, 1000, "0" * 32, "%016X" % (n + m)))
        extras["missing"].append(key)
    for m in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=["not json", "{\"Records\": 5}", "{}"][m])
        extras["malformed"] += 1
    while active:
        active.sort()
        wait = active[0][0] - (time.time() - start)
        if wait > 0:
            time.sleep(wait)
        ends[active[0][1]]()
        active.pop(0)
    log(f"all {len(uploads)} objects uploaded in {time.time() - start:.0f} s; waiting for every judgement")

    deadline = time.time() + args.settle
    while True:
        for d in daemons:
            d.check()
        records = state_objects(s3, "jobs/")
        parked = state_objects(s3, "dead-jobs/")
        judged = {r["body"]["data"]["key"] for r in records.values() if "body" in r}
        parked_keys = {p.get("job", {}).get("key") for p in parked.values()}
        missing = [k for k in uploads if k not in judged and k not in parked_keys]
        if not missing:
            break
        if time.time() > deadline:
            log(f"{len(missing)} uploads still unjudged at the deadline, e.g. {missing[:3]}")
            break
        log(f"{len(uploads) - len(missing)}/{len(uploads)} judged or parked")
        time.sleep(15)
    # Dead-lettered callbacks are replayed once every job is done.
    letters = state_objects(s3, "dead-letters/")
    log(f"{len(letters)} callbacks dead-lettered; replaying them")
    replay = earshot(config, "callbacks", "replay", f"s3://{BUCKET}")
    log(f"earshot callbacks replay: exit {replay.returncode}; {replay.stderr.strip().splitlines()[-1:] }")
    # The malformed messages reach the dead-letter queue after their redrive count.
    dlq_deadline = time.time() + 600
    in_dlq = 0
    while time.time() < dlq_deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        in_dlq = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        if in_dlq >= extras["malformed"]:
            break
        time.sleep(10)
    for d in daemons:
        d.stop()
    extras["cut_moves"] = cut_moves
    account(s3, sqs, queue, dlq, uploads, extras, daemons, receiver, injected, timeline, letters, replay, start)


def upload(s3, key, source, kind):
    with open(source, "rb") as f:
        data = f.read()
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"].strip('"')
    return {"kind": kind, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "etag": etag, "dups": 0, "source": os.path.basename(source)}


def state_objects(s3, sub):
    found = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET, Prefix=STATE + sub):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            try:
                found[o["Key"]] = json.loads(body)
            except ValueError:
                found[o["Key"]] = {"unreadable": True}
    return found


def keys_under(s3, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def sha_of(s3, key):
    try:
        return hashlib.sha256(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest()
    except s3.exceptions.NoSuchKey:
        return None


def window_share(daemons, receiver):
    """How exposed a job is to being called back twice by a kill: per job, the time from its
    callback's arrival here to its `Job finished.` line (the record and the result row written;
    an upper bound of the window between callback and record), and the share of each daemon's
    time inside such windows, which is the chance a kill at a random moment lands in one."""
    arrived = {}
    for when, trace_id, _key, _code, _good in receiver.delivered:
        arrived.setdefault(trace_id, when)
    windows, share = [], {}
    for d in daemons:
        spans, first, last = [], None, None
        with open(os.path.join(WORK, f"{d.name}.log")) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                ts = entry.get("timestamp", "")
                try:
                    at = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:-1])
                except ValueError:
                    continue
                first = at if first is None else first
                last = at
                trace_id = entry.get("span", {}).get("trace_id")
                if entry.get("message") == "Job finished." and trace_id in arrived and arrived[trace_id] <= at:
                    spans.append((arrived[trace_id], at))
                    windows.append(at - arrived[trace_id])
        covered, end = 0.0, None
        for a, b in sorted(spans):
            if end is None or a > end:
                covered += b - a
                end = b
            elif b > end:
                covered += b - end
                end = b
        if first is not None and last > first:
            share[d.name] = covered / (last - first)
    windows.sort()
    pick = lambda q: round(1000 * windows[min(len(windows) - 1, int(q * len(windows)))]) if windows else None
    return {"jobs": len(windows), "median_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1.0),
            "share_of_daemon_time": {k: round(v, 4) for k, v in share.items()}}


def account(s3, sqs, queue, dlq, uploads, extras, daemons, receiver, injected, timeline, letters, replay, start):
    records = state_objects(s3, "jobs/")
    parked = state_objects(s3, "dead-jobs/")
    letters_after = state_objects(s3, "dead-letters/")
    by_key = {}
    for r in records.values():
        data = r.get("body", {}).get("data", {})
        by_key.setdefault(data.get("key"), []).append(r)
    parked_by_key = {}
    for p in parked.values():
        parked_by_key.setdefault(p.get("job", {}).get("key"), []).append(p)
    callbacks = {}
    for when, trace_id, key, code, good in receiver.delivered:
        callbacks.setdefault(key, []).append((when - start, trace_id, code, good))
    block_count = {}
    for b in state_objects(s3, "blocks/").values():
        block_count[b.get("key")] = block_count.get(b.get("key"), 0) + 1
    kills = [(s, e) for s, e, name in timeline if name.startswith("daemon")]

    rows = {"uploads": len(uploads), "judged": 0, "parked (with a reason)": 0, "parked without a reason": 0,
            "unjudged": 0, "called back once": 0, "called back twice": 0, "not called back": 0,
            "bad signature": 0, "blocked (moved)": 0, "lost": 0, "blocked twice": 0}
    twice, lost, unjudged, not_called = [], [], [], []
    by_kind = {}
    for key, u in uploads.items():
        kind = by_kind.setdefault(u["kind"], {"uploads": 0, "judged": 0, "blocked": 0, "errors": 0})
        kind["uploads"] += 1
        recs = by_key.get(key, [])
        if recs:
            rows["judged"] += 1
            kind["judged"] += 1
            rec = recs[0]
            if rec["body"]["code"] != 0:
                kind["errors"] += 1
        elif key in parked_by_key:
            p = parked_by_key[key][0]
            rows["parked (with a reason)" if p.get("reason") else "parked without a reason"] += 1
        else:
            rows["unjudged"] += 1
            unjudged.append(key)
        got = callbacks.get(key, [])
        if len(got) == 1:
            rows["called back once"] += 1
        elif len(got) > 1:
            rows["called back twice"] += 1
            times = [g[0] for g in got]
            why = "a daemon killed between its callback and its record" if any(
                s - 60 <= times[0] <= e + 60 for s, e in kills) else "outside any kill"
            twice.append({"key": key, "times": [round(t) for t in times], "why": why})
        else:
            rows["not called back"] += 1
            not_called.append(key)
        rows["bad signature"] += sum(1 for g in got if not g[3])
        # Nothing lost: the bytes are at the key, or (when moved) in the backup.
        moved = recs and recs[0]["body"]["data"].get("forbidden_status") == 2
        if moved:
            rows["blocked (moved)"] += 1
            kind["blocked"] += 1
            where = recs[0]["body"]["data"].get("backup_key") or BACKUP + key
            if sha_of(s3, where) != u["sha256"]:
                lost.append(key)
            if sha_of(s3, key) is not None:
                lost.append(key + " (still at its key after a move)")
        elif sha_of(s3, key) != u["sha256"]:
            lost.append(key)
        if block_count.get(key, 0) > 1:
            rows["blocked twice"] += 1
    rows["lost"] = len(lost)
    dlq_count = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
    report = {
        "rows": rows, "by_kind": by_kind, "faults": timeline, "callbacks_refused_503": receiver.refused,
        "dead_lettered_then_replayed": len(letters), "dead_letters_left": len(letters_after),
        "replay_exit": replay.returncode, "duplicate_events_sent": sum(u["dups"] for u in uploads.values()),
        "missing_object_events": {k: [r["body"]["code"] for r in by_key.get(k, [])] for k in extras["missing"]},
        "malformed_messages": extras["malformed"], "dead_letter_queue": dlq_count,
        "daemon_exits_other_than_kills": [(d.name, d.exits) for d in daemons if d.exits],
        "kills": sum(d.killed for d in daemons),
        "callback_to_record_window": window_share(daemons, receiver),
        "moves_cut_by_the_kill": {k: {"judged": len(by_key.get(k, [])), "callbacks": len(callbacks.get(k, [])),
                                      "moved": bool(by_key.get(k)) and by_key[k][0]["body"]["data"].get("forbidden_status") == 2}
                                  for k in extras["cut_moves"]},
        "twice": twice, "lost": lost, "unjudged": unjudged[:20], "not_called_back": not_called[:20],
        "parked": [{"key": k, "reason": v[0].get("reason")} for k, v in parked_by_key.items()],
    }
    with open(os.path.join(WORK, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print()
    print("| what | count |")
    print("|---|---|")
    print(f"| uploads | {rows['uploads']} (+{report['duplicate_events_sent']} duplicate events, "
          f"{len(extras['missing'])} events of missing objects, {extras['malformed']} malformed messages) |")
    print(f"| faults injected | {len(timeline)}: " + "; ".join(f"{n} {s}-{e} s" for s, e, n in timeline) + " |")
    for name, value in rows.items():
        if name != "uploads":
            print(f"| {name} | {value} |")
    print(f"| callbacks refused (503) while refusing | {receiver.refused} |")
    print(f"| dead-lettered, then replayed | {len(letters)} (left after replay: {len(letters_after)}) |")
    print(f"| daemon exits other than the kills | {len(report['daemon_exits_other_than_kills'])} |")
    print(f"| malformed messages in the queue's DLQ | {dlq_count} of {extras['malformed']} |")
    print(f"| moves cut by the kill (between copy and delete) | {len(extras['cut_moves'])}: "
          + ", ".join(f"{k} judged {v['judged']}x, moved {v['moved']}, called back {v['callbacks']}x"
                      for k, v in report["moves_cut_by_the_kill"].items()) + " |")
    w = report["callback_to_record_window"]
    print(f"| callback-to-record window | median {w['median_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms "
          f"over {w['jobs']} jobs; share of daemon time inside one: {w['share_of_daemon_time']} |")
    print()
    print("by kind:", json.dumps(by_kind))
    for t in twice:
        print("called back twice:", json.dumps(t))
    print("missing-object events:", json.dumps(report["missing_object_events"]))
    print(f"report: {os.path.join(WORK, 'report.json')}")
    ok = (rows["lost"] == 0 and rows["unjudged"] == 0 and rows["parked without a reason"] == 0
          and rows["blocked twice"] == 0 and rows["not called back"] == 0 and rows["bad signature"] == 0
          and not report["daemon_exits_other_than_kills"] and not letters_after
          and all(t["why"] != "outside any kill" for t in twice))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
