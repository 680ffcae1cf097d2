//! The K3s binary on the operator's machine: a local file (airgap) or a release download kept
//! in a local cache, with its sha256 and architecture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::k3s::release::Arch;

/// Local binaries by architecture, with their sha256.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalBinaries {
    /// Path and sha256 per architecture.
    pub by_arch: BTreeMap<Arch, (PathBuf, String)>,
}

impl LocalBinaries {
    /// sha256 per architecture (what the planner compares).
    pub fn hashes(&self) -> BTreeMap<Arch, String> {
        self.by_arch
            .iter()
            .map(|(a, (_, h))| (*a, h.clone()))
            .collect()
    }

    /// The local path for an architecture.
    pub fn path(&self, arch: Arch) -> Option<&Path> {
        self.by_arch.get(&arch).map(|(p, _)| p.as_path())
    }
}

/// Why the binary is not usable.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The file could not be read.
    #[error("k3s.binary.file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an executable for a supported architecture.
    #[error("k3s.binary.file {path}: {reason}")]
    NotABinary {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The architecture of an ELF executable, from its header (e_machine).
pub fn elf_arch(header: &[u8]) -> Result<Arch, String> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return Err("not an ELF executable".into());
    }
    let little = header[5] == 1;
    let machine = if little {
        u16::from_le_bytes([header[18], header[19]])
    } else {
        u16::from_be_bytes([header[18], header[19]])
    };
    match machine {
        0x3e => Ok(Arch::Amd64),
        0xb7 => Ok(Arch::Arm64),
        0x28 => Ok(Arch::Arm),
        other => Err(format!("ELF machine {other:#x} is not amd64, arm64 or arm")),
    }
}

/// Uses a local file as the binary for its architecture.
pub async fn from_file(path: &Path) -> Result<LocalBinaries, BinaryError> {
    let read_err = |source| BinaryError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut header = vec![0u8; 20];
    {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
        file.read_exact(&mut header).await.map_err(read_err)?;
    }
    let arch = elf_arch(&header).map_err(|reason| BinaryError::NotABinary {
        path: path.to_path_buf(),
        reason,
    })?;
    let sha = crate::host::hash::sha256_file(path)
        .await
        .map_err(read_err)?;
    Ok(LocalBinaries {
        by_arch: BTreeMap::from([(arch, (path.to_path_buf(), sha))]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_elf_machine() {
        let mut header = b"\x7fELF\x02\x01\x01\x00".to_vec();
        header.resize(20, 0);
        header[18] = 0x3e;
        assert_eq!(elf_arch(&header), Ok(Arch::Amd64));
        header[18] = 0xb7;
        assert_eq!(elf_arch(&header), Ok(Arch::Arm64));
        assert!(elf_arch(b"#!/bin/sh\necho hi\n\n\n\n").is_err());
    }

    #[tokio::test]
    async fn this_machines_sh_is_a_usable_binary() {
        let binaries = from_file(Path::new("/bin/sh")).await.expect("readable ELF");
        assert_eq!(binaries.by_arch.len(), 1);
        let (_, (path, sha)) = binaries.by_arch.iter().next().expect("one");
        assert_eq!(path, Path::new("/bin/sh"));
        assert_eq!(sha.len(), 64);
    }
}
