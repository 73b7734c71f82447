//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the stable
//! corpus test (`tests/fuzz_corpus.rs`): each must never panic, whatever the bytes.

use crate::framing::{next_message_len, MAX_EXTENDED_MESSAGE_LEN};
use crate::header::MessageType;
use crate::message::{decode, Message};
use crate::types::{Context, Family, FamilySet};

/// Contexts worth trying every input under: 2- and 4-octet AS, ADD-PATH on and off.
fn contexts() -> [Context; 3] {
    let add_path: FamilySet = [Family::IPV4_UNICAST, Family::IPV6_UNICAST].into_iter().collect();
    [
        Context::default(),
        Context::legacy(),
        Context {
            four_octet_as: true,
            max_message_len: MAX_EXTENDED_MESSAGE_LEN,
            add_path,
            external: true,
        },
    ]
}

/// Splits `data` into messages until it runs out or hits an error.
pub fn framing(mut data: &[u8]) {
    while let Ok(Some(n)) = next_message_len(data, MAX_EXTENDED_MESSAGE_LEN) {
        assert!(n >= 19 && n <= data.len());
        data = &data[n..];
    }
}

/// A whole message of type `ty` around `body`, header length fixed up.
fn wrap(ty: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(u16::MAX as usize - 19)];
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    msg.push(ty);
    msg.extend_from_slice(body);
    msg
}

/// Decodes `body` as the body of a message of type `ty` under every context.
pub fn body(ty: MessageType, body: &[u8]) {
    let msg = wrap(ty as u8, body);
    for ctx in contexts() {
        let _ = decode(&msg, &ctx);
    }
}

/// Like [`body`], with the type taken from the first byte (0 and 6+ included,
/// to reach the bad-type path).
pub fn message_of_type(data: &[u8]) {
    let Some((&ty, rest)) = data.split_first() else {
        return;
    };
    let msg = wrap(ty % 7, rest);
    for ctx in contexts() {
        let _ = decode(&msg, &ctx);
    }
}

/// decode → encode → decode: whatever decodes must encode, and decode again
/// to the same message.
pub fn round_trip(data: &[u8]) {
    let Some((&ty, rest)) = data.split_first() else {
        return;
    };
    let msg = wrap(ty % 6, rest);
    for ctx in contexts() {
        let Ok(first) = decode(&msg, &ctx) else {
            continue;
        };
        let bytes = match first.message.to_bytes(&ctx) {
            Ok(b) => b,
            Err(e) => panic!("decoded message does not encode: {e}"),
        };
        let second = match decode(&bytes, &ctx) {
            Ok(d) => d,
            Err(e) => panic!("re-encoded message does not decode: {e}"),
        };
        assert_eq!(first.message, second.message);
        if let Message::Update(_) = first.message {
            // Malformed attributes were dropped by the first pass: the second
            // finds nothing worse than the first did.
            assert!(
                second.treatment <= first.treatment,
                "{:?} then {:?}",
                first.treatment,
                second.treatment
            );
        }
    }
}
