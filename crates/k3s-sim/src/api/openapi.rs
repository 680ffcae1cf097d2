//! A minimal OpenAPI v2 document at /openapi/v2. kubectl 1.20 fetches it (as gnostic protobuf)
//! before `create`/`apply` to validate objects, and skips validation for kinds the document does
//! not describe; without the document it refuses to create anything unless `--validate=false`.

use serde_json::{Value, json};

/// The Content-Type of the protobuf document (Go's mime parser rejects the `@` of the Accept type).
pub const PROTOBUF_CONTENT_TYPE: &str = "application/octet-stream";

fn field_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    let mut len = bytes.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
}

/// The document as gnostic `openapi_v2.Document` protobuf: swagger "2.0" (field 1) and info
/// (field 2: title, version); no paths and no definitions.
pub fn protobuf(version: &str) -> Vec<u8> {
    let mut info = Vec::new();
    field_bytes(&mut info, 1, b"Kubernetes");
    field_bytes(&mut info, 2, version.as_bytes());
    let mut doc = Vec::new();
    field_bytes(&mut doc, 1, b"2.0");
    field_bytes(&mut doc, 2, &info);
    doc
}

/// The same document as JSON.
pub fn json(version: &str) -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": version}, "paths": {}, "definitions": {}})
}

/// Whether the Accept header asks for protobuf.
pub fn wants_protobuf(accept: &str) -> bool {
    accept.contains("protobuf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_encoding() {
        let doc = protobuf("v1.33.5+k3s1");
        assert_eq!(&doc[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(doc[5], 0x12);
        assert_eq!(usize::from(doc[6]), doc.len() - 7);
        let mut long = Vec::new();
        field_bytes(&mut long, 1, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x0a, 0xc8, 0x01]);
    }
}
