//! The loader never panics: random bytes, random text and random mutations of the example specs
//! all end in `Ok` or located errors.

use std::path::Path;

use k3sctl::spec::{ValidationContext, load_str};
use proptest::prelude::*;

fn examples() -> Vec<String> {
    ["oci.yaml", "proxmox.yaml", "lab.yaml"]
        .iter()
        .map(|name| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(name);
            fs_err::read_to_string(path).expect("example readable")
        })
        .collect()
}

fn context() -> ValidationContext {
    ValidationContext::from_env(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples"))
}

/// Loads `text` and checks the result is well-formed: errors have a location inside the text.
fn check(text: &str) {
    match load_str(text, "fuzz.yaml", &context()) {
        Ok(_) => {}
        Err(errors) => {
            let lines = text.lines().count() as u64 + 1;
            for error in errors.errors() {
                assert!(
                    error.line >= 1 && error.line <= lines.max(1),
                    "line {} of {lines}",
                    error.line
                );
                assert!(error.column >= 1);
                assert!(!error.message.is_empty());
            }
            let _ = errors.to_string();
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Replace { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let clamp = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match mutation {
        Mutation::Delete { at, len } => {
            let start = clamp(*at);
            let end = clamp(start + len);
            format!("{}{}", &text[..start], &text[end.max(start)..])
        }
        Mutation::Insert { at, text: insert } => {
            let at = clamp(*at);
            format!("{}{insert}{}", &text[..at], &text[at..])
        }
        Mutation::Replace { at, text: insert } => {
            let start = clamp(*at);
            let end = clamp(start + insert.len());
            format!("{}{insert}{}", &text[..start], &text[end.max(start)..])
        }
        Mutation::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.insert(i, lines[i]);
            }
            lines.join("\n")
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (a % lines.len(), b % lines.len());
                lines.swap(a, b);
            }
            lines.join("\n")
        }
    }
}

fn yamlish() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":".to_owned()),
        Just("- ".to_owned()),
        Just("\n  ".to_owned()),
        Just("\t".to_owned()),
        Just("{".to_owned()),
        Just("]".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: *a\n".to_owned()),
        Just("!!binary ".to_owned()),
        Just("\"".to_owned()),
        Just("---\n".to_owned()),
        Just("null".to_owned()),
        Just("9999999999999999999999".to_owned()),
        "[a-zA-Z0-9 .:/+-]{0,12}",
        "\\PC{0,8}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), yamlish()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), yamlish()).prop_map(|(at, text)| Mutation::Replace { at, text }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut text = examples()[which].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        check(&text);
    }
}

#[test]
fn unmutated_examples_load() {
    for text in examples() {
        load_str(&text, "example.yaml", &context()).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    check(&nested);
    let mapping = "a:\n".to_owned() + &" b:\n".repeat(2000);
    check(&mapping);
}
