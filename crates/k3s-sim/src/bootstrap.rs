//! The server token and bootstrap data: which token the cluster was created with, the token files
//! under server/ (secure `K10...` form, node-token and agent-token symlinks), and the check that
//! refuses a different token.

use std::path::Path;

use crate::fatal::Fatal;
use crate::paths::DataDir;
use crate::settings::Settings;
use crate::store::ObjectStore;
use crate::token;

/// Datastore key of the bootstrap record.
const BOOTSTRAP_KEY: &str = "/bootstrap/token";

/// The passwords a server accepts.
#[derive(Clone)]
pub struct Tokens {
    /// The server token password.
    pub server: String,
    /// The agent token password, when `agent-token` is set.
    pub agent: Option<String>,
}

fn read_token_file(path: &str) -> Result<String, Fatal> {
    let p = crate::paths::host_path(path);
    fs_err::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Fatal(format!("reading token file {}: {e}", p.display())))
}

/// The token given by flags, config or environment (`token`, else `token-file`).
pub fn given_token(s: &Settings, name: &str, file_flag: &str) -> Result<Option<String>, Fatal> {
    if let Some(t) = s.str(name).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    match s.str(file_flag) {
        Some(f) => read_token_file(f).map(Some),
        None => Ok(None),
    }
}

/// Decides the token: the one given, else the existing server/token, else a new random one.
pub fn resolve(s: &Settings, dd: &DataDir) -> Result<Tokens, Fatal> {
    let server = match given_token(s, "token", "token-file")? {
        Some(t) => token::parse(&t).password,
        None => match fs_err::read_to_string(dd.token()) {
            Ok(existing) => token::parse(&existing).password,
            Err(_) => token::random_password(),
        },
    };
    let agent =
        given_token(s, "agent-token", "agent-token-file")?.map(|t| token::parse(&t).password);
    Ok(Tokens { server, agent })
}

/// Refuses a token that differs from the one the datastore was created with; records it on first start.
pub fn check_bootstrap(store: &ObjectStore, tokens: &Tokens) -> Result<(), Fatal> {
    let want = token::bootstrap_fingerprint(&tokens.server);
    match store.raw_get(BOOTSTRAP_KEY).map_err(|e| Fatal::ctx("reading bootstrap data", e))? {
        Some(found) if String::from_utf8_lossy(&found).trim() != want => Err(Fatal(
            "starting kubernetes: preparing server: bootstrap data already found and encrypted with different token".into(),
        )),
        Some(_) => Ok(()),
        None => store.raw_put(BOOTSTRAP_KEY, want.as_bytes()).map_err(|e| Fatal::ctx("writing bootstrap data", e)),
    }
}

/// `k3s token rotate` on the server: the bootstrap data re-keyed to `new_password` (its
/// fingerprint replaced in the datastore, so every server must start with the new token) and
/// `server/token` rewritten in secure form.
pub fn rotate(
    store: &ObjectStore,
    server_dir: &Path,
    ca_pem: &str,
    new_password: &str,
) -> Result<(), Fatal> {
    store
        .raw_put(
            BOOTSTRAP_KEY,
            token::bootstrap_fingerprint(new_password).as_bytes(),
        )
        .map_err(|e| Fatal::ctx("writing bootstrap data", e))?;
    let secure = token::format_secure(ca_pem.as_bytes(), "server", new_password);
    let path = server_dir.join("token");
    crate::paths::write_atomic(&path, format!("{secure}\n").as_bytes(), 0o600)
        .map_err(|e| Fatal(format!("writing {}: {e}", path.display())))
}

fn symlink(target: &str, link: &Path) -> Result<(), Fatal> {
    let _ = fs_err::remove_file(link);
    fs_err::os::unix::fs::symlink(target, link)
        .map_err(|e| Fatal(format!("creating {}: {e}", link.display())))
}

/// Writes server/token (secure form, 0600) and the node-token / agent-token files.
pub fn write_token_files(dd: &DataDir, ca_pem: &str, tokens: &Tokens) -> Result<(), Fatal> {
    let secure = token::format_secure(ca_pem.as_bytes(), "server", &tokens.server);
    let path = dd.token();
    crate::paths::write_atomic(&path, format!("{secure}\n").as_bytes(), 0o600)
        .map_err(|e| Fatal(format!("writing {}: {e}", path.display())))?;
    symlink("token", &dd.server().join("node-token"))?;
    let agent_path = dd.server().join("agent-token");
    match &tokens.agent {
        None => symlink("token", &agent_path),
        Some(pw) => {
            let _ = fs_err::remove_file(&agent_path);
            let text = format!("{}\n", token::format_secure(ca_pem.as_bytes(), "node", pw));
            crate::paths::write_atomic(&agent_path, text.as_bytes(), 0o600)
                .map_err(|e| Fatal(format!("writing {}: {e}", agent_path.display())))
        }
    }
}
