//! Arbitrary bytes decoded as `HandshakeMsg` frames and fed, in order, to a
//! `Responder` and an `Initiator`. The first byte picks the starting state:
//! fresh machines, a responder that already answered an honest hello, or an
//! initiator that already answered an honest challenge, so the fuzzer
//! reaches every state. Nothing may panic, and without the cookie the
//! fuzzer must never get a machine to accept it.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pool_proto::handshake::{Cookie, HandshakeMsg, Identity, Initiator, Responder, Step};
use pool_proto::{Codec, NodeId, NodeKind};
use tokio_util::codec::Decoder;

fn identity(node: u64, name: &str, kind: NodeKind) -> Identity {
    Identity {
        node: NodeId::from_u64(node),
        name: name.to_owned(),
        kind,
    }
}

/// Every handshake frame in `data`, up to the first undecodable one.
fn frames(data: &[u8]) -> Vec<HandshakeMsg> {
    let mut codec = Codec::<HandshakeMsg>::new();
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(msg)) => out.push(msg),
            Ok(None) => break,
            Err(e) => {
                assert!(e.is_bad_input(), "decoder gave a non-input error: {e:?}");
                break;
            }
        }
    }
    out
}

/// Checks one step: a failure sends nothing or a `Refused`, and success is
/// only possible where `may_finish` says the fuzzer could legitimately
/// finish the handshake.
fn check(step: &Step, may_finish: bool, who: &str) -> bool {
    match step {
        Step::Send(HandshakeMsg::Refused(_)) => panic!("{who} sent Refused as a step"),
        Step::Send(_) => false,
        Step::Done { .. } => {
            assert!(
                may_finish,
                "{who} accepted a peer that does not know the cookie"
            );
            true
        }
        Step::Failed { send, .. } => {
            assert!(
                matches!(send, None | Some(HandshakeMsg::Refused(_))),
                "{who} failed but sends {send:?}"
            );
            true
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let cookie = Cookie::new("fuzz cookie", "fuzz").expect("not empty");
    let us = identity(0x1111_2222_3333_4444, "us", NodeKind::Worker);
    let them = identity(0x5555_6666_7777_8888, "them", NodeKind::Master);

    let mut responder = Responder::new(us.clone(), cookie.clone());
    let (mut initiator, hello) = Initiator::new(us.clone(), cookie.clone());
    // Whether the fuzzer can legitimately finish: only the initiator, and
    // only after an honest challenge (then `Accepted` is all it needs).
    let mut initiator_may_finish = false;
    match mode % 3 {
        1 => {
            // The responder has answered an honest hello and waits for a
            // proof, which needs the cookie.
            let honest = Initiator::new(them.clone(), cookie.clone()).1;
            assert!(matches!(responder.on_message(honest), Step::Send(_)));
        }
        2 => {
            // The initiator has proved itself and waits for `Accepted`.
            let mut honest = Responder::new(them.clone(), cookie.clone());
            let Step::Send(challenge) = honest.on_message(hello) else {
                panic!("an honest responder refused our hello")
            };
            assert!(matches!(initiator.on_message(challenge), Step::Send(_)));
            initiator_may_finish = true;
        }
        _ => {}
    }

    let (mut responder_over, mut initiator_over) = (false, false);
    for msg in frames(data) {
        let step = responder.on_message(msg.clone());
        if responder_over {
            assert!(
                matches!(step, Step::Failed { .. }),
                "responder went on after the end"
            );
        }
        responder_over |= check(&step, false, "responder");

        let step = initiator.on_message(msg);
        if initiator_over {
            assert!(
                matches!(step, Step::Failed { .. }),
                "initiator went on after the end"
            );
        }
        initiator_over |= check(&step, initiator_may_finish, "initiator");
    }
});
