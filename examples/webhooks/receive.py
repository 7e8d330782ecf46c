#!/usr/bin/env python3
"""Receive rp serve's webhooks in Python, standard library only.

    RP_WEBHOOK_SECRET=whsec_... python3 receive.py 8000

Verifies each request as the Standard Webhooks specification says, then prints one line per
event and answers 204; anything unverified gets 400 and is not acted upon. Drop a webhook-id
you have already processed: an event can arrive more than once (always with the same ID).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_SECONDS = 5 * 60


def verify(secret: str, headers, body: bytes) -> dict:
    """The event, if the request is signed with `secret`; raises ValueError otherwise."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not timestamp.isdigit():
        raise ValueError("missing webhook-id or webhook-timestamp")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError("webhook-timestamp too far from now")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise ValueError("no valid signature")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = verify(os.environ["RP_WEBHOOK_SECRET"], self.headers, body)
        except ValueError as error:
            self.send_response(400)
            self.end_headers()
            print(f"refused {error}", flush=True)
            return
        data = event["data"]
        # Act on it here, once per webhook-id (e.g. an INSERT that ignores a known ID).
        print(f"verified {self.headers['webhook-id']} {event['type']} {data['payment_id']}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
