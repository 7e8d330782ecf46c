//! Property tests: any valid rows written by the `csv` crate (either delimiter, any column
//! order, LF or CRLF, with or without a BOM, amounts in several written forms) read back as
//! the same payouts; and reading is the same whatever sizes the input comes in.

use std::io::Read;

use proptest::prelude::*;
use rp_batch::{BatchId, BatchReader, Column, Record};
use rp_model::{Currency, CustomerId, Money, Msisdn, Operator, PaymentId, Payout};

#[derive(Clone, Debug)]
struct Spec {
    payment_id: Option<String>,
    prefix: &'static str,
    subscriber: u32,
    phone_form: u8,
    minor: u64,
    amount_form: u8,
    currency_cell: bool,
    customer: String,
    name: Option<(String, String)>,
    email: Option<String>,
    ip: Option<[u8; 4]>,
    description: Option<String>,
    operator: Option<usize>,
}

const PREFIXES: [&str; 9] = [
    "700", "701", "702", "705", "707", "708", "747", "771", "777",
];

fn text() -> impl Strategy<Value = String> {
    // Letters (Latin and Cyrillic), digits, spaces inside, and what CSV must quote: `,` `"`
    // and a line break. No `;` (refused by the builder) and no `\r` (a line end in a cell
    // reads as `\n`).
    "[A-Za-zА-Яа-яӘәҢңҚқ0-9][A-Za-zА-Яа-яӘәҢңҚқ0-9 ,\"\n.-]{0,20}[A-Za-zА-Яа-я0-9.]"
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (
            proptest::option::of("[a-z0-9][a-z0-9-]{0,30}"),
            0..PREFIXES.len(),
            1_000_000u32..10_000_000,
            0u8..4,
            1u64..1_000_000_000_000,
            0u8..4,
            any::<bool>(),
        ),
        (
            "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,15}",
            proptest::option::of((text(), text())),
            proptest::option::of("[a-z]{1,8}@example\\.kz"),
            proptest::option::of(any::<[u8; 4]>()),
            proptest::option::of(text()),
            proptest::option::of(0usize..5),
        ),
    )
        .prop_map(
            |(
                (payment_id, prefix, subscriber, phone_form, minor, amount_form, currency_cell),
                (customer, name, email, ip, description, operator),
            )| Spec {
                payment_id,
                prefix: PREFIXES[prefix],
                subscriber,
                phone_form,
                minor,
                amount_form,
                currency_cell,
                customer,
                name,
                email,
                ip,
                description,
                operator,
            },
        )
}

impl Spec {
    fn phone_text(&self) -> String {
        let (p, s) = (self.prefix, self.subscriber);
        let s = format!("{s:07}");
        match self.phone_form {
            0 => format!("+7 {p} {} {} {}", &s[..3], &s[3..5], &s[5..]),
            1 => format!("8 ({p}) {}-{}-{}", &s[..3], &s[3..5], &s[5..]),
            2 => format!("7{p}{s}"),
            _ => format!("{p}{s}"),
        }
    }

    fn amount_text(&self) -> String {
        let (major, minor) = (self.minor / 100, self.minor % 100);
        let grouped = {
            let digits = major.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(' ');
                }
                out.push(c);
            }
            out
        };
        match self.amount_form {
            0 => format!("{major}.{minor:02}"),
            1 => format!("{grouped},{minor:02}"),
            2 => format!("₸{major}.{minor:02}"),
            _ => format!("{grouped},{minor:02} тг"),
        }
    }

    fn cell(&self, column: Column) -> String {
        match column {
            Column::PaymentId => self.payment_id.clone().unwrap_or_default(),
            Column::Phone => self.phone_text(),
            Column::Amount => self.amount_text(),
            Column::Currency if self.currency_cell => "KZT".to_owned(),
            Column::CustomerId => self.customer.clone(),
            Column::FirstName => self.name.clone().map(|n| n.0).unwrap_or_default(),
            Column::LastName => self.name.clone().map(|n| n.1).unwrap_or_default(),
            Column::Email => self.email.clone().unwrap_or_default(),
            Column::IpAddress => self
                .ip
                .map(|ip| std::net::Ipv4Addr::from(ip).to_string())
                .unwrap_or_default(),
            Column::Description => self.description.clone().unwrap_or_default(),
            Column::Operator => self
                .operator
                .map(|i| Operator::KNOWN[i].id().to_owned())
                .unwrap_or_default(),
            Column::Currency => String::new(),
        }
    }

    fn payout(&self, payment_id: PaymentId) -> Payout {
        let mut builder = Payout::builder()
            .payment_id(payment_id)
            .phone(Msisdn::parse(&format!("7{}{:07}", self.prefix, self.subscriber)).unwrap())
            .amount(Money::from_minor(self.minor, Currency::KZT))
            .customer_id(CustomerId::new(self.customer.clone()).unwrap());
        if let Some((first, last)) = &self.name {
            builder = builder.customer_name(first.clone(), last.clone());
        }
        if let Some(email) = &self.email {
            builder = builder.customer_email(email.clone());
        }
        if let Some(ip) = self.ip {
            builder = builder.customer_ip(std::net::Ipv4Addr::from(ip).into());
        }
        if let Some(description) = &self.description {
            builder = builder.description(description.clone());
        }
        if let Some(i) = self.operator {
            builder = builder.operator(Operator::KNOWN[i].clone());
        }
        builder.build().unwrap()
    }
}

fn write_file(specs: &[Spec], order: &[Column], semicolon: bool, crlf: bool, bom: bool) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(if semicolon { b';' } else { b',' })
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_writer(Vec::new());
    let header: Vec<String> = order
        .iter()
        .enumerate()
        // Header names in any case.
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.name().to_uppercase()
            } else {
                c.name().to_owned()
            }
        })
        .collect();
    writer.write_record(&header).unwrap();
    for spec in specs {
        writer
            .write_record(order.iter().map(|c| spec.cell(*c)))
            .unwrap();
    }
    let mut bytes = writer.into_inner().unwrap();
    if bom {
        bytes.splice(0..0, [0xEF, 0xBB, 0xBF]);
    }
    bytes
}

/// A reader that gives at most `step` bytes a call: line ends split across reads.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fn read_all(reader: impl Read, batch: BatchId) -> Vec<Record> {
    BatchReader::new(reader, batch)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Reads `bytes`, keeps every row as a ledger does, and reads the kept rows back.
fn stored_round_trip(bytes: &[u8], batch: BatchId) -> Vec<Record> {
    let mut reader = BatchReader::new(bytes, batch).unwrap();
    let mut kept = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        let (row, line) = match &record {
            Record::Valid(row) => (row.row, row.line),
            Record::Invalid(invalid) => (invalid.row, invalid.line),
        };
        kept.push((row, line, reader.last_cells_encoded()));
    }
    let mut header = reader.header_encoded();
    header.push(b'\n');
    let mut again = BatchReader::new(header.as_slice(), batch).unwrap();
    kept.iter()
        .map(|(row, line, cells)| again.read_stored(*row, *line, cells).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_rows_written_by_the_csv_crate_read_back_the_same(
        specs in proptest::collection::vec(spec(), 1..6),
        order in Just(Column::ALL.to_vec()).prop_shuffle(),
        semicolon in any::<bool>(),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        step in 1usize..8,
    ) {
        // Payment IDs must be unique in a file.
        let mut specs = specs;
        for (i, spec) in specs.iter_mut().enumerate() {
            if let Some(id) = &mut spec.payment_id {
                id.push_str(&format!("-{i}"));
            }
        }
        let bytes = write_file(&specs, &order, semicolon, crlf, bom);
        let batch = BatchId::of_bytes(&bytes);
        let records = read_all(bytes.as_slice(), batch);
        prop_assert_eq!(records.len(), specs.len());
        for (i, (record, spec)) in records.iter().zip(&specs).enumerate() {
            let row = match record {
                Record::Valid(row) => row,
                Record::Invalid(invalid) => {
                    let errors: Vec<String> = invalid.errors.iter().map(ToString::to_string).collect();
                    return Err(TestCaseError::fail(format!("{errors:?}\n{}", String::from_utf8_lossy(&bytes))));
                }
            };
            let row_number = i as u64 + 1;
            prop_assert_eq!(row.row, row_number);
            let expected_id = match &spec.payment_id {
                Some(id) => PaymentId::new(id.clone()).unwrap(),
                None => batch.derive_payment_id(row_number).unwrap(),
            };
            prop_assert_eq!(row.payment_id_derived, spec.payment_id.is_none());
            prop_assert_eq!(&row.payout, &spec.payout(expected_id));
        }
        // The same bytes in small pieces read the same.
        let trickled = read_all(Trickle { bytes: &bytes, step }, batch);
        prop_assert_eq!(&trickled, &records);
        // Every row as a ledger keeps it (header and cells encoded), read back by a reader
        // made from the kept header alone, is the same record.
        prop_assert_eq!(stored_round_trip(&bytes, batch), records);
    }

    /// Whatever the bytes, the reader neither panics nor loops: it ends.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut with_header = b"phone;amount;customer_id;description\n".to_vec();
        with_header.extend_from_slice(&bytes);
        for input in [bytes.as_slice(), with_header.as_slice()] {
            if let Ok(reader) = BatchReader::new(input, BatchId::of_bytes(input)) {
                for record in reader {
                    if record.is_err() {
                        break;
                    }
                }
            }
        }
    }
}
