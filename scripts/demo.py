"""earshot end to end on LocalStack, narrated. Run by scripts/demo.sh, which installs what is
missing, builds earshot and starts LocalStack first.

1. creates the bucket `media`, the queue `uploads` (with a dead-letter queue) and the bucket
   notification that sends ObjectCreated events under audio/ to the queue;
2. makes three recordings: a clean voice message (espeak-ng), a jingle that is added to the
   local engine's reference library as known advertising, and a spoken ad pitch whose words
   ("car insurance") are added to the speech engine's dictionaries;
3. starts a callback listener on 127.0.0.1:9000 and `earshot serve` with config/earshot.toml;
4. uploads all three, waits for the callbacks, and shows what happened to each object;
5. stops what it started.
"""

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import boto3
import botocore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENDPOINT = "http://127.0.0.1:4566"
BUCKET = "media"
QUEUE = "uploads"
WORK = os.path.join(ROOT, ".earshot", "demo")
EARSHOT = os.path.join(ROOT, "target", "debug", "earshot")
TIMEOUT_SECS = 120

received = []
received_lock = threading.Condition()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with received_lock:
            received.append((self.headers.get("X-Signature"), body))
            received_lock.notify_all()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def step(text):
    print(f"\n==> {text}", flush=True)


def run(*args, **kwargs):
    subprocess.run(args, check=True, **kwargs)


def setup_storage(s3, sqs):
    step("Creating bucket 'media', queue 'uploads' (+ DLQ) and the ObjectCreated notification")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    dlq_url = sqs.create_queue(QueueName=QUEUE + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue_url)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audio/"}]}},
                }
            ]
        },
    )
    print(f"    queue: {queue_url}")


def make_recordings(env):
    step("Making three recordings")
    os.makedirs(WORK, exist_ok=True)
    speech_wav = os.path.join(WORK, "greeting.wav")
    clean = os.path.join(WORK, "greeting.mp3")
    jingle = os.path.join(WORK, "jingle.mp3")
    pitch_wav = os.path.join(WORK, "pitch.wav")
    pitch = os.path.join(WORK, "pitch.mp3")
    run("espeak-ng", "-w", speech_wav, "Hi, it's Sam. Running late, see you at eight.")
    run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", speech_wav, "-b:a", "64k", clean)
    run("espeak-ng", "-w", pitch_wav, "Hello there. Call now for cheap car insurance, this offer ends tonight.")
    run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", pitch_wav, "-b:a", "64k", pitch)
    run(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
        "aevalsrc=0.4*sin(2*PI*(523+262*floor(mod(4*t\\,4)))*t):s=44100:d=6", "-b:a", "128k", jingle,
    )
    print(f"    clean voice message: {clean}")
    print(f"    advert jingle:       {jingle}")
    print(f"    spoken ad pitch:     {pitch}")
    step("Adding the jingle to the local engine's reference library (as known advertising)")
    run(EARSHOT, "library", "add", "--scene", "ads", "--label", "banned-jingle", jingle, env=env)
    step("Adding \"car insurance\" to the speech engine's dictionaries (ads); it transcribes offline")
    run(EARSHOT, "dictionary", "add", "insurance_ads", "--scene", "ads", "car insurance", env=env)
    return clean, jingle, pitch


def main():
    s3, sqs = client("s3"), client("sqs")
    setup_storage(s3, sqs)
    env = dict(os.environ)
    env["EARSHOT_ENGINES__LOCAL__LIBRARY"] = os.path.join(WORK, "library")
    env["EARSHOT_ENGINES__SPEECH__DICTIONARIES"] = os.path.join(WORK, "dictionaries")
    env.setdefault("RUST_LOG", "info")
    env["EARSHOT_LOG_FORMAT"] = "human"
    if os.path.isdir(os.path.join(WORK, "dictionaries")):
        shutil.rmtree(os.path.join(WORK, "dictionaries"))
    clean, jingle, pitch = make_recordings(env)

    step("Starting a callback listener on 127.0.0.1:9000 and `earshot serve`")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 9000), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_path = os.path.join(WORK, "earshot.log")
    log = open(log_path, "w")
    daemon = subprocess.Popen([EARSHOT, "serve"], cwd=ROOT, env=env, stdout=log, stderr=log)
    print(f"    earshot serve (pid {daemon.pid}), log: {log_path}")

    ok = False
    try:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        clean_key = f"audio/greeting-{stamp}.mp3"
        jingle_key = f"audio/promo-{stamp}.mp3"
        pitch_key = f"audio/voicemail-{stamp}.mp3"
        step(f"Uploading s3://{BUCKET}/{clean_key}, s3://{BUCKET}/{jingle_key} and s3://{BUCKET}/{pitch_key}")
        s3.upload_file(clean, BUCKET, clean_key, ExtraArgs={"ContentType": "audio/mpeg"})
        s3.upload_file(jingle, BUCKET, jingle_key, ExtraArgs={"ContentType": "audio/mpeg"})
        s3.upload_file(pitch, BUCKET, pitch_key, ExtraArgs={"ContentType": "audio/mpeg"})

        step("Waiting for the three callbacks")
        deadline = time.time() + TIMEOUT_SECS
        with received_lock:
            while len(received) < 3 and time.time() < deadline:
                if daemon.poll() is not None:
                    break
                received_lock.wait(timeout=1)
            got = list(received)
        if len(got) < 3:
            print(f"    only {len(got)} callback(s) arrived; earshot's log:")
            print(open(log_path).read())
            return 1
        for signature, body in got:
            print(f"\n    POST /hook  X-Signature: {signature}")
            print("    " + json.dumps(json.loads(body), indent=2).replace("\n", "\n    "))

        step("What happened to each object")
        by_key = {json.loads(body)["data"]["key"]: json.loads(body) for _, body in got}
        for key in (clean_key, jingle_key, pitch_key):
            data = by_key[key]["data"]
            try:
                s3.head_object(Bucket=BUCKET, Key=key)
                status = 200
            except botocore.exceptions.ClientError as e:
                status = int(e.response["ResponseMetadata"]["HTTPStatusCode"])
            print(f"    {key}: result={data['result']} forbidden_status={data['forbidden_status']}; GET old key -> {status}")
            if data["forbidden_status"] == 2:
                backup = data["backup_key"]
                s3.head_object(Bucket=BUCKET, Key=backup)
                print(f"      moved to s3://{BUCKET}/{backup} (exists)")
            for segment in data.get("segments", []):
                if segment.get("term"):
                    print(f"      heard {segment['text']!r} at {segment['offset_secs']:.1f} s: term {segment['term']!r}")
        clean_ok = by_key[clean_key]["data"]["forbidden_status"] == 0
        jingle_ok = by_key[jingle_key]["data"]["forbidden_status"] == 2
        pitch_data = by_key[pitch_key]["data"]
        pitch_ok = pitch_data["forbidden_status"] == 2 and pitch_data["ads_info"].get("engine") == "speech"
        ok = clean_ok and jingle_ok and pitch_ok
        print(
            "\nThe clean message passed; the jingle (library) and the spoken pitch (dictionary) were blocked."
            if ok
            else "\nUNEXPECTED RESULT"
        )
    finally:
        step("Stopping earshot serve (SIGTERM) and the listener")
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = "killed"
        print(f"    earshot serve exited with {code}")
        server.shutdown()
        log.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
