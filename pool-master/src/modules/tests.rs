use super::*;

/// The empty module.
const EMPTY: &[u8] = b"\0asm\x01\0\0\0";

/// A valid module different from [`EMPTY`]: one custom section named
/// `tag`.
fn tagged(tag: u8) -> Vec<u8> {
    let mut m = EMPTY.to_vec();
    m.extend_from_slice(&[0x00, 0x02, 0x01, tag]);
    m
}

/// A pushed module is listed, fetched byte for byte, and its named form
/// resolves to the canonical one; a second push under the same file name
/// moves the name, while the first hash stays spawnable.
#[tokio::test]
async fn push_list_fetch_resolve_in_memory() {
    let store = ModuleStore::in_memory();
    let one = store
        .push("app.wasm".into(), tagged(1), None, 10)
        .await
        .unwrap();
    assert_eq!(one.hash, ModuleHash::of(&tagged(1)));
    assert_eq!(one.size, tagged(1).len() as u64);
    assert_eq!(store.list(), vec![one.clone()]);
    assert_eq!(store.fetch(one.hash).await.unwrap(), tagged(1));
    assert_eq!(
        store.resolve("app.wasm:count").unwrap(),
        format!("{}:count", one.hash)
    );
    let two = store
        .push(
            "app.wasm".into(),
            tagged(2),
            Some(ModuleHash::of(&tagged(2))),
            20,
        )
        .await
        .unwrap();
    assert_eq!(
        store.resolve("app.wasm:count").unwrap(),
        format!("{}:count", two.hash)
    );
    let first = format!("{}:count", one.hash);
    assert_eq!(store.resolve(&first).unwrap(), first);
    assert_eq!(store.list().len(), 2);
    // Native names go through unchanged.
    assert_eq!(store.resolve("builtin.echo").unwrap(), "builtin.echo");
}

/// Unknown modules are refused with the messages the design gives.
#[tokio::test]
async fn unknown_modules_are_refused_saying_what_to_do() {
    let store = ModuleStore::in_memory();
    let e = store.resolve("nope.wasm:run").unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownFunction);
    assert!(e.message.contains("poolctl module push"), "{e}");
    let h = ModuleHash::of(b"never pushed");
    let e = store.resolve(&format!("{h}:run")).unwrap_err();
    assert!(
        e.message.contains(&format!("no module {h} in the pool")),
        "{e}"
    );
    let e = store.fetch(h).await.unwrap_err();
    assert!(e.message.contains("no module"), "{e}");
}

/// Bytes that are not a module, a claimed hash that is not the bytes',
/// and a file name without `.wasm` are refused, and nothing is stored.
#[tokio::test]
async fn bad_pushes_are_refused() {
    let store = ModuleStore::in_memory();
    let e = store
        .push("a.wasm".into(), b"#!/bin/sh\n".to_vec(), None, 1)
        .await
        .unwrap_err();
    assert!(e.message.contains("not a WebAssembly module"), "{e}");
    // The header is right but a section is cut short.
    let mut cut = EMPTY.to_vec();
    cut.extend_from_slice(&[0x01, 0x05, 0x01]);
    let e = store.push("a.wasm".into(), cut, None, 1).await.unwrap_err();
    assert!(e.message.contains("not a valid WebAssembly module"), "{e}");
    let e = store
        .push(
            "a.wasm".into(),
            EMPTY.to_vec(),
            Some(ModuleHash::of(b"other")),
            1,
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("is not the sha-256"), "{e}");
    let e = store
        .push("a.bin".into(), EMPTY.to_vec(), None, 1)
        .await
        .unwrap_err();
    assert!(e.message.contains(".wasm"), "{e}");
    assert!(store.list().is_empty());
}

/// The store survives a reopen of its directory: same list, same bytes,
/// same resolution.
#[tokio::test]
async fn the_store_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open(dir.path()).unwrap();
    let a = store
        .push("a.wasm".into(), tagged(7), None, 5)
        .await
        .unwrap();
    let b = store
        .push("b.wasm".into(), EMPTY.to_vec(), None, 6)
        .await
        .unwrap();
    drop(store);
    assert!(
        dir.path()
            .join("modules")
            .join(format!("{}.wasm", a.hash))
            .exists()
    );
    let store = ModuleStore::open(dir.path()).unwrap();
    assert_eq!(store.list(), vec![a.clone(), b.clone()]);
    assert_eq!(store.fetch(a.hash).await.unwrap(), tagged(7));
    assert_eq!(store.resolve("b.wasm:f").unwrap(), format!("{}:f", b.hash));
}

/// A corrupt index entry, an entry whose file is missing and one whose
/// file was damaged are skipped; the good entries load. A whole index that
/// does not parse starts the store empty. Nothing panics.
#[tokio::test]
async fn corrupt_entries_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open(dir.path()).unwrap();
    let good = store
        .push("good.wasm".into(), tagged(1), None, 1)
        .await
        .unwrap();
    let damaged = store
        .push("bad.wasm".into(), tagged(2), None, 2)
        .await
        .unwrap();
    drop(store);
    let mods = dir.path().join("modules");
    fs::write(
        mods.join(format!("{}.wasm", damaged.hash)),
        b"\0asm\x01\0\0\0junk",
    )
    .unwrap();
    let missing = ModuleHash::of(b"gone");
    let index = serde_json::json!({
        "version": 1,
        "modules": [
            good,
            damaged,
            {"hash": "zz", "file": "x.wasm"},
            {"hash": missing, "file": "gone.wasm", "size": 4, "pushed_at": 3},
            17,
        ]
    });
    fs::write(mods.join(INDEX_FILE), serde_json::to_vec(&index).unwrap()).unwrap();
    let store = ModuleStore::open(dir.path()).unwrap();
    assert_eq!(store.list(), vec![good]);
    drop(store);
    fs::write(mods.join(INDEX_FILE), b"{ not json").unwrap();
    let store = ModuleStore::open(dir.path()).unwrap();
    assert!(store.list().is_empty());
}

/// A module whose file was damaged on disk is written afresh when it is
/// pushed again, and then served intact.
#[tokio::test]
async fn a_push_again_repairs_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open(dir.path()).unwrap();
    let info = store
        .push("m.wasm".into(), tagged(9), None, 1)
        .await
        .unwrap();
    let file = dir
        .path()
        .join("modules")
        .join(format!("{}.wasm", info.hash));
    fs::write(&file, b"\0asm\x01\0\0\0damaged").unwrap();
    assert!(
        store.fetch(info.hash).await.is_err(),
        "damaged bytes are not served"
    );
    store
        .push("m.wasm".into(), tagged(9), None, 2)
        .await
        .unwrap();
    assert_eq!(store.fetch(info.hash).await.unwrap(), tagged(9));
}
