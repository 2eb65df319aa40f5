#!/usr/bin/env python3
"""File-transfer memory benchmark (issue 16, "Done when"), loopback only, bounded.

Starts fleet-edge in embedded mode on 127.0.0.1 with a fresh data dir, enrolls 20 agents, then:

1. uploads: the 20 agents upload 64 MiB each at once, as the agent's uploader does (begin,
   4 MiB chunks with X-Chunk-SHA2, complete with the transit hash; 429s retried after 50 ms).
   Bound: peak RSS <= baseline + 20 x 4 MiB + 16 MiB.
2. downloads: the operator places a 256 MiB file for the 20 agents (`fleet-edge files send`);
   20 clients fetch it at once (GET /api/fleet/file/{id}), 19 reading as fast as they can and
   one at 64 KiB/s (a small receive buffer, so the server's socket pushes back). The phase ends
   when the 19 are done (the slow one is then dropped). Bound: peak RSS <= baseline + 32 MiB.
   The server is restarted on the same data dir before this phase, so its baseline is not the
   upload phase's high-water mark that the allocator keeps.

RSS is VmRSS of the server process from /proc, sampled every 20 ms; each baseline is taken
right before its phase, the server idle. Usage:

    cargo build --locked            # the debug binary (no release builds on the shared box)
    python3 benches/files/run.py [path/to/fleet-edge]
"""

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1024 * 1024
CHUNK = 4 * MIB
AGENTS = 20
UPLOAD_SIZE = 64 * MIB
DOWNLOAD_SIZE = 256 * MIB
SLOW_RATE = 64 * 1024
VERSION = "9.2.1"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)


def start_server(binary, data_dir, need_token=True):
    proc = subprocess.Popen(
        [binary, "--fleet-server-host", "127.0.0.1", "--fleet-server-port", "0",
         "--data-dir", data_dir, "--management-port", "0", "--file-storage-cap", "0",
         "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = token = None
    deadline = time.time() + 60
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=reader, daemon=True).start()
    while time.time() < deadline and not (url and (token or not need_token)):
        for line in list(lines):
            m = re.search(r"Fleet Server URL:\s+(https://\S+)", line)
            if m:
                url = m.group(1)
            m = re.search(r"--enrollment-token=(\S+)", line)
            if m:
                token = m.group(1)
        time.sleep(0.1)
    if not (url and (token or not need_token)):
        proc.kill()
        sys.exit("fleet-edge did not start:\n" + "".join(lines))
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    return proc, (host, int(port)), token


def tls_context(data_dir):
    ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "certs", "ca.crt"))
    ctx.check_hostname = False
    return ctx


def request(conn, method, path, key, body=b"", headers=None):
    h = {"Authorization": f"ApiKey {key}", "User-Agent": f"Elastic Agent v{VERSION}",
         "Content-Type": "application/json", "Elastic-Api-Version": "2023-06-01"}
    h.update(headers or {})
    while True:
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status == 429:
            time.sleep(0.05)
            continue
        return resp.status, data


def enroll(addr, ctx, token):
    conn = http.client.HTTPSConnection(*addr, context=ctx)
    body = json.dumps({"type": "PERMANENT", "metadata": {
        "local": {"elastic": {"agent": {"id": "", "version": VERSION, "snapshot": False,
                                        "upgradeable": True}},
                  "host": {"hostname": "bench", "name": "bench"}},
        "user_provided": {}}})
    status, data = request(conn, "POST", "/api/fleet/agents/enroll", token, body.encode())
    assert status == 200, data
    item = json.loads(data)["item"]
    return item["id"], item["access_api_key"], conn


def upload(addr, ctx, agent_id, key, errors):
    try:
        conn = http.client.HTTPSConnection(*addr, context=ctx)
        begin = {"action_id": "bench", "agent_id": agent_id, "src": "agent",
                 "file": {"size": UPLOAD_SIZE, "name": "bench.zip", "ext": "zip",
                          "mime_type": "application/zip", "hash": {"sha256": "", "md5": ""}},
                 "contents": None}
        status, data = request(conn, "POST", "/api/fleet/uploads", key, json.dumps(begin).encode())
        assert status == 200, data
        upload_id = json.loads(data)["upload_id"]
        digests = b""
        block = (agent_id.encode() * (CHUNK // len(agent_id) + 1))[:CHUNK]
        for n in range(UPLOAD_SIZE // CHUNK):
            sha = hashlib.sha256(block).digest()
            digests += sha
            status, data = request(conn, "PUT", f"/api/fleet/uploads/{upload_id}/{n}", key, block,
                                   {"X-Chunk-SHA2": sha.hex()})
            assert status == 200, data
        done = {"transithash": {"sha256": hashlib.sha256(digests).hexdigest()}}
        status, data = request(conn, "POST", f"/api/fleet/uploads/{upload_id}", key,
                               json.dumps(done).encode())
        assert status == 200, data
    except Exception as e:  # reported, and the bench fails
        errors.append(repr(e))


def download(addr, ctx, key, file_id, slow, stop, results):
    sock = socket.create_connection(addr)
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    req = (f"GET /api/fleet/file/{file_id} HTTP/1.1\r\nHost: localhost\r\n"
           f"Authorization: ApiKey {key}\r\nUser-Agent: Elastic Agent v{VERSION}\r\n\r\n")
    while True:
        tls.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += tls.recv(1)
        status = int(head.split()[1])
        if status != 429:
            break
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
        while length > 0:
            length -= len(tls.recv(length))
        time.sleep(0.05)
    assert status == 200, head
    length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
    got, sha = 0, hashlib.sha256()
    started = time.time()
    while got < length and not stop.is_set():
        want = 4096 if slow else 256 * 1024
        data = tls.recv(min(want, length - got))
        if not data:
            break
        got += len(data)
        if not slow:
            sha.update(data)
        else:
            time.sleep(max(0.0, got / SLOW_RATE - (time.time() - started)))
    results.append((slow, got, length, sha.hexdigest() if not slow else None))
    tls.close()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/fleet-edge"
    tmp = tempfile.mkdtemp(prefix="fleet-edge-files-bench-")
    data_dir = os.path.join(tmp, "data")
    proc, addr, token = start_server(binary, data_dir)
    ctx = tls_context(data_dir)
    ok = True
    try:
        agents = [enroll(addr, ctx, token) for _ in range(AGENTS)]
        for _, _, conn in agents:
            conn.close()

        time.sleep(1)
        base = rss_kib(proc.pid)
        sampler = Sampler(proc.pid)
        sampler.start()
        errors = []
        t0 = time.time()
        threads = [threading.Thread(target=upload, args=(addr, ctx, a, k, errors))
                   for a, k, _ in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sampler.running = False
        sampler.join()
        bound = base + (AGENTS * 4 * MIB + 16 * MIB) // 1024
        up_ok = not errors and sampler.peak <= bound
        ok &= up_ok
        print(f"uploads: {AGENTS} x {UPLOAD_SIZE // MIB} MiB in {time.time() - t0:.1f} s; "
              f"RSS baseline {base / 1024:.1f} MiB, peak {sampler.peak / 1024:.1f} MiB "
              f"(+{(sampler.peak - base) / 1024:.1f} MiB; bound +{(bound - base) / 1024:.0f} MiB) "
              f"{'ok' if up_ok else 'FAIL'} {errors[:3] if errors else ''}")

        big = os.path.join(tmp, "big.bin")
        pattern = hashlib.sha256(b"fleet-edge").digest() * (MIB // 32)
        with open(big, "wb") as f:
            for _ in range(DOWNLOAD_SIZE // MIB):
                f.write(pattern)
        expected = hashlib.sha256()
        for _ in range(DOWNLOAD_SIZE // MIB):
            expected.update(pattern)
        ids = ",".join(a for a, _, _ in agents)
        out = subprocess.run([binary, "files", "send", "--agent", ids, big, "--data-dir", data_dir],
                             capture_output=True, text=True, check=True)
        file_id = out.stdout.strip()
        # A fresh process for the download phase: its baseline is not the upload phase's
        # high-water mark kept by the allocator.
        proc.terminate()
        proc.wait(timeout=30)
        proc, addr, _ = start_server(binary, data_dir, need_token=False)

        time.sleep(1)
        base = rss_kib(proc.pid)
        sampler = Sampler(proc.pid)
        sampler.start()
        stop, results = threading.Event(), []
        t0 = time.time()
        threads = [threading.Thread(target=download,
                                    args=(addr, ctx, k, file_id, i == 0, stop, results))
                   for i, (_, k, _) in enumerate(agents)]
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join()
        fast_secs = time.time() - t0
        time.sleep(2)  # the slow reader keeps its stream open a little longer
        stop.set()
        threads[0].join()
        sampler.running = False
        sampler.join()
        bound = base + 32 * MIB // 1024
        fast = [r for r in results if not r[0]]
        slow = [r for r in results if r[0]]
        complete = len(fast) == AGENTS - 1 and all(
            r[1] == r[2] == DOWNLOAD_SIZE and r[3] == expected.hexdigest() for r in fast)
        down_ok = complete and sampler.peak <= bound
        ok &= down_ok
        print(f"downloads: {AGENTS - 1} x {DOWNLOAD_SIZE // MIB} MiB in {fast_secs:.1f} s "
              f"(bytes {'match' if complete else 'DIFFER'}), the slow reader got "
              f"{(slow[0][1] if slow else 0) // 1024} KiB; RSS baseline {base / 1024:.1f} MiB, "
              f"peak {sampler.peak / 1024:.1f} MiB (+{(sampler.peak - base) / 1024:.1f} MiB; "
              f"bound +32 MiB) {'ok' if down_ok else 'FAIL'}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
