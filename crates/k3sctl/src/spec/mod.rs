//! The cluster spec: model, loading with located errors, validation, JSON schema, imports.
//!
//! Entry point: [`load_file`] reads a spec file and returns a [`LoadedSpec`] that passed every
//! rule, or [`SpecErrors`] listing every problem with its file, line and column.
//! This layer does no network I/O; it only reads the files the spec names.

mod duration;
pub mod edit;
mod env_refs;
mod error;
pub mod import;
mod load;
pub mod model;
mod net;
pub mod path;
mod resolve;
mod scalar;
mod schema;
mod spans;
mod starter;
mod structure;
mod suggest;
pub(crate) mod taint;
mod validate;
mod version;

pub use crate::k3s::version::K3sVersion;
pub use duration::{Duration, DurationError};
pub use env_refs::{MissingEnv, check_env_refs, env_is_set};
pub use error::{SpecError, SpecErrors};
pub use load::{LoadedSpec, load_file, load_str, parse_str};
pub use model::*;
pub use net::{Cidr, CidrError};
pub use path::SpecPath;
pub use resolve::{ResolvedHost, ResolvedSsh, ResolvedTransport, https_url};
pub use schema::{json_schema, json_schema_text};
pub use spans::{Position, SpanTree, Target};
pub use starter::{render_spec, starter_spec};
pub use taint::{LabelError, Taint, TaintEffect, check_label_key, check_label_value, is_dns_label};
pub use validate::{Issue, ValidationContext, resolve_path, validate};
pub use version::{ChannelError, ChannelName};
