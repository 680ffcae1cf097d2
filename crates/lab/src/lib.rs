//! Lab: Debian system containers booted with systemd-nspawn, for end-to-end tests.
