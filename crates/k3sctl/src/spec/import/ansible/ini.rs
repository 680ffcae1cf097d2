//! INI inventories: `[group]` host lines with `key=value` vars, `[group:vars]`,
//! `[group:children]`.

use super::inventory::{Inventory, InventoryError, Vars};

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

/// Parses an INI inventory.
pub(super) fn parse(text: &str) -> Result<Inventory, InventoryError> {
    let mut inventory = Inventory::default();
    let mut section = Section::Hosts("ungrouped".to_owned());
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let error = |message: String| InventoryError {
            line: line_no,
            message,
        };
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| error(format!("section header `{line}` has no closing `]`")))?;
            section = match name.split_once(':') {
                None => Section::Hosts(name.to_owned()),
                Some((group, "vars")) => Section::Vars(group.to_owned()),
                Some((group, "children")) => Section::Children(group.to_owned()),
                Some((_, kind)) => return Err(error(format!("unknown section kind `:{kind}`"))),
            };
            let (Section::Hosts(group) | Section::Vars(group) | Section::Children(group)) =
                &section;
            inventory.groups.entry(group.clone()).or_default();
            continue;
        }
        let words = split_words(line).map_err(error)?;
        match &section {
            Section::Hosts(group) => {
                let Some((host, rest)) = words.split_first() else {
                    continue;
                };
                if host.contains('[') {
                    return Err(error(format!(
                        "host pattern `{host}` is a range; list the hosts one per line"
                    )));
                }
                let vars = rest
                    .iter()
                    .map(|word| key_value(word))
                    .collect::<Result<Vars, _>>()
                    .map_err(error)?;
                inventory.add_host(group, host, vars);
            }
            Section::Vars(group) => {
                let (key, value) = match line.split_once('=') {
                    Some((key, value)) => (key.trim(), unquote(value.trim())),
                    None => return Err(error(format!("`{line}` is not key=value"))),
                };
                inventory
                    .groups
                    .entry(group.clone())
                    .or_default()
                    .vars
                    .insert(key.to_owned(), value);
            }
            Section::Children(group) => {
                let child = words.first().cloned().unwrap_or_default();
                inventory.groups.entry(child.clone()).or_default();
                let children = &mut inventory.groups.entry(group.clone()).or_default().children;
                if !children.contains(&child) {
                    children.push(child);
                }
            }
        }
    }
    Ok(inventory)
}

fn key_value(word: &str) -> Result<(String, String), String> {
    word.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("host variable `{word}` is not key=value"))
}

fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// Splits on whitespace, keeping quoted parts together and removing the quotes; a `#` that
/// starts a word begins a comment.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None if c == '#' && !in_word => break,
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unclosed quote in `{line}`"));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_groups_children_vars_and_host_vars() {
        let text = "\
# k3s-ansible
[server]
10.0.0.1 ansible_user=\"deb ian\"

[agent]
10.0.0.2  # first agent

[k3s_cluster:children]
server
agent

[k3s_cluster:vars]
k3s_version = v1.30.2+k3s1
token=\"change me\"
";
        let inventory = parse(text).expect("parses");
        assert_eq!(inventory.members("k3s_cluster"), ["10.0.0.1", "10.0.0.2"]);
        let vars = inventory.vars_of("10.0.0.1");
        assert_eq!(vars["ansible_user"], "deb ian");
        assert_eq!(vars["k3s_version"], "v1.30.2+k3s1");
        assert_eq!(vars["token"], "change me");
        assert_eq!(
            inventory.groups_of("10.0.0.2"),
            ["all", "k3s_cluster", "agent"]
        );
    }

    #[test]
    fn reports_bad_lines_with_their_number() {
        let error = parse("[server\nx\n").expect_err("bad header");
        assert_eq!(error.line, 1);
        let error = parse("[web]\nnode[01:03]\n").expect_err("range");
        assert_eq!(error.line, 2);
        assert!(parse("[a:vars]\nnovalue\n").is_err());
        assert!(parse("[a]\nh x=\"open\n").is_err());
    }
}
