//! The command line of `cargo xtask bench <name> ...`: one parser for every bench. A bench
//! declares its options once ([`Usage`]: flags and whole numbers with their default and
//! range); the parser reads the arguments against that table, answers `--help`, and refuses an
//! unknown option, a missing or bad value with an error that names the option and shows the
//! bench's usage line, built from the same table.

use std::fmt::Write as _;

/// An option without a value: present or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// As typed, with its dashes (`--release`).
    pub name: &'static str,
}

/// An option taking a whole number, within a range, with a default when it is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    /// As typed, with its dashes (`--hosts`).
    pub name: &'static str,
    /// What the usage line shows for the value (`N`).
    pub placeholder: &'static str,
    /// The value when the option is not given.
    pub default: usize,
    /// Smallest value accepted.
    pub min: usize,
    /// Largest value accepted.
    pub max: usize,
}

/// One entry of a bench's option table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// An option without a value.
    Flag(Flag),
    /// An option with a whole number.
    Number(Number),
}

impl Flag {
    /// The flag `name`.
    pub const fn new(name: &'static str) -> Self {
        Flag { name }
    }
}

impl Number {
    /// The option `name` with its value shown as `placeholder`, `default` when not given,
    /// accepted from `min` to `max`.
    pub const fn new(
        name: &'static str,
        placeholder: &'static str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Self {
        Number {
            name,
            placeholder,
            default,
            min,
            max,
        }
    }
}

impl Opt {
    fn name(&self) -> &'static str {
        match self {
            Opt::Flag(f) => f.name,
            Opt::Number(n) => n.name,
        }
    }
}

/// `--release`: build k3sctl and the stand-in in release (every bench has it).
pub const RELEASE: Flag = Flag::new("--release");

/// A bench's name and its options, in the order the usage line shows them.
#[derive(Debug)]
pub struct Usage {
    /// The bench's name after `cargo xtask bench`.
    pub bench: &'static str,
    /// Every option the bench takes.
    pub options: &'static [Opt],
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `--help` or `-h`: show the usage line, run nothing.
    Help,
    /// Run the bench with these values.
    Run(Values),
}

/// The options given, read through the bench's own [`Flag`] and [`Number`] constants.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Values {
    flags: Vec<&'static str>,
    numbers: Vec<(&'static str, usize)>,
}

impl Values {
    /// Whether `flag` was given.
    pub fn flag(&self, flag: &Flag) -> bool {
        self.flags.contains(&flag.name)
    }

    /// The value given for `number` (the last one when given twice), else its default.
    pub fn number(&self, number: &Number) -> usize {
        self.numbers
            .iter()
            .rev()
            .find(|(name, _)| *name == number.name)
            .map_or(number.default, |(_, value)| *value)
    }
}

/// A command line the bench cannot run with. Each message ends with the bench's usage line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// The first argument names no bench.
    #[error("no bench {given:?}; usage:\n{usages}")]
    UnknownBench {
        /// What was given (empty when nothing was).
        given: String,
        /// Every bench's usage line, one a line.
        usages: String,
    },
    /// An argument the bench does not take.
    #[error("bench {bench}: unknown option {given:?}; usage: {usage}")]
    UnknownOption {
        /// The bench's name.
        bench: &'static str,
        /// The argument as given.
        given: String,
        /// The bench's usage line.
        usage: String,
    },
    /// A number option at the end of the line, without its value.
    #[error("bench {bench}: {option} needs a value ({placeholder}); usage: {usage}")]
    MissingValue {
        /// The bench's name.
        bench: &'static str,
        /// The option.
        option: &'static str,
        /// What its value stands for.
        placeholder: &'static str,
        /// The bench's usage line.
        usage: String,
    },
    /// A value that is not a whole number.
    #[error("bench {bench}: {option} {given:?} is not a whole number; usage: {usage}")]
    NotANumber {
        /// The bench's name.
        bench: &'static str,
        /// The option.
        option: &'static str,
        /// The value as given.
        given: String,
        /// The bench's usage line.
        usage: String,
    },
    /// A whole number outside the option's range.
    #[error("bench {bench}: {option} {value} is out of range: from {min} to {max}; usage: {usage}")]
    OutOfRange {
        /// The bench's name.
        bench: &'static str,
        /// The option.
        option: &'static str,
        /// The value given.
        value: usize,
        /// Smallest value accepted.
        min: usize,
        /// Largest value accepted.
        max: usize,
        /// The bench's usage line.
        usage: String,
    },
}

impl Usage {
    /// `cargo xtask bench <name> [--flag] [--number N] ...`.
    pub fn line(&self) -> String {
        let mut line = format!("cargo xtask bench {}", self.bench);
        for opt in self.options {
            let _ = match opt {
                Opt::Flag(f) => write!(line, " [{}]", f.name),
                Opt::Number(n) => write!(line, " [{} {}]", n.name, n.placeholder),
            };
        }
        line
    }

    /// Reads `args` (what follows the bench's name) against the option table.
    pub fn parse(&self, args: &[String]) -> Result<Parsed, ArgsError> {
        let mut values = Values::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(Parsed::Help);
            }
            match self.options.iter().find(|o| o.name() == arg.as_str()) {
                Some(Opt::Flag(f)) => values.flags.push(f.name),
                Some(Opt::Number(n)) => {
                    let given = it.next().ok_or_else(|| ArgsError::MissingValue {
                        bench: self.bench,
                        option: n.name,
                        placeholder: n.placeholder,
                        usage: self.line(),
                    })?;
                    values.numbers.push((n.name, self.number(n, given)?));
                }
                None => {
                    return Err(ArgsError::UnknownOption {
                        bench: self.bench,
                        given: arg.clone(),
                        usage: self.line(),
                    });
                }
            }
        }
        Ok(Parsed::Run(values))
    }

    fn number(&self, n: &Number, given: &str) -> Result<usize, ArgsError> {
        let value: usize = given.parse().map_err(|_| ArgsError::NotANumber {
            bench: self.bench,
            option: n.name,
            given: given.to_owned(),
            usage: self.line(),
        })?;
        if !(n.min..=n.max).contains(&value) {
            return Err(ArgsError::OutOfRange {
                bench: self.bench,
                option: n.name,
                value,
                min: n.min,
                max: n.max,
                usage: self.line(),
            });
        }
        Ok(value)
    }
}

/// Every bench's usage line, one a line (for a missing or unknown bench name).
pub fn usages(benches: &[&Usage]) -> String {
    benches
        .iter()
        .map(|u| format!("  {}", u.line()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: Number = Number::new("--hosts", "N", 3, 1, 50);
    const ONLY: Flag = Flag::new("--planner-only");
    const USAGE: Usage = Usage {
        bench: "demo",
        options: &[Opt::Flag(RELEASE), Opt::Number(HOSTS), Opt::Flag(ONLY)],
    };

    fn parse(args: &[&str]) -> Result<Parsed, ArgsError> {
        USAGE.parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    fn values(args: &[&str]) -> Values {
        match parse(args) {
            Ok(Parsed::Run(v)) => v,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn the_usage_line_lists_every_option_in_table_order() {
        assert_eq!(
            USAGE.line(),
            "cargo xtask bench demo [--release] [--hosts N] [--planner-only]"
        );
        let other = Usage {
            bench: "x",
            options: &[Opt::Flag(RELEASE)],
        };
        assert_eq!(
            usages(&[&USAGE, &other]),
            "  cargo xtask bench demo [--release] [--hosts N] [--planner-only]\n  \
             cargo xtask bench x [--release]"
        );
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let v = values(&[]);
        assert!(!v.flag(&RELEASE) && !v.flag(&ONLY));
        assert_eq!(v.number(&HOSTS), 3);
    }

    #[test]
    fn flags_and_numbers_are_read_in_any_order_and_the_last_number_wins() {
        let v = values(&[
            "--hosts",
            "5",
            "--release",
            "--planner-only",
            "--hosts",
            "7",
        ]);
        assert!(v.flag(&RELEASE) && v.flag(&ONLY));
        assert_eq!(v.number(&HOSTS), 7);
        let v = values(&["--hosts", "1"]);
        assert_eq!(v.number(&HOSTS), 1);
        assert!(!v.flag(&RELEASE));
        assert_eq!(values(&["--hosts", "50"]).number(&HOSTS), 50);
    }

    #[test]
    fn help_is_answered_wherever_it_stands() {
        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse(&["--release", "-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn an_unknown_option_is_named_with_the_benchs_usage() {
        let err = parse(&["--release", "--round", "3"]).expect_err("unknown");
        assert!(
            matches!(&err, ArgsError::UnknownOption { given, .. } if given == "--round"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "bench demo: unknown option \"--round\"; usage: cargo xtask bench demo [--release] \
             [--hosts N] [--planner-only]"
        );
        // A flag's name with a value glued on is not the flag.
        assert!(matches!(
            parse(&["--release=1"]),
            Err(ArgsError::UnknownOption { .. })
        ));
    }

    #[test]
    fn bad_values_are_refused_naming_the_option() {
        assert!(matches!(
            parse(&["--hosts"]),
            Err(ArgsError::MissingValue {
                option: "--hosts",
                ..
            })
        ));
        let err = parse(&["--hosts", "three"]).expect_err("not a number");
        assert!(
            matches!(&err, ArgsError::NotANumber { given, .. } if given == "three"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("--hosts \"three\" is not a whole number")
        );
        for (given, value) in [("0", 0), ("51", 51)] {
            let err = parse(&["--hosts", given]).expect_err("out of range");
            assert_eq!(
                err,
                ArgsError::OutOfRange {
                    bench: "demo",
                    option: "--hosts",
                    value,
                    min: 1,
                    max: 50,
                    usage: USAGE.line(),
                }
            );
            assert!(err.to_string().contains("from 1 to 50"), "{err}");
        }
        assert!(matches!(
            parse(&["--hosts", "-1"]),
            Err(ArgsError::NotANumber { .. })
        ));
    }
}
