"""A function host that misbehaves on the wire, which esmd-funchost cannot: it drops the
connection without an answer (reset), sends fewer body bytes than its Content-Length says
(short), or answers something that is not HTTP (nonsense). After `count` bad answers it
behaves (200 {}). Every request is logged: (epoch ms, mode used, decoded record payloads)."""

import base64
import json
import socket
import threading
import time


def payloads_of(event):
    """Record payloads of a Kinesis / SQS / Kafka event (decoded), in order."""
    out = []
    for r in event.get("Records", []) or []:
        if "kinesis" in r:
            out.append(base64.b64decode(r["kinesis"]["data"]).decode("utf-8", "replace"))
        elif "body" in r:
            out.append(r["body"])
    for recs in (event.get("records") or {}).values():
        for r in recs:
            out.append(base64.b64decode(r.get("value", "")).decode("utf-8", "replace"))
    return out


class BadHost:
    def __init__(self, mode, count):
        self.mode, self.left = mode, count
        self.log = []
        self.events = []  # every request body that parsed as JSON
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/function/fn"
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            if name.strip().lower() == b"expect":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return body

    def _handle(self, conn):
        with conn:
            try:
                while True:
                    body = self._read_request(conn)
                    if body is None:
                        return
                    with self.lock:
                        mode = self.mode if self.left > 0 else "ok"
                        self.left -= 1
                        try:
                            event = json.loads(body)
                            self.events.append(event)
                            pl = payloads_of(event)
                        except ValueError:
                            pl = []
                        self.log.append((int(time.time() * 1000), mode, pl))
                    if mode == "reset":
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        return
                    if mode == "short":
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 100\r\n\r\n{\"batchItem")
                        return
                    if mode == "nonsense":
                        conn.sendall(b"\x00\x01garbage that is not HTTP at all\r\n\r\n")
                        return
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\n\r\n{}")
            except OSError:
                return

    def delivered(self):
        """Payloads of requests answered 200 {}."""
        with self.lock:
            return [p for _, m, pl in self.log if m == "ok" for p in pl]

    def calls(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.closed = True
        self.sock.close()
