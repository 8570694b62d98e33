use super::*;

/// Builds envelope bytes: kind, pid, ref, body.
fn bytes(kind: u8, pid: Pid, mref: Ref, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&pid.to_bytes());
    out.extend_from_slice(&mref.to_bytes());
    out.extend_from_slice(body);
    out
}

const PID: Pid = Pid::new(0x3f2a9c1e04d1b2aa, 17);
const REF: Ref = Ref::new(0x3f2a9c1e04d1b2aa, 9);
const NO_REF: Ref = Ref::new(0, 0);

/// A message carries its sender, or none when the pid bytes are zero.
#[test]
fn message_with_and_without_sender() {
    let body = crate::encode(&("ping", 7u32)).unwrap();
    let env = Envelope::parse(&bytes(0, PID, NO_REF, &body)).unwrap();
    assert_eq!(
        env,
        Envelope::Message {
            from: Some(PID),
            body: Body(body.clone())
        }
    );
    match Envelope::parse(&bytes(0, Pid::new(0, 0), NO_REF, &body)).unwrap() {
        Envelope::Message { from: None, body } => {
            assert_eq!(body.take::<(String, u32)>().unwrap(), ("ping".into(), 7))
        }
        other => panic!("{other:?}"),
    }
}

/// A call carries its caller and its reference.
#[test]
fn call_carries_caller_and_ref() {
    let body = crate::encode("inc").unwrap();
    let env = Envelope::parse(&bytes(1, PID, REF, &body)).unwrap();
    assert_eq!(
        env,
        Envelope::Call(Call {
            from: PID,
            mref: REF,
            body: Body(body)
        })
    );
}

/// An exit signal's body is the reason text.
#[test]
fn exit_signal_reason_is_text() {
    let env = Envelope::parse(&bytes(2, PID, NO_REF, b"shutdown")).unwrap();
    assert_eq!(
        env,
        Envelope::Exit {
            from: PID,
            reason: ExitReason::Shutdown
        }
    );
    assert!(Envelope::parse(&bytes(2, PID, NO_REF, &[0xff, 0xfe])).is_err());
}

/// A down holds the reason's length, the reason, then the result if any.
#[test]
fn down_with_and_without_result() {
    let reason = b"wasm trap: unreachable";
    let mut body = (reason.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(reason);
    let env = Envelope::parse(&bytes(3, PID, REF, &body)).unwrap();
    assert_eq!(
        env,
        Envelope::Down {
            mref: REF,
            pid: PID,
            reason: ExitReason::Error("wasm trap: unreachable".into()),
            result: None
        }
    );
    let mut body = 6u32.to_le_bytes().to_vec();
    body.extend_from_slice(b"normal");
    body.push(0x2a);
    match Envelope::parse(&bytes(3, PID, REF, &body)).unwrap() {
        Envelope::Down {
            reason: ExitReason::Normal,
            result: Some(result),
            ..
        } => assert_eq!(result.take::<u32>().unwrap(), 42),
        other => panic!("{other:?}"),
    }
}

/// Short, truncated or unknown envelopes are errors, not panics.
#[test]
fn malformed_envelopes_are_errors() {
    assert!(matches!(Envelope::parse(&[]), Err(Error::Malformed(_))));
    assert!(Envelope::parse(&[0; HEADER_LEN - 1]).is_err());
    assert!(Envelope::parse(&bytes(4, PID, REF, &[])).is_err());
    // A down without its length, or with a length past the end.
    assert!(Envelope::parse(&bytes(3, PID, REF, &[1, 0])).is_err());
    assert!(Envelope::parse(&bytes(3, PID, REF, &[9, 0, 0, 0, b'x'])).is_err());
    assert!(Envelope::parse(&bytes(3, PID, REF, &[0xff, 0xff, 0xff, 0xff])).is_err());
}
