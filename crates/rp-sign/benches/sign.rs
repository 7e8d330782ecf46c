//! Signing and verification against the floor: one pre-keyed HMAC-SHA512 over the same string.
//!
//! `cargo bench -p rp-sign --bench sign -- --warm-up-time 1 --measurement-time 3`

// A benchmark that cannot load its inputs should stop loudly.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use rp_sign::{SecretKey, Signer, string_to_sign};
use serde_json::Value;
use sha2::Sha512;

fn vector(name: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/signature-vectors.json"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone()
}

fn payload(v: &Value) -> Value {
    serde_json::from_str(v["payload_text"].as_str().unwrap()).unwrap()
}

fn benches(c: &mut Criterion) {
    // (a) the seed payout request.
    let request_vector = vector("mc_payout_request");
    let request = payload(&request_vector);
    let request_signer = Signer::new(&SecretKey::from(request_vector["secret"].as_str().unwrap()));
    let request_string = string_to_sign(&request).unwrap();

    // (b) the seed success callback, as bytes with a root `signature`.
    let callback_vector = vector("callback_success_payout");
    let callback_key = callback_vector["secret"].as_str().unwrap();
    let callback_signer = Signer::new(&SecretKey::from(callback_key));
    let callback = payload(&callback_vector);
    let callback_string = string_to_sign(&callback).unwrap();
    let callback_body = callback_signer.sign_callback_body(&callback).unwrap();
    assert!(callback_signer.verify_callback(&callback_body).is_ok());

    let mut group = c.benchmark_group("rp-sign");
    group.bench_function("a_sign_payout_request_value", |b| {
        b.iter(|| request_signer.sign_value(black_box(&request)).unwrap());
    });
    group.bench_function("a2_sign_payout_request_body_bytes", |b| {
        b.iter(|| {
            request_signer
                .sign_request_body(black_box(&request))
                .unwrap()
        });
    });
    group.bench_function("b_verify_success_callback_bytes", |b| {
        b.iter(|| {
            callback_signer
                .verify_callback(black_box(&callback_body))
                .unwrap()
        });
    });

    // For comparison: parsing the body into a `serde_json::Value` (which (b) no longer does).
    group.bench_function("b0_parse_callback_bytes_only", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&callback_body)).unwrap());
    });
    // Breakdown of (b): verifying the already parsed value (no parse).
    let parsed: Value = serde_json::from_slice(&callback_body).unwrap();
    group.bench_function("b1_verify_callback_value_only", |b| {
        b.iter(|| callback_signer.verify_value(black_box(&parsed)).unwrap());
    });
    group.bench_function("b2_string_to_sign_callback", |b| {
        b.iter(|| string_to_sign(black_box(&callback)).unwrap());
    });

    // (c) the floor: a pre-keyed HMAC-SHA512 (cloned per message, as Signer does) over the
    // already built string to sign; no JSON, no canonicalisation, no Base64.
    let keyed = Hmac::<Sha512>::new_from_slice(b"secret").unwrap();
    group.bench_function("c_floor_hmac_payout_request_string", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(request_string.as_bytes()));
            mac.finalize().into_bytes()
        });
    });
    let keyed = Hmac::<Sha512>::new_from_slice(callback_key.as_bytes()).unwrap();
    group.bench_function("c_floor_hmac_callback_string", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(callback_string.as_bytes()));
            mac.finalize().into_bytes()
        });
    });
    group.finish();
}

criterion_group!(sign, benches);
criterion_main!(sign);
