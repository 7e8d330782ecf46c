//! `rp batch check`: the real binary on files written by the test.

use std::path::{Path, PathBuf};

use crate::{rp_with, stderr, stdout};

/// Writes `contents` to a fresh file under the target directory.
fn file(name: &str, contents: &[u8]) -> PathBuf {
    crate::scratch_file("rp-cli-batch", name, contents)
}

fn check(path: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec!["batch", "check", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    rp_with(&args, env, b"")
}

#[test]
fn a_valid_file_exits_0_with_a_summary_and_needs_no_key() {
    let path = file(
        "good.csv",
        "\u{feff}Phone;Amount;Customer_ID;Operator\r\n8 (701) 123-45-67;1 500,50;c-1;\r\n+7 777 123 45 67;₸2000;c-2;BEELINE\r\n\r\n"
            .as_bytes(),
    );
    let output = check(&path, &[], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].ends_with(": 2 rows, 2 valid, 0 invalid, 0 over a limit (; separated)"),
        "{out}"
    );
    assert_eq!(lines[1], "total of valid rows: 3\u{a0}500,50\u{a0}₸");
    assert!(
        lines[2].ends_with(": Kcell/Activ (prefix hint) 1, Beeline 1"),
        "{out}"
    );
    assert!(lines[3].starts_with("limits: none set"), "{out}");
    assert!(lines[4].starts_with("batch "), "{out}");
    for digits in ["7011234567", "7771234567"] {
        assert!(!out.contains(digits), "{out}");
    }
}

#[test]
fn every_error_on_its_own_line_then_the_summary_and_exit_2() {
    let path = file(
        "bad.csv",
        b"payment_id,phone,amount,customer_id,description\n\
          p-1,87011234567,1500.505,c-1,\n\
          p-2,+7 912 345 67 89,1.5E+3,c-2,\"refund; order 17\"\n\
          p-1,87011234567,100,c-3,\n\
          p-4,87011234567,100,c-4,ok\n",
    );
    let output = check(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..5],
        [
            "line 2, column amount: 3 fraction digits; KZT has 2",
            "line 3, column phone: phone number 7912***6789 is a Russian number (+7 9xx); only Kazakhstan mobile numbers (+7 7xx) can be paid",
            "line 3, column amount: scientific notation (1.5E+3) is not accepted; write the digits out, e.g. 1500 or 1 500,00 (format the column as Number or Text, not General)",
            "line 3, column description: contains `;`, which the platform's signature uses as its line separator; remove it or write `,` instead",
            "line 4, column payment_id: payment ID \"p-1\" is already used by an earlier row; each row needs its own",
        ]
    );
    assert!(
        lines[5].ends_with(": 4 rows, 1 valid, 3 invalid, 0 over a limit (, separated)"),
        "{out}"
    );
    assert_eq!(
        stderr(&output),
        "rp batch check: 3 of 4 rows invalid; fix the lines above and check again\n"
    );
    assert!(!out.contains("9123456789"), "{out}");
}

#[test]
fn limits_from_flags_and_environment_report_each_row_over_them() {
    let path = file(
        "limits.csv",
        b"phone,amount,customer_id\n87011234567,50,c-1\n87011234567,900,c-2\n87011234567,900,c-3\n87011234567,900,c-4\n",
    );
    let output = check(
        &path,
        &["--min-amount", "100", "--daily-amount", "2 000"],
        &[("RP_LIMIT_DAILY_COUNT", "10")],
    );
    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert!(
        out.starts_with(
            "line 2, column amount: 50,00\u{a0}₸ is below the minimum per payout (100,00\u{a0}₸)\n\
             line 5, column amount: 900,00\u{a0}₸ is over the daily amount limit (2\u{a0}000,00\u{a0}₸): 1\u{a0}800,00\u{a0}₸ already counted, 200,00\u{a0}₸ left\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("limit: daily amount limit 2\u{a0}000,00\u{a0}₸: 1\u{a0}800,00\u{a0}₸ in this file, 200,00\u{a0}₸ left\n"),
        "{out}"
    );
    assert!(
        out.contains("limit: daily count limit 10 payouts: 2 in this file, 8 left\n"),
        "{out}"
    );
    // A limit that is not an amount is refused before the file is read.
    let output = check(&path, &["--max-amount", "1.5E+3"], &[]);
    crate::assert_fails(&output, 2, "--max-amount: invalid amount \"1.5E+3\"");
}

/// `--limits FILE` (or `RP_LIMITS_FILE`): the limits in TOML, flat or in `[limits]`; a flag
/// wins over the file; a wrong file names its line and key.
#[test]
fn limits_from_a_file_and_flags_over_it() {
    let path = file(
        "limits-file.csv",
        b"phone,amount,customer_id\n87011234567,50,c-1\n87011234567,900,c-2\n87011234567,900,c-3\n",
    );
    let limits = file(
        "limits.toml",
        b"# project 1234\nmin_amount = 100\ndaily_amount = \"1 000\"\ndaily_count = 10\n",
    );
    let output = check(&path, &["--limits", limits.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert!(
        out.contains("line 2, column amount: 50,00\u{a0}₸ is below the minimum"),
        "{out}"
    );
    assert!(out.contains("line 4, column amount: 900,00\u{a0}₸ is over the daily amount limit (1\u{a0}000,00\u{a0}₸)"), "{out}");
    assert!(out.contains("daily count limit 10 payouts"), "{out}");
    // The flag wins over the file; the file comes from the environment too.
    let output = check(
        &path,
        &["--min-amount", "10", "--daily-amount", "5 000"],
        &[("RP_LIMITS_FILE", limits.to_str().unwrap())],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("daily count limit 10 payouts"),
        "{}",
        stdout(&output)
    );
    // In a [limits] table.
    let table = file("table.toml", b"[limits]\nmax_amount = \"500\"\n");
    let output = check(&path, &["--limits", table.to_str().unwrap()], &[]);
    assert!(
        stdout(&output).contains("above the maximum per payout (500,00"),
        "{}",
        stdout(&output)
    );
    // Wrong files: nothing is read from the payout file.
    for (name, text, needle) in [
        (
            "typo.toml",
            "daily_amont = 5\n",
            "unknown field `daily_amont`",
        ),
        ("type.toml", "[limits]\ndaily_count = \"x\"\n", "line 2"),
        (
            "amount.toml",
            "max_amount = \"1.5E+3\"\n",
            "max_amount: invalid amount",
        ),
        ("broken.toml", "max_amount = [\n", "line 1"),
    ] {
        let bad = file(name, text.as_bytes());
        let output = check(&path, &["--limits", bad.to_str().unwrap()], &[]);
        crate::assert_fails(&output, 2, needle);
    }
    let output = check(&path, &["--limits", "/nonexistent/limits.toml"], &[]);
    crate::assert_fails(
        &output,
        2,
        "--limits /nonexistent/limits.toml: cannot read it",
    );
}

#[test]
fn json_prints_one_object() {
    let path = file(
        "json.csv",
        b"phone,amount,customer_id\n87011234567,\"1 500,50\",c-1\n87011234567,1500.505,c-2\n",
    );
    let output = check(&path, &["--json", "--max-amount", "100000"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["outcome"], "input_error");
    assert_eq!(value["exit_code"], 2);
    assert_eq!(value["rows"], 2);
    assert_eq!(value["valid_rows"], 1);
    assert_eq!(value["errors"][0]["line"], 3);
    assert_eq!(value["errors"][0]["column"], "amount");
    assert_eq!(value["errors"][0]["kind"], "invalid");
    assert_eq!(
        value["errors"][0]["message"],
        "3 fraction digits; KZT has 2"
    );
    assert_eq!(value["totals"][0]["amount"], "1500.50");
    assert_eq!(value["totals"][0]["amount_minor"], 150_050);
    assert_eq!(value["limits"][0]["limit"], "max_amount");
    assert_eq!(value["limits"][0]["value"], "100000.00");
    assert_eq!(value["batch_id"].as_str().unwrap().len(), 64);

    let good = file(
        "json-good.csv",
        b"phone,amount,customer_id\n87011234567,100,c-1\n",
    );
    let output = check(&good, &["--json"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["errors"], serde_json::json!([]));
}

#[test]
fn a_file_that_cannot_be_read_is_one_line_and_exit_2() {
    let header = file("unknown.csv", b"phone,amount,customer_id,sum\n");
    crate::assert_fails(
        &check(&header, &[], &[]),
        2,
        "line 1: unknown column \"sum\"; the columns are payment_id, phone",
    );
    let missing = PathBuf::from("/nonexistent/payouts.csv");
    crate::assert_fails(&check(&missing, &[], &[]), 2, "cannot read the file");
    let cp1251 = file(
        "cp1251.csv",
        b"phone;amount;customer_id;first_name;last_name\n87011234567;100;c-1;\xc0\xe9\xe3\xe5\xf0\xe8\xec;\xd1\xe0\xef\xe0\xf0\xee\xe2\xe0\n",
    );
    let output = check(&cp1251, &[], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout(&output).starts_with(
            "line 2, column first_name: not UTF-8 (byte 0xC0); if it was saved as Windows-1251"
        ),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("iconv -f WINDOWS-1251 -t UTF-8"));
    // With --json, a file error is the usual failure object.
    let output = check(&header, &["--json"], &[]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["exit_code"], 2);
}

#[test]
fn a_header_without_rows_is_not_a_valid_batch() {
    let path = file("empty-rows.csv", b"phone,amount,customer_id\n");
    let output = check(&path, &[], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "rp batch check: the file has a header but no rows; nothing to pay\n"
    );
}
