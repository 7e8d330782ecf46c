//! The corpus: every `tests/corpus/*.csv` is checked and its output compared, line for line,
//! with `*.expected` beside it.
//!
//! An `.expected` file may start with `# limits: key=value …` (keys of `LimitKind::key`,
//! values in minor units or counts). Then come the problem lines in file order, then either
//! `= rows R, valid V, invalid I, over limit O, total T; operators …` or, when the file
//! cannot be read, `! <the file error>`. `RP_BLESS=1 cargo test -p rp-batch --test it corpus`
//! rewrites the expected files from the current output (review the diff before committing).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rp_batch::{LimitKind, Limits, check_file};
use rp_model::Currency;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn limits_from(expected: &str) -> Limits {
    let mut limits = Limits::none(Currency::KZT);
    if let Some(line) = expected
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# limits:"))
    {
        for pair in line.split_whitespace() {
            let (key, value) = pair.split_once('=').unwrap();
            let kind = LimitKind::ALL
                .into_iter()
                .find(|k| k.key() == key)
                .unwrap_or_else(|| panic!("unknown limit {key}"));
            limits.set(kind, Some(value.parse().unwrap()));
        }
    }
    limits
}

/// The output of checking `path`, in the `.expected` form (without the limits line).
fn render(path: &Path, limits: &Limits) -> String {
    let mut out = String::new();
    let result = check_file(path, limits, |problem| {
        writeln!(out, "{problem}").unwrap();
    });
    match result {
        Ok(report) => {
            let totals: Vec<String> = report.totals.iter().map(|m| format!("{m:#}")).collect();
            let operators: Vec<String> = report
                .operators
                .iter()
                .map(|o| format!("{} {}", o.label, o.rows))
                .collect();
            writeln!(
                out,
                "= rows {}, valid {}, invalid {}, over limit {}, total {}; operators {}",
                report.rows,
                report.valid_rows,
                report.invalid_rows,
                report.over_limit_rows,
                if totals.is_empty() {
                    "none".to_owned()
                } else {
                    totals.join(" + ")
                },
                if operators.is_empty() {
                    "none".to_owned()
                } else {
                    operators.join(", ")
                },
            )
            .unwrap();
        }
        Err(error) => writeln!(out, "! {error}").unwrap(),
    }
    out
}

#[test]
fn every_corpus_file_gives_exactly_the_expected_lines() {
    let bless = std::env::var_os("RP_BLESS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for csv in &files {
        let expected_path = csv.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let limits = limits_from(&expected);
        let limits_line = expected
            .lines()
            .next()
            .filter(|l| l.starts_with("# limits:"));
        let mut actual = render(csv, &limits);
        if let Some(line) = limits_line {
            actual = format!("{line}\n{actual}");
        }
        // No phone number of the corpus appears whole in any message.
        for digits in ["7011234567", "7771234567", "9123456789", "7172123456"] {
            assert!(
                !actual.contains(digits),
                "{}: a phone number in {actual}",
                csv.display()
            );
        }
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
        } else if actual != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                csv.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every good file is valid and every bad one is not: the names say which.
#[test]
fn good_files_are_valid_and_bad_files_are_not() {
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let limits = limits_from(&expected);
        let valid = check_file(&path, &limits, |_| {}).is_ok_and(|report| report.is_valid());
        assert_eq!(valid, name.starts_with("good_"), "{name}");
    }
}
