//! Objects of any kind, named by `apiVersion` and `kind` as a manifest names them: read one,
//! or write the fields a document declares by server-side apply. The kind's resource (plural
//! name, namespaced or not) comes from the API's discovery.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope, pinned_kind};
use kube::{Client, Error};

use serde_json::Value;

use super::error::KubeError;

/// The field manager k3sctl's server-side applies use.
pub const FIELD_MANAGER: &str = "k3sctl";

fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// The kind's resource; `None` when the API does not serve it (a CRD not installed).
async fn resource(
    client: &Client,
    api_version: &str,
    kind: &str,
) -> Result<Option<(ApiResource, ApiCapabilities)>, KubeError> {
    match pinned_kind(client, &gvk(api_version, kind)).await {
        Ok(found) => Ok(Some(found)),
        Err(Error::Discovery(_)) => Ok(None),
        Err(source) if super::error::status_code(&source) == Some(404) => Ok(None),
        Err(source) => Err(KubeError::Api {
            what: format!("looking up {kind} ({api_version}) in the API's discovery"),
            source,
        }),
    }
}

fn api_for(
    client: &Client,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match caps.scope {
        Scope::Cluster => Api::all_with(client.clone(), resource),
        Scope::Namespaced => {
            Api::namespaced_with(client.clone(), namespace.unwrap_or("default"), resource)
        }
    }
}

/// The object as the API has it; `None` when it does not exist or its kind is not served.
/// A namespaced kind without a namespace is looked up in `default`, where K3s creates it.
pub async fn read_object(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, KubeError> {
    let Some((resource, caps)) = resource(client, api_version, kind).await? else {
        return Ok(None);
    };
    let api = api_for(client, &resource, &caps, namespace);
    let found = api.get_opt(name).await.map_err(|source| KubeError::Api {
        what: format!("reading {kind} {name}"),
        source,
    })?;
    found
        .map(|object| {
            serde_json::to_value(object).map_err(|e| KubeError::Unexpected {
                what: format!("reading {kind} {name}"),
                detail: e.to_string(),
            })
        })
        .transpose()
}

/// Server-side apply of `doc` by [`FIELD_MANAGER`], forced: the fields it declares get its
/// values (taken over from whoever set them), other fields stay; a missing object is created.
pub async fn apply_object(client: &Client, doc: &Value) -> Result<(), KubeError> {
    let text = |pointer: &str| doc.pointer(pointer).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(KubeError::Unexpected {
            what: "applying an object".into(),
            detail: "the document has no apiVersion, kind or metadata.name".into(),
        });
    };
    let Some((resource, caps)) = resource(client, api_version, kind).await? else {
        return Err(KubeError::Unexpected {
            what: format!("applying {kind} {name}"),
            detail: format!("the API does not serve {kind} ({api_version})"),
        });
    };
    let api = api_for(client, &resource, &caps, text("/metadata/namespace"));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(doc))
        .await
        .map_err(|source| KubeError::Api {
            what: format!("applying {kind} {name}"),
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_split_into_group_and_version() {
        let core = gvk("v1", "ConfigMap");
        assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
        let helm = gvk("helm.cattle.io/v1", "HelmChartConfig");
        assert_eq!(
            (
                helm.group.as_str(),
                helm.version.as_str(),
                helm.kind.as_str()
            ),
            ("helm.cattle.io", "v1", "HelmChartConfig")
        );
    }
}
