use super::*;

/// A hash prints as 64 lowercase hex digits that parse back to it, and
/// it is the sha-256 of the bytes (the empty input's well-known digest).
#[test]
fn hash_text_round_trips_and_is_sha256() {
    let h = ModuleHash::of(b"");
    assert_eq!(
        h.to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(h.to_string().parse::<ModuleHash>().unwrap(), h);
    assert_eq!(h.short(), "e3b0c44298fc");
}

/// Uppercase, short, long or non-hex texts are not hashes, and the error
/// says what a hash looks like.
#[test]
fn bad_hash_texts_are_refused() {
    let good = ModuleHash::of(b"x").to_string();
    for bad in [
        good.to_uppercase(),
        good[..63].to_owned(),
        format!("{good}0"),
        format!("{}g", &good[..63]),
        String::new(),
    ] {
        let e = bad.parse::<ModuleHash>().unwrap_err();
        assert!(e.to_string().contains("64 lowercase hex"), "{e}");
    }
}

/// A hash travels (JSON and MessagePack) as its text.
#[test]
fn hash_serializes_as_its_text() {
    let h = ModuleHash::of(b"abc");
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(json, format!("\"{h}\""));
    assert_eq!(serde_json::from_str::<ModuleHash>(&json).unwrap(), h);
    let mp = rmp_serde::to_vec(&h).unwrap();
    assert_eq!(rmp_serde::from_slice::<ModuleHash>(&mp).unwrap(), h);
    assert!(serde_json::from_str::<ModuleHash>("\"nope\"").is_err());
}

/// The two forms of a wasm name, and the names that are not wasm names.
#[test]
fn wasm_names_parse_as_the_design_says() {
    let h = ModuleHash::of(b"m");
    assert_eq!(
        WasmName::parse(&format!("{h}:run")),
        Some(WasmName::Hash {
            hash: h,
            export: "run".into()
        })
    );
    assert_eq!(
        WasmName::parse("app.wasm:count"),
        Some(WasmName::Named {
            file: "app.wasm".into(),
            export: "count".into()
        })
    );
    for native in [
        "builtin.echo",
        "app.wasm",
        "app.wasm:",
        ":count",
        ".wasm:count",
        "app.bin:count",
        "ABCDEF:count",
    ] {
        assert_eq!(WasmName::parse(native), None, "{native}");
    }
    // An uppercase hash is neither form.
    assert_eq!(
        WasmName::parse(&format!("{}:run", h.to_string().to_uppercase())),
        None
    );
    assert_eq!(
        WasmName::canonical(h, "run"),
        WasmName::parse(&format!("{h}:run")).unwrap().to_string()
    );
}

/// The header check accepts the empty module and refuses other bytes and
/// components, saying which.
#[test]
fn header_check_tells_module_from_other_bytes() {
    assert!(check_header(&WASM_HEADER).is_ok());
    assert!(
        check_header(b"\x7fELF\x02\x01\x01\0")
            .unwrap_err()
            .contains("\\0asm")
    );
    assert!(check_header(b"\0as").is_err());
    let component = b"\0asm\x0d\0\x01\0";
    assert!(check_header(component).unwrap_err().contains("version"));
}

/// File names must end in `.wasm` and hold no separators.
#[test]
fn file_names_are_checked() {
    assert!(check_file_name("count.wasm").is_ok());
    assert!(check_file_name("count").unwrap_err().contains(".wasm"));
    assert!(check_file_name(".wasm").is_err());
    assert!(check_file_name("a:b.wasm").is_err());
    assert!(check_file_name("dir/b.wasm").is_err());
}
