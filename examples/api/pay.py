"""Pay out through rp serve's API, exactly once, with the Python standard library alone.

    RP_API_URL=http://127.0.0.1:8080 RP_API_KEY=rpk_... python3 pay.py order-42 "+7 701 123 45 67" "1 500"

The payment ID is the idempotency key: run it again after a timeout or a crash and the same
payout is answered as it stands (200), never paid twice.
"""
import json
import os
import sys
import urllib.error
import urllib.request

base = os.environ["RP_API_URL"].rstrip("/")
key = os.environ["RP_API_KEY"]
payment_id, phone, amount = sys.argv[1:4]

body = json.dumps({
    "payment_id": payment_id,
    "phone": phone,
    "amount": amount,
    "customer": {"id": "customer-7"},
    "description": "Refund for order " + payment_id,
}).encode()
request = urllib.request.Request(
    base + "/api/v1/payouts?wait=30",
    data=body,
    method="POST",
    headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"},
)
try:
    with urllib.request.urlopen(request, timeout=60) as answer:
        payout = json.load(answer)
        print(answer.status, payout["payment_id"], payout["state"])
except urllib.error.HTTPError as error:
    problem = json.load(error)
    print(error.code, problem["detail"], problem.get("errors", []))
    sys.exit(1)
