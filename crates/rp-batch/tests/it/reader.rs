//! The reader beyond the corpus: derived IDs, reserved IDs, line numbers, a large file.

use std::io::Write as _;
use std::time::Instant;

use rp_batch::{
    BatchId, BatchReader, Column, LimitKind, LimitTracker, Limits, Record, RowErrorKind, Usage,
    check_file,
};
use rp_model::{Currency, Money};

fn records(text: &str, batch: BatchId) -> Vec<Record> {
    BatchReader::new(text.as_bytes(), batch)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn derived_payment_ids_are_deterministic_and_follow_the_documented_form() {
    let text = "phone,amount,customer_id,payment_id\n87011234567,1,c-1,\n87011234567,1,c-2,own-2\n\n87011234567,1,c-3,\n";
    let batch = BatchId::of_bytes(text.as_bytes());
    let first = records(text, batch);
    let again = records(text, BatchId::of_bytes(text.as_bytes()));
    assert_eq!(first, again);
    let ids: Vec<String> = first
        .iter()
        .map(|r| match r {
            Record::Valid(row) => row.payout.payment_id().to_string(),
            Record::Invalid(bad) => panic!("{:?}", bad.errors),
        })
        .collect();
    let hex = batch.to_string();
    assert_eq!(
        ids,
        [
            format!("rpb-{}-1", &hex[..20]),
            "own-2".to_owned(),
            // Blank lines are not rows: row 3 is on line 5.
            format!("rpb-{}-3", &hex[..20]),
        ]
    );
    assert_eq!(first[2].line(), 5);
    // Another file (one byte changed) is another batch, with other IDs.
    let changed = text.replace("c-3", "c-4");
    let other = records(&changed, BatchId::of_bytes(changed.as_bytes()));
    let Record::Valid(row) = &other[0] else {
        panic!()
    };
    assert_ne!(row.payout.payment_id().to_string(), ids[0]);
}

#[test]
fn an_explicit_id_in_the_derived_form_of_this_batch_is_refused() {
    // The batch is given here (a file cannot hold its own hash), as `rp batch run` might.
    let batch = BatchId::of_bytes(b"some other file");
    let reserved = format!("{}7", batch.derived_prefix());
    let text = format!("payment_id,phone,amount,customer_id\n{reserved},87011234567,1,c-1\n");
    let mut reader = BatchReader::new(text.as_bytes(), batch).unwrap();
    let first = reader.next_record().unwrap();
    let Some(Record::Invalid(bad)) = &first else {
        panic!("{first:?}")
    };
    // And at its end: what was read is not that batch.
    let end = reader.next_record().unwrap_err();
    assert!(matches!(end, rp_batch::FileError::Changed { .. }), "{end}");
    assert_eq!(bad.errors.len(), 1);
    assert_eq!(bad.errors[0].kind, RowErrorKind::ReservedPaymentId);
    assert_eq!(bad.errors[0].column, Some(Column::PaymentId));
    assert!(
        bad.errors[0].to_string().starts_with(&format!(
            "line 2, column payment_id: \"{reserved}\" has the form"
        )),
        "{}",
        bad.errors[0]
    );
}

#[test]
fn an_invalid_row_keeps_its_payment_id_and_the_raw_cells_are_available() {
    let text = "payment_id;phone;amount;customer_id\np-1;87011234567;1,005;c-1\n";
    let mut reader = BatchReader::new(text.as_bytes(), BatchId::of_bytes(text.as_bytes())).unwrap();
    let Some(Ok(Record::Invalid(bad))) = reader.next() else {
        panic!()
    };
    assert_eq!(bad.payment_id.unwrap().as_str(), "p-1");
    let cells: Vec<&[u8]> = reader.last_cells().collect();
    assert_eq!(cells, [&b"p-1"[..], b"87011234567", b"1,005", b"c-1"]);
}

#[test]
fn the_tracker_starts_from_the_ledger_usage_and_names_the_platform_codes() {
    let mut limits = Limits::none(Currency::KZT);
    limits.daily_amount = Some(100_000);
    limits.monthly_count = Some(10);
    let usage = Usage {
        day_amount: 90_000,
        month_count: 9,
        ..Usage::default()
    };
    let mut tracker = LimitTracker::with_usage(limits, usage);
    let error = tracker.reserve(Money::kzt_minor(20_000)).unwrap_err();
    assert_eq!(error.kind(), Some(LimitKind::DailyAmount));
    assert_eq!(LimitKind::DailyAmount.platform_codes(), [3109]);
    assert_eq!(
        error.to_string(),
        "200,00\u{a0}₸ is over the daily amount limit (1\u{a0}000,00\u{a0}₸): 900,00\u{a0}₸ already counted, 100,00\u{a0}₸ left"
    );
    tracker.reserve(Money::kzt_minor(10_000)).unwrap();
    let error = tracker.reserve(Money::kzt_minor(0)).unwrap_err();
    assert_eq!(error.kind(), Some(LimitKind::MonthlyCount));
    assert_eq!(tracker.usage().day_amount, 100_000);
    assert_eq!(tracker.usage().month_count, 10);
    let headroom = tracker.headroom();
    assert_eq!(headroom.len(), 2);
    assert!(headroom.iter().all(|h| h.remaining == 0));
}

/// `check` of a generated 100,000-row file from disk: valid, the right totals, and fast
/// enough that a regression to quadratic or per-row I/O would show (the figure itself is
/// the benchmark's: `cargo bench -p rp-batch --bench check`).
#[test]
fn check_of_a_100_000_row_file() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rp-batch");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-100k.csv", std::process::id()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "phone;amount;customer_id;payment_id").unwrap();
    let mut expected_minor = 0u64;
    for row in 0..100_000u64 {
        let minor = 100 + row % 10_000;
        expected_minor += minor;
        // Every tenth row derives its payment ID.
        let id = if row % 10 == 0 {
            String::new()
        } else {
            format!("id-{row}")
        };
        write!(
            out,
            "+7 701 {:07};{}.{:02};c-{};{id}\r\n",
            row,
            minor / 100,
            minor % 100,
            row % 977
        )
        .unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let started = Instant::now();
    let mut problems = 0;
    let report = check_file(&path, &Limits::none(Currency::KZT), |_| problems += 1).unwrap();
    let elapsed = started.elapsed();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(problems, 0);
    assert_eq!(report.rows, 100_000);
    assert!(report.is_valid());
    assert_eq!(report.totals, [Money::kzt_minor(expected_minor)]);
    // Unoptimised test builds on a busy 2-core machine: a generous bound.
    assert!(elapsed.as_secs() < 30, "{elapsed:?}");
}

/// What a reader reads is hashed on the way: a file that is not the batch it was opened as
/// (rewritten after its SHA-256 was taken) fails at its end, so nothing read from it is used.
#[test]
fn a_file_that_changed_after_its_hash_was_taken_fails_at_its_end() {
    let checked = "phone,amount,customer_id\n87011234567,100,c-1\n";
    let now = "phone,amount,customer_id\n87011234567,99999,c-1\n";
    let mut reader =
        BatchReader::new(now.as_bytes(), BatchId::of_bytes(checked.as_bytes())).unwrap();
    assert!(matches!(reader.next_record(), Ok(Some(Record::Valid(_)))));
    let error = reader.next_record().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the file changed while it was read"),
        "{error}"
    );
    // The same bytes as hashed read to the end.
    let mut reader =
        BatchReader::new(checked.as_bytes(), BatchId::of_bytes(checked.as_bytes())).unwrap();
    assert!(matches!(reader.next_record(), Ok(Some(Record::Valid(_)))));
    assert!(matches!(reader.next_record(), Ok(None)));
}
