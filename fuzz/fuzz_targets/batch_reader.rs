//! Arbitrary bytes into the batch file reader (`rp-batch`), alone and after a valid header:
//! never a panic, the reader always ends, and every row is either a payout or has at least
//! one problem with a line number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rp_batch::{BatchId, BatchReader, Record};

fuzz_target!(|data: &[u8]| {
    let mut with_header = b"payment_id;phone;amount;currency;customer_id;first_name;last_name;description\n".to_vec();
    with_header.extend_from_slice(data);
    for input in [data, with_header.as_slice()] {
        let Ok(reader) = BatchReader::new(input, BatchId::of_bytes(input)) else {
            continue;
        };
        for record in reader {
            match record {
                Ok(Record::Valid(row)) => assert!(row.line >= 2 && row.row >= 1),
                Ok(Record::Invalid(row)) => {
                    assert!(!row.errors.is_empty());
                    assert!(row.errors.iter().all(|e| e.line >= 2));
                }
                Err(_) => break,
            }
        }
    }
});
