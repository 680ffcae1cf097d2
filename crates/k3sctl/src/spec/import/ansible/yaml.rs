//! YAML inventories: `group: {hosts: {name: {vars}}, vars: {...}, children: {group: ...}}`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::inventory::{Inventory, InventoryError, Vars};

/// A YAML node with mapping order kept (the first server must stay first).
#[derive(Debug)]
enum Node {
    Map(Vec<(String, Node)>),
    Other(String),
}

/// Parses a YAML inventory.
pub(super) fn parse(text: &str) -> Result<Inventory, InventoryError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let root: Node = serde_saphyr::from_str_with_options(text, options).map_err(|error| {
        let error = error.without_snippet();
        InventoryError {
            line: error
                .location()
                .and_then(|location| usize::try_from(location.line()).ok())
                .unwrap_or(0),
            message: error.render_with_formatter(&serde_saphyr::UserMessageFormatter),
        }
    })?;
    let Node::Map(groups) = root else {
        return Err(InventoryError {
            line: 1,
            message: "a YAML inventory is a mapping of group names".to_owned(),
        });
    };
    let mut inventory = Inventory::default();
    for (name, body) in &groups {
        read_group(&mut inventory, name, body);
    }
    Ok(inventory)
}

fn get<'a>(entries: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    entries
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, node)| node)
}

fn read_group(inventory: &mut Inventory, name: &str, body: &Node) {
    inventory.groups.entry(name.to_owned()).or_default();
    let Node::Map(body) = body else {
        return; // `group:` with nothing under it
    };
    if let Some(Node::Map(hosts)) = get(body, "hosts") {
        for (host, vars) in hosts {
            inventory.add_host(name, host, to_vars(vars));
        }
    }
    if let Some(vars) = get(body, "vars") {
        let group = inventory.groups.entry(name.to_owned()).or_default();
        group.vars.extend(to_vars(vars));
    }
    if let Some(Node::Map(children)) = get(body, "children") {
        for (child, child_body) in children {
            let group = inventory.groups.entry(name.to_owned()).or_default();
            if !group.children.contains(child) {
                group.children.push(child.clone());
            }
            read_group(inventory, child, child_body);
        }
    }
}

fn to_vars(node: &Node) -> Vars {
    match node {
        Node::Map(entries) => entries
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Node::Other(text) => text.clone(),
                    // A var's map (`extra_install_envs`) as a JSON object of its scalars.
                    Node::Map(entries) => {
                        let object: serde_json::Map<String, serde_json::Value> = entries
                            .iter()
                            .filter_map(|(k, v)| match v {
                                Node::Other(text) => Some((k.clone(), text.clone().into())),
                                Node::Map(_) => None,
                            })
                            .collect();
                        serde_json::Value::Object(object).to_string()
                    }
                };
                (key.clone(), text)
            })
            .collect(),
        Node::Other(_) => Vars::new(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Other(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Other(String::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Other(String::new()))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        // Lists are not part of the inventory structure; a var's list is kept as a JSON list
        // (items may hold commas: `NO_PROXY=a,b`).
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            if let Node::Other(text) = item {
                items.push(text);
            }
        }
        Ok(Node::Other(
            serde_json::to_string(&items).unwrap_or_default(),
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let key = match key {
                Node::Other(text) => text,
                Node::Map(_) => String::new(),
            };
            entries.push((key, map.next_value::<Node>()?));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_children_and_vars() {
        let text = "\
k3s_cluster:
  children:
    server:
      hosts:
        10.0.0.1:
    agent:
      hosts:
        10.0.0.2:
          ansible_port: 2222
  vars:
    k3s_version: v1.30.2+k3s1
";
        let inventory = parse(text).expect("parses");
        assert_eq!(inventory.members("k3s_cluster"), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(inventory.vars_of("10.0.0.2")["ansible_port"], "2222");
        assert_eq!(inventory.vars_of("10.0.0.1")["k3s_version"], "v1.30.2+k3s1");
    }

    #[test]
    fn list_and_map_vars_keep_their_items() {
        let text = "\
server:
  hosts:
    10.0.0.1:
  vars:
    extra_service_envs: ['NO_PROXY=a,b', 'K3S_RESOLV_CONF=/r']
    extra_install_envs:
      INSTALL_K3S_CHANNEL: latest
";
        let vars = parse(text).expect("parses").vars_of("10.0.0.1");
        assert_eq!(
            vars["extra_service_envs"],
            r#"["NO_PROXY=a,b","K3S_RESOLV_CONF=/r"]"#
        );
        assert_eq!(
            vars["extra_install_envs"],
            r#"{"INSTALL_K3S_CHANNEL":"latest"}"#
        );
    }

    #[test]
    fn rejects_non_mapping_documents_with_a_line() {
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("a: [\n").is_err());
    }
}
