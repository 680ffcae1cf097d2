//! Paths into the spec document (`spec.hosts[2].name`), used to locate semantic errors.

use std::fmt;

/// One step of a [`SpecPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from the document root to a node, such as `spec.hosts[2].name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SpecPath {
    segments: Vec<Segment>,
}

impl SpecPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    /// The steps of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Parses the dotted form (`spec.hosts[2].name`); keys containing `.` or `[` cannot be
    /// written this way, use [`SpecPath::key`] for them.
    pub fn parse(text: &str) -> Self {
        let mut path = Self::root();
        for part in text.split('.').filter(|part| !part.is_empty()) {
            let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
            if !key.is_empty() {
                path = path.key(key);
            }
            for index in indexes.split('[') {
                if let Ok(index) = index.trim_end_matches(']').parse() {
                    path = path.index(index);
                }
            }
        }
        path
    }
}

impl fmt::Display for SpecPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Builds a [`SpecPath`] from keys and indexes: `spec_path!["spec", "hosts", 2, "name"]`.
#[macro_export]
macro_rules! spec_path {
    ($($segment:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut path = $crate::spec::SpecPath::root();
        $(path = $crate::spec::path::IntoSegment::push_onto($segment, path);)*
        path
    }};
}

/// Things that can extend a [`SpecPath`] in [`spec_path!`]: strings are keys, integers indexes.
pub trait IntoSegment {
    /// Appends `self` to `path`.
    fn push_onto(self, path: SpecPath) -> SpecPath;
}

impl IntoSegment for &str {
    fn push_onto(self, path: SpecPath) -> SpecPath {
        path.key(self)
    }
}

impl IntoSegment for &String {
    fn push_onto(self, path: SpecPath) -> SpecPath {
        path.key(self.as_str())
    }
}

impl IntoSegment for usize {
    fn push_onto(self, path: SpecPath) -> SpecPath {
        path.index(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses() {
        let path = spec_path!["spec", "hosts", 2usize, "name"];
        assert_eq!(path.to_string(), "spec.hosts[2].name");
        assert_eq!(SpecPath::parse("spec.hosts[2].name"), path);
    }
}
