//! Codec: round trips, each RFC 5880 §6.8.6 reception check, and no panics
//! on arbitrary or truncated input.

use bfd::{decode, encode, ControlPacket, DecodeError, Diagnostic, State};
use proptest::prelude::*;

fn valid() -> ControlPacket {
    ControlPacket {
        diag: Diagnostic::None,
        state: State::Up,
        poll: false,
        final_: false,
        control_plane_independent: false,
        authentication: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: 7,
        your_discriminator: 9,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
    }
}

#[test]
fn a_valid_packet_decodes() {
    assert_eq!(decode(&encode(&valid())), Ok(valid()));
}

#[test]
fn empty_and_short_buffers_are_truncated() {
    assert_eq!(decode(&[]), Err(DecodeError::Truncated { len: 0 }));
    assert_eq!(decode(&[0x20, 0xc0, 3]), Err(DecodeError::Truncated { len: 3 }));
}

#[test]
fn every_version_but_1_is_rejected() {
    for version in 0..8u8 {
        let mut b = encode(&valid());
        b[0] = (version << 5) | (b[0] & 0x1f);
        let got = decode(&b);
        if version == 1 {
            assert_eq!(got, Ok(valid()));
        } else {
            assert_eq!(got, Err(DecodeError::BadVersion(version)));
        }
    }
}

#[test]
fn length_below_24_is_rejected() {
    for length in 0..24u8 {
        let mut b = encode(&valid());
        b[3] = length;
        assert_eq!(decode(&b), Err(DecodeError::LengthTooSmall { length, min: 24 }));
    }
}

#[test]
fn length_below_26_with_the_a_bit_is_rejected() {
    let mut p = valid();
    p.authentication = true;
    for length in [24u8, 25] {
        let mut b = encode(&p).to_vec();
        b.extend_from_slice(&[0, 0]);
        b[3] = length;
        assert_eq!(decode(&b), Err(DecodeError::LengthTooSmall { length, min: 26 }));
    }
}

#[test]
fn length_beyond_the_payload_is_rejected() {
    let mut b = encode(&valid());
    b[3] = 25;
    assert_eq!(
        decode(&b),
        Err(DecodeError::LengthExceedsPayload {
            length: 25,
            payload: 24
        })
    );
    // A 24-octet packet cut short by the transport.
    let b = encode(&valid());
    for cut in 4..24 {
        assert_eq!(
            decode(&b[..cut]),
            Err(DecodeError::LengthExceedsPayload {
                length: 24,
                payload: cut
            })
        );
    }
}

#[test]
fn zero_detect_mult_is_rejected() {
    let mut p = valid();
    p.detect_mult = 0;
    assert_eq!(decode(&encode(&p)), Err(DecodeError::ZeroDetectMult));
}

#[test]
fn the_multipoint_bit_is_rejected() {
    let mut p = valid();
    p.multipoint = true;
    assert_eq!(decode(&encode(&p)), Err(DecodeError::Multipoint));
}

#[test]
fn zero_my_discriminator_is_rejected() {
    let mut p = valid();
    p.my_discriminator = 0;
    assert_eq!(decode(&encode(&p)), Err(DecodeError::ZeroMyDiscriminator));
}

#[test]
fn zero_your_discriminator_is_only_allowed_in_down_and_admin_down() {
    for state in [State::AdminDown, State::Down, State::Init, State::Up] {
        let mut p = valid();
        p.state = state;
        p.your_discriminator = 0;
        let got = decode(&encode(&p));
        match state {
            State::AdminDown | State::Down => assert_eq!(got, Ok(p)),
            _ => assert_eq!(got, Err(DecodeError::ZeroYourDiscriminator(state))),
        }
    }
}

#[test]
fn the_a_bit_is_rejected_since_no_authentication_is_supported() {
    let mut p = valid();
    p.authentication = true;
    let mut b = encode(&p).to_vec();
    // Auth Type 1 (simple password), Auth Len 5, Key ID, 2 password octets.
    b.extend_from_slice(&[1, 5, 0, b'h', b'i']);
    b[3] = 29;
    assert_eq!(decode(&b), Err(DecodeError::AuthenticationNotSupported));
}

fn arb_packet() -> impl Strategy<Value = ControlPacket> {
    (
        (0u8..32, 0u8..4, any::<[bool; 4]>(), 1u8..=255),
        (1u32.., any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(|((diag, state, flags, mult), (my, your, tx, rx, echo))| {
            let state = State::from_code(state);
            // Your Discriminator 0 is only legal in Down and AdminDown.
            let your = if your == 0 && matches!(state, State::Init | State::Up) {
                1
            } else {
                your
            };
            ControlPacket {
                diag: Diagnostic::from_code(diag),
                state,
                poll: flags[0],
                final_: flags[1],
                control_plane_independent: flags[2],
                authentication: false,
                demand: flags[3],
                multipoint: false,
                detect_mult: mult,
                my_discriminator: my,
                your_discriminator: your,
                desired_min_tx: tx,
                required_min_rx: rx,
                required_min_echo_rx: echo,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_valid_packet_round_trips(p in arb_packet()) {
        prop_assert_eq!(decode(&encode(&p)), Ok(p));
    }

    /// Any 24 octets that pass the checks re-encode to themselves: no field
    /// or bit is lost or invented by the codec.
    #[test]
    fn valid_bytes_re_encode_identically(data in any::<[u8; 24]>()) {
        let mut data = data;
        data[0] = 0x20 | (data[0] & 0x1f); // version 1
        data[1] &= !0x05; // A and M clear
        data[2] = data[2].max(1); // Detect Mult nonzero
        data[3] = 24;
        data[7] |= 1; // My Discriminator nonzero
        data[11] |= 1; // Your Discriminator nonzero
        let p = decode(&data).expect("valid by construction");
        prop_assert_eq!(encode(&p), data);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&data);
    }

    #[test]
    fn truncations_of_a_valid_packet_never_decode(p in arb_packet(), cut in 0usize..24) {
        prop_assert!(decode(&encode(&p)[..cut]).is_err());
    }
}
