// Pay out through rp serve's API, exactly once, with Node's built-in fetch (Node 18+).
//
//   RP_API_URL=http://127.0.0.1:8080 RP_API_KEY=rpk_... node pay.mjs order-42 "+7 701 123 45 67" "1 500"
//
// The payment ID is the idempotency key: run it again after a timeout or a crash and the same
// payout is answered as it stands (200), never paid twice.
const base = process.env.RP_API_URL.replace(/\/$/, "");
const [paymentId, phone, amount] = process.argv.slice(2);

const answer = await fetch(`${base}/api/v1/payouts?wait=30`, {
  method: "POST",
  headers: {
    Authorization: `Bearer ${process.env.RP_API_KEY}`,
    "Content-Type": "application/json",
  },
  body: JSON.stringify({
    payment_id: paymentId,
    phone,
    amount,
    customer: { id: "customer-7" },
    description: `Refund for order ${paymentId}`,
  }),
});
const body = await answer.json();
if (!answer.ok) {
  console.log(answer.status, body.detail, JSON.stringify(body.errors ?? []));
  process.exit(1);
}
console.log(answer.status, body.payment_id, body.state);
