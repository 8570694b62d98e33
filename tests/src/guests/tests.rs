use std::collections::BTreeSet;

use pool_proto::{Payload, Pid};
use serde::Serialize;

use super::*;

/// Reads a LEB128 unsigned integer at `*pos`.
fn leb(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// A length-prefixed name at `*pos`.
fn name(bytes: &[u8], pos: &mut usize) -> String {
    let len = leb(bytes, pos) as usize;
    let s = String::from_utf8(bytes[*pos..*pos + len].to_vec()).unwrap();
    *pos += len;
    s
}

/// The (module, name) of every import and the names of every export of a
/// wasm binary, read from its sections.
fn imports_and_exports(wasm: &[u8]) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    assert_eq!(&wasm[..8], b"\0asm\x01\0\0\0", "not a wasm 1.0 module");
    let (mut imports, mut exports) = (BTreeSet::new(), BTreeSet::new());
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let size = leb(wasm, &mut pos) as usize;
        let end = pos + size;
        let mut p = pos;
        match id {
            2 => {
                for _ in 0..leb(wasm, &mut p) {
                    let module = name(wasm, &mut p);
                    let field = name(wasm, &mut p);
                    // Only functions are imported here (kind 0, a type index).
                    assert_eq!(wasm[p], 0, "import {module}.{field} is not a function");
                    p += 1;
                    leb(wasm, &mut p);
                    imports.insert((module, field));
                }
            }
            7 => {
                for _ in 0..leb(wasm, &mut p) {
                    exports.insert(name(wasm, &mut p));
                    p += 1;
                    leb(wasm, &mut p);
                }
            }
            _ => {}
        }
        pos = end;
    }
    (imports, exports)
}

/// The build yields demo.wasm with every example export, importing only
/// from the host ABI (`spawnpool`) and WASI preview 1, and a second call
/// answers the same path without building again.
#[test]
fn demo_module_is_built_with_its_exports() {
    let path = guest_module("demo");
    assert_eq!(path, guest_module("demo.wasm"));
    let wasm = std::fs::read(&path).unwrap();
    let (imports, exports) = imports_and_exports(&wasm);
    for export in [
        "memory", "count", "primes", "echo", "spin", "hog", "trap", "pingpong", "children",
    ] {
        assert!(exports.contains(export), "{export} missing in {exports:?}");
    }
    for (module, field) in &imports {
        assert!(
            module == "spawnpool" || module == "wasi_snapshot_preview1",
            "unexpected import {module}.{field}"
        );
    }
    for field in [
        "args",
        "take",
        "set_result",
        "recv",
        "call",
        "reply",
        "spawn",
    ] {
        assert!(
            imports.contains(&("spawnpool".to_owned(), field.to_owned())),
            "spawnpool.{field} not imported: {imports:?}"
        );
    }
}

/// An unknown module name is refused with a message naming it.
#[test]
#[should_panic(expected = "no guest module \"nope\"")]
fn unknown_module_is_refused() {
    guest_module("nope");
}

/// The shape of the prime search's result, as guest and node both write it.
#[derive(Serialize)]
struct Found {
    from: u64,
    to: u64,
    largest: Option<u64>,
    count: u64,
}

/// An enum with a unit and a newtype variant.
#[derive(Serialize)]
enum Op {
    Inc,
    Add(u32),
}

/// The node encodes messages to the very bytes the guest library's unit
/// tests pin (guest/spawnpool-guest/src/{codec,id}/tests.rs): structs as
/// maps, enums externally tagged, a pid as `[node, serial]`, tuples as
/// arrays. If this fails, guests and native processes no longer agree.
#[test]
fn node_encoding_matches_the_guest_library() {
    let found = Found {
        from: 2,
        to: 10,
        largest: Some(7),
        count: 4,
    };
    let expected_found: &[u8] = &[
        0x84, 0xa4, b'f', b'r', b'o', b'm', 0x02, 0xa2, b't', b'o', 0x0a, 0xa7, b'l', b'a', b'r',
        b'g', b'e', b's', b't', 0x07, 0xa5, b'c', b'o', b'u', b'n', b't', 0x04,
    ];
    assert_eq!(Payload::encode(&found).unwrap().as_bytes(), expected_found);
    assert_eq!(
        Payload::encode(&Op::Inc).unwrap().as_bytes(),
        [0xa3, b'I', b'n', b'c']
    );
    assert_eq!(
        Payload::encode(&Op::Add(5)).unwrap().as_bytes(),
        [0x81, 0xa3, b'A', b'd', b'd', 0x05]
    );
    let pid: Pid = "<3f2a9c1e04d1b2aa.17>".parse().unwrap();
    assert_eq!(
        Payload::encode(&pid).unwrap().as_bytes(),
        [
            0x92, 0xcf, 0x3f, 0x2a, 0x9c, 0x1e, 0x04, 0xd1, 0xb2, 0xaa, 0x11
        ]
    );
    assert_eq!(
        Payload::encode(&("ping", 7u32)).unwrap().as_bytes(),
        [0x92, 0xa4, b'p', b'i', b'n', b'g', 0x07]
    );
}
