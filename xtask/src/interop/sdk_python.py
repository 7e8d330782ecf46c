# The vendor's Python SDK (ecommpay-sdk on PyPI) checks our signed bodies and signs the corpus.
# Run by `cargo xtask interop` with the SDK installed in a throwaway venv under target/.
import json
import sys

from payment_page_sdk.callback import Callback
from payment_page_sdk.signature_handler import SignatureHandler

run = sys.argv[1]
out = []
with open(run + "/verify.jsonl", encoding="utf-8") as f:
    for line in f:
        item = json.loads(line)
        answer = {"id": "verify " + item["id"]}
        try:
            Callback(item["body"], SignatureHandler(item["secret"]))
            answer["valid"] = True
        except Exception as e:  # the SDK raises ProcessException on a bad signature
            answer["valid"] = False
            answer["error"] = repr(e)
        out.append(answer)
with open(run + "/sign.jsonl", encoding="utf-8") as f:
    for line in f:
        item = json.loads(line)
        answer = {"id": "sign " + item["id"]}
        try:
            answer["signature"] = SignatureHandler(item["secret"]).sign(json.loads(item["payload"]))
        except Exception as e:
            answer["error"] = repr(e)
        out.append(answer)
with open(run + "/python.jsonl", "w", encoding="utf-8") as f:
    for answer in out:
        f.write(json.dumps(answer, ensure_ascii=False) + "\n")
