//! TCP options: parsing as Linux does (stop at the first malformed option, keep what came before), clamping,
//! normalisation per segment kind, and Linux's emitted layout.

use crate::support::*;
use xdptcp::wire::*;

const MSS_1460: [u8; 4] = [2, 4, 0x05, 0xb4];

fn syn(bytes: &[u8]) -> TcpOptions {
    TcpOptions::parse(bytes, true)
}

fn ack(bytes: &[u8]) -> TcpOptions {
    TcpOptions::parse(bytes, false)
}

fn ts(tsval: u32, tsecr: u32) -> [u8; 10] {
    let mut o = [8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[2..6].copy_from_slice(&tsval.to_be_bytes());
    o[6..10].copy_from_slice(&tsecr.to_be_bytes());
    o
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---- parsing -----------------------------------------------------------------------------------------------

#[test]
fn rfc9293_3_2_each_known_option_is_read() {
    let o = syn(&cat(&[&MSS_1460, &[3, 3, 9], &[4, 2], &ts(5, 6)]));
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(9));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some(Timestamps { tsval: 5, tsecr: 6 }));
}

#[test]
fn rfc9293_3_2_options_need_no_alignment() {
    // Odd offsets everywhere: one NOP in front, options packed back to back.
    let o = syn(&cat(&[&[1], &ts(1, 2), &[3, 3, 2], &MSS_1460, &[4, 2], &[1, 1, 1]]));
    assert_eq!((o.mss, o.window_scale, o.sack_permitted), (Some(1460), Some(2), true));
    assert_eq!(o.timestamps, Some(Timestamps { tsval: 1, tsecr: 2 }));
    let o = ack(&cat(&[&[1, 1, 1], &[5, 10, 0, 0, 0, 1, 0, 0, 0, 2], &ts(3, 4)]));
    assert_eq!(o.sack.as_slice(), &[(1, 2)]);
    assert_eq!(o.timestamps, Some(Timestamps { tsval: 3, tsecr: 4 }));
}

#[test]
fn rfc9293_3_2_end_of_option_list_stops_parsing() {
    let o = syn(&cat(&[&MSS_1460, &[0], &[3, 3, 9]]));
    assert_eq!((o.mss, o.window_scale), (Some(1460), None));
    assert_eq!(syn(&[0, 2, 4, 5, 0xb4]), TcpOptions::default());
}

#[test]
fn rfc9293_3_2_unknown_kinds_with_a_valid_length_are_skipped() {
    // 30 (MPTCP), 34 (TFO cookie), 253 (experimental), 19 (MD5, 18 bytes), and a 2-byte unknown.
    let o = syn(&cat(&[&[30, 4, 0, 0], &[34, 10, 1, 2, 3, 4, 5, 6, 7, 8], &[253, 2], &MSS_1460]));
    assert_eq!(o.mss, Some(1460));
    let mut md5 = vec![19, 18];
    md5.extend_from_slice(&[0xab; 16]);
    let o = ack(&cat(&[&md5, &ts(7, 8)]));
    assert_eq!(o.timestamps, Some(Timestamps { tsval: 7, tsecr: 8 }));
}

#[test]
fn rfc9293_3_2_option_length_zero_stops_parsing_keeping_earlier_options() {
    let o = syn(&cat(&[&MSS_1460, &[99, 0], &[3, 3, 9]]));
    assert_eq!((o.mss, o.window_scale), (Some(1460), None));
    let o = syn(&cat(&[&MSS_1460, &[3, 0, 9]]));
    assert_eq!((o.mss, o.window_scale), (Some(1460), None));
}

#[test]
fn rfc9293_3_2_option_length_one_stops_parsing_keeping_earlier_options() {
    let o = syn(&cat(&[&[4, 2], &[8, 1], &ts(1, 1)]));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, None);
}

#[test]
fn rfc9293_3_2_option_length_255_runs_past_the_option_space() {
    let mut bytes = cat(&[&MSS_1460, &[77, 255]]);
    bytes.resize(40, 1);
    let o = syn(&bytes);
    assert_eq!(o.mss, Some(1460));
    // A length that overshoots by one byte is refused too; one that fits exactly is skipped.
    let o = syn(&cat(&[&[3, 3, 1], &[77, 5, 0, 0]]));
    assert_eq!(o.window_scale, Some(1));
    let o = syn(&cat(&[&[77, 4, 0, 0], &[3, 3, 1]]));
    assert_eq!(o.window_scale, Some(1));
}

#[test]
fn rfc9293_3_2_a_kind_without_its_length_byte_stops_parsing() {
    let o = syn(&cat(&[&MSS_1460, &[3]]));
    assert_eq!((o.mss, o.window_scale), (Some(1460), None));
    assert_eq!(syn(&[2]), TcpOptions::default());
}

#[test]
fn rfc9293_3_2_known_kinds_with_the_wrong_length_stop_parsing() {
    let after = [3, 3, 9];
    for bad in [
        &[2u8, 3, 5][..],
        &[2, 5, 5, 0xb4, 0],
        &[2, 2],
        &[3, 2],
        &[3, 4, 7, 0],
        &[4, 3, 0],
        &[4, 4, 0, 0],
        &[8, 8, 0, 0, 0, 0, 0, 0],
        &[8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[5, 2],
        &[5, 6, 0, 0, 0, 0],
        &[5, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[5, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let o = syn(&cat(&[&[4, 2], bad, &after]));
        assert!(o.sack_permitted, "{bad:?}: options before the bad one are kept");
        assert_eq!(o.window_scale, None, "{bad:?}: options after the bad one are not read");
    }
    // SACK with five blocks (42 bytes) cannot fit, so it runs past the space as well.
    let mut five = vec![5u8, 42];
    five.resize(42, 0);
    assert_eq!(ack(&five), TcpOptions::default());
}

#[test]
fn rfc9293_3_7_1_mss_below_48_is_raised() {
    for (announced, kept) in [(0u16, 48u16), (1, 48), (47, 48), (48, 48), (88, 88), (536, 536), (65535, 65535)] {
        let [hi, lo] = announced.to_be_bytes();
        assert_eq!(syn(&[2, 4, hi, lo]).mss, Some(kept), "{announced}");
    }
}

#[test]
fn rfc7323_2_3_window_scale_above_14_is_clamped() {
    for (announced, kept) in [(0u8, 0u8), (7, 7), (14, 14), (15, 14), (16, 14), (200, 14), (255, 14)] {
        assert_eq!(syn(&[3, 3, announced]).window_scale, Some(kept), "{announced}");
    }
}

#[test]
fn rfc2018_3_sack_carries_one_to_four_blocks() {
    for n in 1..=4u32 {
        let mut bytes = vec![5u8, (2 + 8 * n) as u8];
        for i in 0..n {
            bytes.extend_from_slice(&(i * 100).to_be_bytes());
            bytes.extend_from_slice(&(i * 100 + 50).to_be_bytes());
        }
        let o = ack(&bytes);
        let expected: Vec<(u32, u32)> = (0..n).map(|i| (i * 100, i * 100 + 50)).collect();
        assert_eq!(o.sack.as_slice(), &expected[..]);
        assert_eq!(usize::from(o.sack.len), n as usize);
    }
}

#[test]
fn rfc9293_3_2_a_repeated_option_overrides_the_earlier_one() {
    let o = syn(&cat(&[&MSS_1460, &[2, 4, 0x02, 0x18]]));
    assert_eq!(o.mss, Some(536));
}

#[test]
fn rfc7323_rfc2018_handshake_options_count_only_on_syn() {
    let sack = [5u8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let bytes = cat(&[&MSS_1460, &[3, 3, 7], &[4, 2], &ts(1, 2), &sack]);
    let on_syn = syn(&bytes);
    assert_eq!((on_syn.mss, on_syn.window_scale, on_syn.sack_permitted), (Some(1460), Some(7), true));
    assert_eq!(on_syn.sack, SackBlocks::default(), "a SYN acknowledges no data");
    let on_ack = ack(&bytes);
    assert_eq!((on_ack.mss, on_ack.window_scale, on_ack.sack_permitted), (None, None, false));
    assert_eq!(on_ack.timestamps, Some(Timestamps { tsval: 1, tsecr: 2 }));
    assert_eq!(on_ack.sack.as_slice(), &[(1, 2)]);
}

#[test]
fn rfc9293_3_2_options_inside_a_frame_follow_the_same_rules() {
    let base = syn_v4();
    let frame = with_raw_options(&base, &cat(&[&[1], &[3, 3, 20], &[2, 4, 0, 10], &[4, 2], &[9, 0], &ts(1, 2)]));
    let o = parsed_options(&frame);
    assert_eq!((o.mss, o.window_scale, o.sack_permitted, o.timestamps), (Some(48), Some(14), true, None));
    // 40 bytes of NOPs and a header of 60.
    let frame = with_raw_options(&base, &[1; 40]);
    assert_eq!(parsed_options(&frame), TcpOptions::default());
}

// ---- emission ----------------------------------------------------------------------------------------------

fn emitted(options: TcpOptions, syn: bool) -> Vec<u8> {
    let mut buf = [0xee; 40];
    let n = options.emit(&mut buf, syn);
    assert_eq!(n, options.emitted_len(syn));
    assert_eq!(n % 4, 0, "header length stays a multiple of 4");
    assert!(buf[n..].iter().all(|&b| b == 0xee), "nothing written past the reported length");
    buf[..n].to_vec()
}

const TS: Timestamps = Timestamps { tsval: 0x0a0b_0c0d, tsecr: 0x0102_0304 };
const TS_BYTES: [u8; 8] = [0x0a, 0x0b, 0x0c, 0x0d, 0x01, 0x02, 0x03, 0x04];

fn handshake(mss: bool, sack_permitted: bool, timestamps: bool, ws: bool) -> TcpOptions {
    TcpOptions {
        mss: mss.then_some(1460),
        window_scale: ws.then_some(7),
        sack_permitted,
        timestamps: timestamps.then_some(TS),
        sack: SackBlocks::default(),
    }
}

#[test]
fn linux_syn_layout_mss_sackperm_ts_nop_wscale() {
    let bytes = emitted(handshake(true, true, true, true), true);
    assert_eq!(bytes, cat(&[&MSS_1460, &[4, 2, 8, 10], &TS_BYTES, &[1, 3, 3, 7]]));
}

#[test]
fn linux_syn_layout_timestamps_without_sack_permitted() {
    let bytes = emitted(handshake(true, false, true, true), true);
    assert_eq!(bytes, cat(&[&MSS_1460, &[1, 1, 8, 10], &TS_BYTES, &[1, 3, 3, 7]]));
}

#[test]
fn linux_syn_layout_sack_permitted_without_timestamps() {
    let bytes = emitted(handshake(true, true, false, true), true);
    assert_eq!(bytes, cat(&[&MSS_1460, &[1, 1, 4, 2], &[1, 3, 3, 7]]));
}

#[test]
fn linux_syn_layout_every_combination_parses_back() {
    for bits in 0..16u8 {
        let o = handshake(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
        let bytes = emitted(o, true);
        assert_eq!(syn(&bytes), o, "{bits:04b}");
    }
}

#[test]
fn linux_established_layout_nop_nop_ts_then_sack() {
    let o = TcpOptions { timestamps: Some(TS), sack: SackBlocks::from_slice(&[(1, 2), (3, 4)]), ..Default::default() };
    let bytes = emitted(o, false);
    let blocks = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
    assert_eq!(bytes, cat(&[&[1, 1, 8, 10], &TS_BYTES, &[1, 1, 5, 18], &blocks]));
    assert_eq!(ack(&bytes), o);
}

#[test]
fn rfc2018_3_sack_blocks_beyond_the_option_space_are_dropped_last_first() {
    let four = SackBlocks::from_slice(&[(1, 2), (3, 4), (5, 6), (7, 8)]);
    let with_ts = TcpOptions { timestamps: Some(TS), sack: four, ..Default::default() };
    let bytes = emitted(with_ts, false);
    assert_eq!(bytes.len(), 40);
    assert_eq!(ack(&bytes).sack.as_slice(), &[(1, 2), (3, 4), (5, 6)]);
    assert_eq!(ack(&bytes), with_ts.canonical(false));
    let alone = TcpOptions { sack: four, ..Default::default() };
    let bytes = emitted(alone, false);
    assert_eq!(bytes.len(), 36);
    assert_eq!(ack(&bytes), alone);
}

#[test]
fn handshake_options_are_not_emitted_after_the_syn() {
    let o = handshake(true, true, true, true);
    let bytes = emitted(o, false);
    assert_eq!(bytes, cat(&[&[1, 1, 8, 10], &TS_BYTES]));
    assert_eq!(emitted(TcpOptions { sack: SackBlocks::from_slice(&[(1, 2)]), ..Default::default() }, true), b"");
}

#[test]
fn rfc7323_emitted_out_of_range_values_parse_back_clamped() {
    let o = TcpOptions { mss: Some(10), window_scale: Some(15), ..Default::default() };
    let bytes = emitted(o, true);
    assert_eq!(bytes, [2, 4, 0, 10, 1, 3, 3, 15]);
    let back = syn(&bytes);
    assert_eq!((back.mss, back.window_scale), (Some(48), Some(14)));
    assert_eq!(back, o.canonical(true));
}
