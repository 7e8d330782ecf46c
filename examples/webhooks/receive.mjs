// Receive rp serve's webhooks in Node, no dependencies.
//
//     RP_WEBHOOK_SECRET=whsec_... node receive.mjs 8000
//
// Verifies each request as the Standard Webhooks specification says, then prints one line per
// event and answers 204; anything unverified gets 400 and is not acted upon. Drop a webhook-id
// you have already processed: an event can arrive more than once (always with the same ID).
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const TOLERANCE_SECONDS = 5 * 60;

export function verify(secret, headers, body) {
  const id = headers["webhook-id"] ?? "";
  const timestamp = headers["webhook-timestamp"] ?? "";
  const signatures = headers["webhook-signature"] ?? "";
  if (!id || !/^\d+$/.test(timestamp)) throw new Error("missing webhook-id or webhook-timestamp");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new Error("webhook-timestamp too far from now");
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest();
  for (const signature of signatures.split(" ")) {
    const [version, value = ""] = signature.split(",", 2);
    const given = Buffer.from(value, "base64");
    if (version === "v1" && given.length === expected.length && timingSafeEqual(given, expected)) {
      return JSON.parse(body.toString("utf8"));
    }
  }
  throw new Error("no valid signature");
}

createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let event;
    try {
      event = verify(process.env.RP_WEBHOOK_SECRET, request.headers, Buffer.concat(chunks));
    } catch (error) {
      console.log(`refused ${error.message}`);
      response.writeHead(400).end();
      return;
    }
    // Act on it here, once per webhook-id (e.g. an INSERT that ignores a known ID).
    console.log(`verified ${request.headers["webhook-id"]} ${event.type} ${event.data.payment_id}`);
    response.writeHead(204).end();
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
