//! The cluster spec: model, loading with located errors, validation, schema.
