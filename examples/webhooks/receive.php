<?php
// Receive rp serve's webhooks in PHP, no extensions beyond the standard ones.
//
//     RP_WEBHOOK_SECRET=whsec_... php -S 127.0.0.1:8000 receive.php
//
// Verifies each request as the Standard Webhooks specification says, then logs one line per
// event and answers 204; anything unverified gets 400 and is not acted upon. Drop a webhook-id
// you have already processed: an event can arrive more than once (always with the same ID).

const TOLERANCE_SECONDS = 5 * 60;

function verify(string $secret, array $headers, string $body): array
{
    $id = $headers['webhook-id'] ?? '';
    $timestamp = $headers['webhook-timestamp'] ?? '';
    $signatures = $headers['webhook-signature'] ?? '';
    if ($id === '' || !ctype_digit($timestamp)) {
        throw new RuntimeException('missing webhook-id or webhook-timestamp');
    }
    if (abs(time() - (int) $timestamp) > TOLERANCE_SECONDS) {
        throw new RuntimeException('webhook-timestamp too far from now');
    }
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $key, true));
    foreach (explode(' ', $signatures) as $signature) {
        [$version, $value] = array_pad(explode(',', $signature, 2), 2, '');
        if ($version === 'v1' && hash_equals($expected, $value)) {
            return json_decode($body, true, 512, JSON_THROW_ON_ERROR);
        }
    }
    throw new RuntimeException('no valid signature');
}

$headers = array_change_key_case(getallheaders(), CASE_LOWER);
try {
    $event = verify(getenv('RP_WEBHOOK_SECRET'), $headers, file_get_contents('php://input'));
} catch (Throwable $error) {
    error_log('refused ' . $error->getMessage());
    http_response_code(400);
    return;
}
// Act on it here, once per webhook-id (e.g. an INSERT that ignores a known ID).
error_log("verified {$headers['webhook-id']} {$event['type']} {$event['data']['payment_id']}");
http_response_code(204);
