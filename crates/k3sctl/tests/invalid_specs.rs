//! The corpus of broken specs under tests/fixtures/invalid: each file states, in its leading
//! `# expect: LINE:COL MESSAGE [| hint: HINT]` comments, every error the loader must report —
//! no more, no fewer, each at exactly that line and column.

use std::path::{Path, PathBuf};

use k3sctl::spec::{SpecError, load_file};

struct Expectation {
    line: u64,
    column: u64,
    message: String,
    hint: Option<String>,
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = fs_err::read_dir(&dir)
        .expect("fixtures dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn expectations(path: &Path) -> Vec<Expectation> {
    let text = fs_err::read_to_string(path).expect("readable fixture");
    text.lines()
        .map_while(|line| line.strip_prefix("# expect: "))
        .map(|rest| {
            let (position, rest) = rest.split_once(' ').expect("LINE:COL then message");
            let (line, column) = position.split_once(':').expect("LINE:COL");
            let (message, hint) = match rest.split_once(" | hint: ") {
                Some((message, hint)) => (message, Some(hint.to_owned())),
                None => (rest, None),
            };
            Expectation {
                line: line.parse().expect("line number"),
                column: column.parse().expect("column number"),
                message: message.to_owned(),
                hint,
            }
        })
        .collect()
}

fn describe(errors: &[SpecError]) -> String {
    errors
        .iter()
        .map(|e| {
            format!(
                "  {}:{} {} (hint: {:?})",
                e.line, e.column, e.message, e.hint
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn corpus_has_at_least_thirty_broken_specs() {
    assert!(fixtures().len() >= 30, "only {} fixtures", fixtures().len());
}

#[test]
fn every_broken_spec_reports_exactly_its_expected_errors() {
    let mut failures = Vec::new();
    for path in fixtures() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = expectations(&path);
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let errors = match load_file(&path) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without errors"));
                continue;
            }
            Err(errors) => errors.errors().to_vec(),
        };
        let matched = expected.iter().all(|want| {
            errors.iter().any(|got| {
                got.line == want.line
                    && got.column == want.column
                    && got.message == want.message
                    && want.hint.as_ref().is_none_or(|hint| {
                        got.hint
                            .as_ref()
                            .is_some_and(|h| h.starts_with(hint.as_str()))
                    })
            })
        });
        if !matched || errors.len() != expected.len() {
            failures.push(format!("{name}: got\n{}", describe(&errors)));
        }
        let text = fs_err::read_to_string(&path).expect("readable fixture");
        for error in &errors {
            assert_eq!(
                error.file,
                path.display().to_string(),
                "{name}: errors name the file"
            );
            // The line shown under the message is the file's own line at the reported position.
            let at = usize::try_from(error.line).expect("line fits usize");
            assert_eq!(
                error.source_line.as_deref(),
                text.lines().nth(at.saturating_sub(1)),
                "{name}: the error at {}:{} shows the file's line {}",
                error.line,
                error.column,
                error.line
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendered_errors_show_location_line_and_caret() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid/16-unknown-key-tls-san.yaml");
    let errors = load_file(&path).expect_err("broken");
    let text = errors.to_string();
    let expected = format!(
        "error: unknown key `tlsSan`\n  --> {}:17:5\n   |\n17 |     tlsSan: [k3s.example.com]\n   |     ^\n   = hint: did you mean `tlsSans`?",
        path.display()
    );
    assert!(text.starts_with(&expected), "got:\n{text}");
    assert!(text.ends_with("1 error found"), "got:\n{text}");
}
