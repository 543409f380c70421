"""A Knative Functions Python function (func-python's ASGI layout: new() returns an object with
an async handle) that consumes esmd's events over the `http` protocol. Per SQS record body:
"fail..." is reported in batchItemFailures, "crash..." answers 500 for the whole batch,
"slow..." sleeps past the function's timeout; everything else succeeds. Each call is appended
as one JSON line to $FUNC_SEEN_LOG (the test reads it)."""
import asyncio
import json
import os


class Function:
    async def handle(self, scope, receive, send):
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        event = json.loads(body or b"{}")
        records = event.get("Records", [])
        bodies = [r.get("body", "") for r in records]
        with open(os.environ["FUNC_SEEN_LOG"], "a") as f:
            f.write(json.dumps({"bodies": bodies}) + "\n")
        if any(b.startswith("slow") for b in bodies):
            await asyncio.sleep(float(os.environ.get("FUNC_SLOW_SECONDS", "5")))
        if any(b.startswith("crash") for b in bodies):
            await self.reply(send, 500, {"errorMessage": "crashed on purpose"})
            return
        failures = [{"itemIdentifier": r["messageId"]} for r in records if r.get("body", "").startswith("fail")]
        await self.reply(send, 200, {"batchItemFailures": failures})

    async def reply(self, send, status, doc):
        await send({"type": "http.response.start", "status": status,
                    "headers": [[b"content-type", b"application/json"]]})
        await send({"type": "http.response.body", "body": json.dumps(doc).encode()})


def new():
    return Function()
