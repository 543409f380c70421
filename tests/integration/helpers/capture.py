"""A plain-HTTP function that records every event it gets (to assert the exact event shape)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Capture:
    """A plain-HTTP function that records every event it gets and answers with `reply`
    (status, body) chosen per call."""

    def __init__(self, reply=None):
        self.events = []
        self.reply = reply or (lambda event: (200, b"{}"))
        cap = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event = json.loads(body)
                cap.events.append(event)
                status, out = cap.reply(event)
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fn"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self):
        return [r for e in list(self.events) for r in e["Records"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
