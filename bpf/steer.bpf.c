// SPDX-License-Identifier: MIT OR Apache-2.0
//
// steer: the XDP program of xdptcp. It decides, per frame, whether a TCP segment belongs to the user-space stack
// and redirects it to the AF_XDP socket of the receive queue it arrived on; everything else goes to the kernel.
//
// It rewrites only one kind of frame: a SYN to a listened port that it answers itself (see "SYN answering"
// below). It never drops a frame unless told to (`no_xsk_action`), or unless a SYN it had resized could not be
// written (a helper failure never seen; counted dropped/truncated). Anything it cannot parse safely is passed to
// the kernel, which knows how to refuse it.
//
// Settings:
//   load time (read-only data, fixed once the program is loaded, so the verifier prunes what is switched off):
//     no_xsk_action   what to do with our segment when no socket sits in xsks[queue]: XDP_PASS (default) or XDP_DROP
//     restrict_local  1: our segments must also be addressed to an address in `local_addrs`
//   run time (maps, written by user space while the program runs):
//     ports        local TCP ports we listen on (server role): an array with one byte per port (nonzero: ours),
//                  so the check is an index test and a load the JIT inlines, not a hash and a call per frame
//     targets      remote address:port pairs we connect to (client role): a segment FROM one of them is ours
//     local_addrs  local addresses that may receive our segments (only read when restrict_local is 1)
//     vlans        802.1Q VLAN IDs whose tagged frames we may take (802.1ad-tagged frames never are); empty (the default): none. VID 0 (a priority
//                  tag, no VLAN) needs no entry: it is read as untagged, as Linux reads it
//     xsks         the AF_XDP socket of each receive queue
//     counters     per-CPU packet counters, one slot per `enum steer_counter`
//     syn_answers  per receive queue: whether and how SYNs are answered here (`struct syn_answer`)
//     cookie_keys  the worker's SYN-cookie keys (`struct cookie_key`), at index slot % 4
//     presence     byte cells the workers keep nonzero for the tuples they hold (mmapped by user space)
//
// Byte order of every map key: network byte order, exactly as the bytes appear on the wire. Ports are the two
// bytes of the TCP header (the index into `ports` is those two bytes read as a native u16, zero-extended);
// addresses are 16 bytes, IPv4 written as an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
// Nothing is converted on the hot path; user space does the conversion once when it writes a key. A VLAN ID is the
// two bytes of the tag control information with the priority and DEI bits cleared.
//
// SYN answering. The worker answers every SYN to a listened port with a SYN-cookie SYN-ACK and keeps no state
// (src/tcp/listen.rs `answer_syn`). When `syn_answers[queue].enabled`, this program sends that very SYN-ACK
// itself with XDP_TX, bit for bit what the worker would have sent at the same instant: the same cookie
// (SipHash-2-4 under the worker's key, src/tcp/cookie.rs), options, window, IP header fields and checksums.
// It answers only when it is certain: the frame must pass every check the worker's parser and `handle_frame`
// make (checksums, addresses, lengths, flags, options walked by the same rules), carry no VLAN tag, IPv4
// options or payload, find a valid key for the current cookie slot, and its tuple's presence cell must be zero
// (a SYN to a connection or a TIME-WAIT entry the worker holds is the worker's business). Anything else takes
// the ordinary path, unchanged: the worker answers it as before. tests/bpf_syn_answer.rs holds the two
// answers to each other byte for byte.
//
// Torn reads: user space updates `syn_answers` and `cookie_keys` entries in three steps (the old entry with its
// flag cleared, the new entry still cleared, then the flag set), so an entry whose flag reads set was not half
// written when the flag was read. Flags are read first. A key is read again after use and the answer dropped if
// its flag changed meanwhile; a `syn_answers` entry is not, because user space writes those only while they are
// disabled (serve sets each once, before its flag), so none can change under a run that found it enabled.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Counter slots. Every frame ends in exactly one outcome (REDIRECTED, PASSED, DROPPED or ANSWERED); every frame
// that is passed or dropped also counts exactly one reason. SYN_HELD is informational only. Keep in sync with
// src/io/counters.rs.
enum steer_counter {
	C_REDIRECTED = 0,
	C_PASSED = 1,
	C_DROPPED = 2,
	C_TRUNCATED = 3,  // the frame ends inside a header it announces
	C_FRAGMENT = 4,   // IPv4 fragment or IPv6 fragment header
	C_BAD_HEADER = 5, // wrong IP version, IHL < 5, TCP data offset < 5, lengths that contradict each other
	C_NOT_IP = 6,     // ARP, LLDP, stacked VLAN tags, 802.1ad tags, anything that is neither IPv4 nor IPv6
	C_NOT_TCP = 7,    // UDP, ICMP (but "too big" about our segments), IPv6 extension headers other than fragment
	C_NOT_OURS = 8,   // TCP, but neither a listened port nor from a target
	C_NOT_LOCAL = 9,  // ours by port, but to an address outside local_addrs (restrict_local only)
	C_NO_XSK = 10,    // ours, but no AF_XDP socket is bound to this queue
	C_VLAN_NOT_ALLOWED = 11, // one tag with a VID not in `vlans`: the kernel drops it unless it has that VLAN
	C_ANSWERED = 12,  // outcome: a SYN answered here with a cookie SYN-ACK (XDP_TX)
	C_SYN_HELD = 13,  // a SYN left to the worker because its presence cell is nonzero (then counted as usual)
	C_ICMP_TOO_BIG = 14, // an ICMP "too big" message quoting a segment of ours (then counted as usual)
	C_MAX = 15,
};

#define IPPROTO_FRAGMENT_HDR 44
#define PROTO_ICMP 1
#define PROTO_ICMPV6 58
#define IP_FRAG_MASK 0x3fff // MF flag and fragment offset
#define VLAN_VID_MASK 0x0fff

struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

struct addr_key {
	__u8 addr[16];
};

struct target_key {
	__u8 addr[16];
	__be16 port;
	__u16 pad; // always zero: hash keys compare every byte
};

// One entry per receive queue. All zero (the default): SYNs take the ordinary path. Multi-byte fields in host
// order. Written by src/io/loader.rs (`SynAnswer`); the layout is checked there against the generated type.
struct syn_answer {
	__u8 enabled;
	__u8 timestamps;    // cfg.timestamps
	__u8 sack;          // cfg.sack
	__u8 window_scale;  // cfg.window_scale
	__u16 mss_v4;       // our_mss::<V4Flow>(cfg.mss)
	__u16 mss_v6;       // our_mss::<V6Flow>(cfg.mss)
	__u16 syn_window;   // cfg.syn_window()
	__u8 local_mac[6];  // cfg.local_mac
	__u32 ts_offset;    // cfg.ts_offset
	__u8 presence_log2; // cells per queue = 1 << presence_log2
	__u8 pad[3];
	__u64 instant_minus_ktime; // the worker's Instant in ns = bpf_ktime_get_ns() + this (wrapping)
	__u64 wall_clock_offset;   // cfg.wall_clock_offset
	__u64 presence_seed;
};

// The key of cookie slot `slot`, at index slot % 4 (an entry in use is then never rewritten).
struct cookie_key {
	__u64 slot;
	__u8 secret[16];
	__u8 valid;
	__u8 pad[7];
};

const volatile __u32 no_xsk_action = XDP_PASS;
const volatile __u8 restrict_local = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct target_key);
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct addr_key);
	__type(value, __u8);
} local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4094); // VIDs 1..=4094
	__type(key, __be16);
	__type(value, __u8);
} vlans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct syn_answer);
} syn_answers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct cookie_key);
} cookie_keys SEC(".maps");

// Queue q's cells are bytes [q << log2, (q + 1) << log2) of the array seen as bytes. max_entries is set by user
// space before the load.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} presence SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += 1; // per-CPU slot: no other CPU writes it
}

static __always_inline int pass(__u32 reason)
{
	count(reason);
	count(C_PASSED);
	return XDP_PASS;
}

static __always_inline int drop(__u32 reason)
{
	count(reason);
	count(C_DROPPED);
	return XDP_DROP;
}

static __always_inline void ipv4_mapped(struct addr_key *k, const __be32 *a)
{
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], a, 4);
}

// ---- SYN answering -------------------------------------------------------------------------------------------

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the map layouts shared with user space assume a little-endian host"
#endif

// Orders our reads of a map entry as written (x86 keeps loads in order; the compiler must too). BPF has no
// fence instruction.
#define barrier() asm volatile("" ::: "memory")

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define MIN_MSS 48          // src/wire/tcp.rs MIN_MSS: a smaller MSS option is read as this
#define MAX_WINDOW_SCALE 14 // RFC 7323 §2.3, as the parser clamps it
#define COOKIE_PERIOD_NS 64000000000ULL
#define MAC_MASK 0x1fffffff
#define TS_WSCALE_ABSENT 0x0f
#define TS_SACK 0x10
#define OUR_TTL 64

// What `syn_answer` tells the caller.
enum answer_verdict {
	ANSWER_NO = 0,     // not answered; the frame is untouched
	ANSWER_SENT = 1,   // the frame is now our SYN-ACK: return XDP_TX
	ANSWER_BROKEN = 2, // the frame was resized but could not be written (never seen): drop it
};

// The larger of the two families' SipHash inputs: 36 bytes of IPv6 flow + two u64 words = 52, zero-padded to a
// whole number of words.
#define SIP_MSG_MAX 56

static __always_inline __u32 le32(const __u8 *p)
{
	return (__u32)p[0] | (__u32)p[1] << 8 | (__u32)p[2] << 16 | (__u32)p[3] << 24;
}

static __always_inline void put_le64(__u8 *p, __u64 v)
{
#pragma unroll
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static __always_inline void put_be16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static __always_inline void put_be32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                   \
	do {                                                                                                       \
		v0 += v1;                                                                                          \
		v1 = ROTL(v1, 13);                                                                                 \
		v1 ^= v0;                                                                                          \
		v0 = ROTL(v0, 32);                                                                                 \
		v2 += v3;                                                                                          \
		v3 = ROTL(v3, 16);                                                                                 \
		v3 ^= v2;                                                                                          \
		v0 += v3;                                                                                          \
		v3 = ROTL(v3, 21);                                                                                 \
		v3 ^= v0;                                                                                          \
		v2 += v1;                                                                                          \
		v1 = ROTL(v1, 17);                                                                                 \
		v1 ^= v2;                                                                                          \
		v2 = ROTL(v2, 32);                                                                                 \
	} while (0)

// SipHash-2-4 of msg[0..len) keyed as siphasher's `new_with_key` is (k0, k1 = the two little-endian halves).
// msg holds SIP_MSG_MAX bytes, zero from `len` on; len < SIP_MSG_MAX.
static __noinline __u64 siphash24(__u64 k0, __u64 k1, const __u64 *msg, __u32 len)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k1 ^ 0x7465646279746573ULL;
	__u32 full = len / 8;
	__u64 last = 0;
#pragma unroll
	for (__u32 i = 0; i < SIP_MSG_MAX / 8; i++) {
		__u64 m = msg[i]; // little-endian host: the word as SipHash reads it
		if (i < full) {
			v3 ^= m;
			SIPROUND;
			SIPROUND;
			v0 ^= m;
		} else if (i == full) {
			last = m; // the tail bytes, zero-padded
		}
	}
	__u64 b = ((__u64)(len & 0xff) << 56) | last;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

// src/tcp/presence.rs `presence_hash`, word for word: each 4 bytes read as a little-endian u32.
static __always_inline __u64 presence_mix(__u64 h, __u32 w)
{
	h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
	return h ^ (h >> 29);
}

// Sum of big-endian 16-bit words, not folded. n even, at most 64.
static __noinline __u32 sum16(const __u8 *p, __u32 n)
{
	__u32 s = 0;
	for (__u32 i = 0; i < 64; i += 2) {
		if (i >= n)
			break;
		s += (__u32)p[i] << 8 | p[i + 1];
	}
	return s;
}

// Ones' complement fold with end-around carry: nonzero input stays nonzero, as in src/wire/checksum.rs, so a
// verified sum is exactly 0xffff and an emitted field is exactly the core's.
static __always_inline __u16 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

static __always_inline int ipv4_not_unicast(const __u8 *a)
{
	// 0/8, 127/8, 224/4 and 240/4 (src/wire/ipv4.rs is_not_unicast).
	return a[0] == 0 || a[0] == 127 || a[0] >= 224;
}

static __always_inline int ipv6_not_unicast(const __u8 *a)
{
	// ::, ::1, ff00::/8 and ::ffff:0:0/96 (src/wire/ipv6.rs is_not_unicast).
	if (a[0] == 0xff)
		return 1;
	__u8 head = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		head |= a[i];
	if (head)
		return 0;
	if (a[10] == 0xff && a[11] == 0xff)
		return 1;
	if (a[10] | a[11] | a[12] | a[13] | a[14])
		return 0;
	return a[15] <= 1;
}


// What a SYN asked for, read by src/wire/tcp/options.rs's rules.
struct syn_opts {
	__u32 tsval;
	__u16 mss;
	__u8 has_mss;
	__u8 ws;
	__u8 has_ws;
	__u8 sack_permitted;
	__u8 has_ts;
};

// Ethernet 14 + IPv6 40 + TCP 40: the longest SYN-ACK we build.
#define OUT_MAX 96

// Buffers too large for the 512-byte BPF stack, one set per CPU (XDP runs one frame at a time per CPU).
// The walk over a SYN's options, one option (or NOP) per bpf_loop step. Kept in map memory, whose values the
// verifier does not track, so it checks the step once rather than once per offset.
struct opt_walk {
	__u32 pos;  // offset in the TCP header of the next option
	__u32 doff; // end of the options
	struct syn_opts o;
};

struct answer_scratch {
	struct opt_walk walk;
	__u8 hdr[64];              // the SYN's TCP header, zero after it
	__u64 msg[SIP_MSG_MAX / 8]; // the MAC's input, zero after it
	__u8 out[OUT_MAX];         // the SYN-ACK
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct answer_scratch);
} scratch SEC(".maps");

// TcpOptions::parse for a SYN (src/wire/tcp/options.rs): EOL ends; NOP is one byte; anything else needs a
// length byte in 2..=rest, or the walk ends keeping what it has; a known kind with an impossible length ends it
// too; unknown kinds are skipped; a later option replaces an earlier one. Reads the header from `scratch`.
static long opt_step(__u64 index, void *arg)
{
	__u32 zero = 0;
	struct answer_scratch *sc = bpf_map_lookup_elem(&scratch, &zero);
	if (!sc)
		return 1;
	struct opt_walk *w = &sc->walk;
	const __u8 *hdr = sc->hdr;
	__u32 i = w->pos;
	__u32 doff = w->doff;
	if (i >= doff || doff > 60)
		return 1;
	__u8 kind = hdr[i & 63];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->pos = i + 1;
		return 0;
	}
	if (i + 1 >= doff)
		return 1;
	__u32 len = hdr[(i + 1) & 63];
	if (len < 2 || len > doff - i)
		return 1;
	if (kind == 2) {
		if (len != 4)
			return 1;
		__u16 mss = (__u16)hdr[(i + 2) & 63] << 8 | hdr[(i + 3) & 63];
		w->o.mss = mss < MIN_MSS ? MIN_MSS : mss;
		w->o.has_mss = 1;
	} else if (kind == 3) {
		if (len != 3)
			return 1;
		__u8 ws = hdr[(i + 2) & 63];
		w->o.ws = ws > MAX_WINDOW_SCALE ? MAX_WINDOW_SCALE : ws;
		w->o.has_ws = 1;
	} else if (kind == 4) {
		if (len != 2)
			return 1;
		w->o.sack_permitted = 1;
	} else if (kind == 5) {
		// SACK blocks: dropped on a SYN, but the length rule still applies.
		if (len != 10 && len != 18 && len != 26 && len != 34)
			return 1;
	} else if (kind == 8) {
		if (len != 10)
			return 1;
		w->o.tsval = (__u32)hdr[(i + 2) & 63] << 24 | (__u32)hdr[(i + 3) & 63] << 16 |
			     (__u32)hdr[(i + 4) & 63] << 8 | hdr[(i + 5) & 63];
		w->o.has_ts = 1;
	}
	w->pos = i + len;
	return 0;
}

// Largest MSS_TABLE entry (536, 1220, 1440, 1460) not above `mss`; 0 when all are above it.
static __always_inline __u32 mss_index(__u16 mss)
{
	if (mss >= 1460)
		return 3;
	if (mss >= 1440)
		return 2;
	if (mss >= 1220)
		return 1;
	return 0;
}

// The MAC's input (src/tcp/cookie.rs mac) into msg: the flow as V4Flow/V6Flow hash it (local address, remote
// address, local port, remote port), the slot and the tail word, little-endian. `alen` is a constant at each
// call (4 or 16), so the copies stay fixed-size. Returns the length.
static __always_inline __u32 mac_input(__u8 *msg, const __u8 *local, const __u8 *remote, __u32 alen,
				       const __u8 *hdr, __u64 slot, __u64 tail)
{
	__builtin_memcpy(msg, local, alen);
	__builtin_memcpy(msg + alen, remote, alen);
	msg[2 * alen] = hdr[2]; // the SYN's destination port: ours
	msg[2 * alen + 1] = hdr[3];
	msg[2 * alen + 2] = hdr[0];
	msg[2 * alen + 3] = hdr[1];
	put_le64(msg + 2 * alen + 4, slot);
	put_le64(msg + 2 * alen + 12, tail);
	return 2 * alen + 20;
}

// src/tcp/cookie.rs tsval_with_bits: the clock with its low 5 bits replaced, never ahead of it.
static __always_inline __u32 tsval_with_bits(__u32 now, __u32 bits)
{
	__u32 low = bits & 31;
	__u32 v = (now & ~31U) | low;
	return low > (now & 31) ? v - 32 : v;
}


// Answers the SYN in `ctx` if, and only if, it is certain to send what the worker would. The caller has
// established that the frame is TCP to a listened port, allowed by restrict_local, with SYN set and ACK, RST
// and FIN clear; this function checks everything again from the raw bytes. A global function: verified once,
// on its own.
__noinline int syn_answer(struct xdp_md *ctx)
{
	if (!ctx)
		return ANSWER_NO;
	__u32 queue = ctx->rx_queue_index;
	struct syn_answer *cfg = bpf_map_lookup_elem(&syn_answers, &queue);
	if (!cfg || !*(volatile __u8 *)&cfg->enabled)
		return ANSWER_NO;
	barrier(); // the flag before the rest (see "Torn reads")

	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return ANSWER_NO;
	// The worker's checks: our MAC (so unicast), a source that is no group address.
	__u8 mac_diff = 0;
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		mac_diff |= eth->h_dest[i] ^ cfg->local_mac[i];
	if (mac_diff || (eth->h_source[0] & 1))
		return ANSWER_NO;

	__u8 src[16] = {};
	__u8 dst[16] = {};
	__u32 l4_off = sizeof(struct ethhdr);
	__u32 frame_len = end - data;
	__u32 doff;
	__u8 v6;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return ANSWER_NO;
		const __u8 *b = (const __u8 *)ip;
		// No options, no fragment, TCP, a correct header checksum.
		if (b[0] != 0x45 || (ip->frag_off & bpf_htons(IP_FRAG_MASK)) || ip->protocol != IPPROTO_TCP)
			return ANSWER_NO;
		__u8 iph[20];
		__builtin_memcpy(iph, b, 20);
		if (fold(sum16(iph, 20)) != 0xffff)
			return ANSWER_NO;
		__builtin_memcpy(src, &ip->saddr, 4);
		__builtin_memcpy(dst, &ip->daddr, 4);
		if (ipv4_not_unicast(src) || ipv4_not_unicast(dst) || ip->saddr == ip->daddr)
			return ANSWER_NO;
		struct tcphdr *tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > end)
			return ANSWER_NO;
		doff = tcp->doff * 4;
		// The whole segment is the header: no data on the SYN. Ethernet padding after it is allowed.
		if (doff < sizeof(struct tcphdr) || bpf_ntohs(ip->tot_len) != 20 + doff)
			return ANSWER_NO;
		l4_off += 20;
		v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return ANSWER_NO;
		if ((*(__u8 *)ip6 >> 4) != 6 || ip6->nexthdr != IPPROTO_TCP)
			return ANSWER_NO;
		__builtin_memcpy(src, &ip6->saddr, 16);
		__builtin_memcpy(dst, &ip6->daddr, 16);
		__u8 same = 0;
#pragma unroll
		for (int i = 0; i < 16; i++)
			same |= src[i] ^ dst[i];
		if (ipv6_not_unicast(src) || ipv6_not_unicast(dst) || !same)
			return ANSWER_NO;
		struct tcphdr *tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return ANSWER_NO;
		doff = tcp->doff * 4;
		if (doff < sizeof(struct tcphdr) || bpf_ntohs(ip6->payload_len) != doff)
			return ANSWER_NO;
		l4_off += 40;
		v6 = 1;
	} else {
		// ARP, VLAN tags (priority tags included: the reply would have to carry one), anything else.
		return ANSWER_NO;
	}
	if (l4_off + doff > frame_len)
		return ANSWER_NO;

	// The TCP header in scratch memory, zero after it: fixed-size sums and masked indices from here on.
	__u32 zero = 0;
	struct answer_scratch *sc = bpf_map_lookup_elem(&scratch, &zero);
	if (!sc || doff > 60)
		return ANSWER_NO;
	__builtin_memset(sc, 0, sizeof(*sc));
	__u8 *hdr = sc->hdr;
	if (bpf_xdp_load_bytes(ctx, l4_off, hdr, doff) != 0)
		return ANSWER_NO;

	__u8 flags = hdr[13];
	if ((flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) != TCP_SYN)
		return ANSWER_NO;
	if ((hdr[0] | hdr[1]) == 0 || (hdr[2] | hdr[3]) == 0) // port 0: the parser refuses it
		return ANSWER_NO;

	// Pseudo-header + segment must sum to all ones (src/wire/checksum.rs verify_with).
	__u32 pseudo = sum16(src, 16) + sum16(dst, 16) + IPPROTO_TCP + doff;
	if (fold(pseudo + sum16(hdr, 60)) != 0xffff)
		return ANSWER_NO;

	// Every step consumes at least one of at most 40 option bytes.
	sc->walk.pos = 20;
	sc->walk.doff = doff;
	bpf_loop(40, opt_step, NULL, 0);
	struct syn_opts opts = sc->walk.o;

	// Presence: a tuple the worker holds is the worker's.
	__u32 log2 = cfg->presence_log2;
	if (log2 > 24)
		return ANSWER_NO;
	__u64 h = cfg->presence_seed;
	h = presence_mix(h, le32(src));
	if (v6) {
		h = presence_mix(h, le32(src + 4));
		h = presence_mix(h, le32(src + 8));
		h = presence_mix(h, le32(src + 12));
	}
	h = presence_mix(h, le32(dst));
	if (v6) {
		h = presence_mix(h, le32(dst + 4));
		h = presence_mix(h, le32(dst + 8));
		h = presence_mix(h, le32(dst + 12));
	}
	h = presence_mix(h, le32(hdr)); // source port, destination port, as on the wire
	h ^= h >> 32;
	__u64 cell = ((__u64)queue << log2) + (h & ((1ULL << log2) - 1));
	__u32 word = cell >> 3;
	if (word != cell >> 3)
		return ANSWER_NO;
	__u64 *cells = bpf_map_lookup_elem(&presence, &word);
	if (!cells)
		return ANSWER_NO; // queue outside the map: not ours to judge
	if ((*(volatile __u64 *)cells >> (8 * (cell & 7))) & 0xff) {
		count(C_SYN_HELD);
		return ANSWER_NO;
	}

	// The worker's clocks (src/tcp/ctx.rs): its Instant, the cookie slot, the timestamp clock.
	__u64 now = bpf_ktime_get_ns() + cfg->instant_minus_ktime;
	__u64 slot = (now + cfg->wall_clock_offset) / COOKIE_PERIOD_NS;
	__u32 ts_clock = (__u32)(now / 1000000) + cfg->ts_offset;

	__u32 ki = slot & 3;
	struct cookie_key *key = bpf_map_lookup_elem(&cookie_keys, &ki);
	if (!key || !*(volatile __u8 *)&key->valid)
		return ANSWER_NO;
	barrier();
	if (key->slot != slot)
		return ANSWER_NO;

	// src/tcp/listen.rs answer_syn.
	__u8 ts = opts.has_ts && cfg->timestamps;
	__u8 wscale = ts && opts.has_ws;
	__u8 sack = opts.sack_permitted && cfg->sack && ts;
	__u32 ts_bits = (wscale ? opts.ws : TS_WSCALE_ABSENT) | (sack ? TS_SACK : 0);
	__u16 client_mss = opts.has_mss ? opts.mss : (v6 ? 1220 : 536);
	__u32 idx = mss_index(client_mss);
	__u32 client_isn = (__u32)hdr[4] << 24 | (__u32)hdr[5] << 16 | (__u32)hdr[6] << 8 | hdr[7];

	// The MAC's input: the SYN's destination is our (local) end.
	__u8 *msg = (__u8 *)sc->msg;
	__u64 tail = (__u64)client_isn | (__u64)idx << 32 | (__u64)(ts ? ts_bits : 0xff) << 40;
	__u32 msg_len = v6 ? mac_input(msg, dst, src, 16, hdr, slot, tail) //
			   : mac_input(msg, dst, src, 4, hdr, slot, tail);
	__u64 k0, k1;
	__builtin_memcpy(&k0, key->secret, 8);
	__builtin_memcpy(&k1, key->secret + 8, 8);
	__u32 mac = siphash24(k0, k1, sc->msg, msg_len) & MAC_MASK;
	// The key may have changed while we read it: only a key still valid for this slot is trusted.
	barrier();
	if (!*(volatile __u8 *)&key->valid || key->slot != slot)
		return ANSWER_NO;
	__u32 isn = (__u32)(slot & 1) << 31 | idx << 29 | mac;

	// The SYN-ACK, built whole on the stack (src/tcp/output.rs reply, src/wire emit layouts).
	__u8 *out = sc->out;
	__builtin_memcpy(out, eth->h_source, ETH_ALEN);
	__builtin_memcpy(out + 6, cfg->local_mac, ETH_ALEN);
	__builtin_memcpy(out + 12, &eth->h_proto, 2);
	__u32 opt_len = 4 + (ts ? 12 : 0) + (wscale ? 4 : 0);
	__u32 tcp_len = 20 + opt_len;
	__u8 *t;
	if (v6) {
		__u8 *ip = out + 14;
		ip[0] = 0x60; // version 6, traffic class 0, flow label 0
		put_be16(ip + 4, tcp_len);
		ip[6] = IPPROTO_TCP;
		ip[7] = OUR_TTL;
		__builtin_memcpy(ip + 8, dst, 16);
		__builtin_memcpy(ip + 24, src, 16);
		t = out + 54;
	} else {
		__u8 *ip = out + 14;
		ip[0] = 0x45;
		put_be16(ip + 2, 20 + tcp_len);
		ip[6] = 0x40; // DF; identification 0 (RFC 6864 §4.1)
		ip[8] = OUR_TTL;
		ip[9] = IPPROTO_TCP;
		__builtin_memcpy(ip + 12, dst, 4);
		__builtin_memcpy(ip + 16, src, 4);
		put_be16(ip + 10, ~fold(sum16(ip, 20)));
		t = out + 34;
	}
	t[0] = hdr[2];
	t[1] = hdr[3];
	t[2] = hdr[0];
	t[3] = hdr[1];
	put_be32(t + 4, isn);
	put_be32(t + 8, client_isn + 1);
	t[12] = (tcp_len / 4) << 4;
	t[13] = TCP_SYN | TCP_ACK;
	put_be16(t + 14, cfg->syn_window);
	// MSS, then SACK-permitted or two NOPs with the timestamps, then NOP + window scale.
	t[20] = 2;
	t[21] = 4;
	put_be16(t + 22, v6 ? cfg->mss_v6 : cfg->mss_v4);
	if (ts) {
		t[24] = sack ? 4 : 1;
		t[25] = sack ? 2 : 1;
		t[26] = 8;
		t[27] = 10;
		put_be32(t + 28, tsval_with_bits(ts_clock, ts_bits));
		put_be32(t + 32, opts.tsval);
		if (wscale) {
			t[36] = 1;
			t[37] = 3;
			t[38] = 3;
			t[39] = cfg->window_scale;
		}
	}
	__u32 tsum = sum16(src, 16) + sum16(dst, 16) + IPPROTO_TCP + tcp_len + sum16(t, 40);
	put_be16(t + 16, ~fold(tsum));

	// Resize, then write: nothing above touched the frame, so a refused resize leaves it as it came.
	__u32 out_len = (v6 ? 54 : 34) + tcp_len;
	int delta = (int)out_len - (int)frame_len;
	if (delta != 0 && bpf_xdp_adjust_tail(ctx, delta) != 0)
		return ANSWER_NO;
	if (out_len > OUT_MAX || bpf_xdp_store_bytes(ctx, 0, out, out_len) != 0)
		return ANSWER_BROKEN;
	return ANSWER_SENT;
}

// ---- ICMP "too big" -----------------------------------------------------------------------------------------

// Whether the ICMP message at `m` (its IP header already checked) is "too big" about a TCP segment of ours: ICMPv4
// destination unreachable / fragmentation needed or ICMPv6 packet too big, quoting a segment whose source port we
// listen on (server role) or whose destination is a target (client role). Those go to the stack, which lowers the
// connection's MSS (src/tcp/path_mtu.rs, after checking the quoted sequence number); every other ICMP message is
// the kernel's. Only the fields needed here are read; the stack checks the rest, checksum included.
static __always_inline int icmp_too_big_for_us(__u8 *m, void *end, int v6)
{
	if ((void *)(m + 8) > end)
		return 0;
	if (v6 ? (m[0] != 2 || m[1] != 0) : (m[0] != 3 || m[1] != 4))
		return 0;
	__u8 *q = m + 8;
	struct target_key tk = {};
	__u8 *t;
	if (v6) {
		if ((void *)(q + 40 + 8) > end)
			return 0;
		if ((q[0] >> 4) != 6 || q[6] != IPPROTO_TCP)
			return 0;
		__builtin_memcpy(tk.addr, q + 24, 16); // the quoted destination: the peer
		t = q + 40;
	} else {
		if ((void *)(q + 20) > end)
			return 0;
		__u32 ihl = (q[0] & 0x0f) * 4;
		if ((q[0] >> 4) != 4 || ihl < 20 || q[9] != IPPROTO_TCP)
			return 0;
		t = q + ihl;
		if ((void *)(t + 8) > end)
			return 0;
		tk.addr[10] = 0xff;
		tk.addr[11] = 0xff;
		__builtin_memcpy(&tk.addr[12], q + 16, 4);
	}
	__u32 sport = *(__u16 *)t; // wire bytes as a native u16, as the `ports` index is written
	__u8 *listening = bpf_map_lookup_elem(&ports, &sport);
	if (listening && *listening)
		return 1;
	tk.port = *(__be16 *)(t + 2);
	return bpf_map_lookup_elem(&targets, &tk) != 0;
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return pass(C_TRUNCATED);

	__be16 proto = eth->h_proto;
	void *l3 = eth + 1;
	// An 802.1ad (service) tag, alone or outside another, is never ours: the stack reads 802.1Q tags only and
	// would answer on the wrong tag protocol, so such frames stay the kernel's, as stacked tags do.
	if (proto == bpf_htons(ETH_P_8021AD))
		return pass(C_NOT_IP);
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_tag *tag = l3;
		if ((void *)(tag + 1) > end)
			return pass(C_TRUNCATED);
		proto = tag->encap_proto;
		l3 = tag + 1;
		// Stacked tags are never ours, whatever the outer VID.
		if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
			return pass(C_NOT_IP);
		// A VLAN is a separate network: answering on one this host does not serve would break its isolation.
		__be16 vid = tag->tci & bpf_htons(VLAN_VID_MASK);
		if (vid && !bpf_map_lookup_elem(&vlans, &vid))
			return pass(C_VLAN_NOT_ALLOWED);
	}

	struct addr_key src = {};
	struct addr_key dst = {};
	struct tcphdr *tcp;
	__u32 l4_len;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end)
			return pass(C_TRUNCATED);
		__u8 ver_ihl = *(__u8 *)ip; // read by hand: bitfield order depends on the compiler's endianness
		if ((ver_ihl >> 4) != 4)
			return pass(C_BAD_HEADER);
		__u32 ihl = (ver_ihl & 0x0f) * 4;
		if (ihl < sizeof(struct iphdr))
			return pass(C_BAD_HEADER);
		if (ip->frag_off & bpf_htons(IP_FRAG_MASK))
			return pass(C_FRAGMENT);
		if (ip->protocol == PROTO_ICMP) {
			if (!icmp_too_big_for_us(l3 + ihl, end, 0))
				return pass(C_NOT_TCP);
			ipv4_mapped(&dst, &ip->daddr);
			goto icmp;
		}
		if (ip->protocol != IPPROTO_TCP)
			return pass(C_NOT_TCP);
		__u32 tot_len = bpf_ntohs(ip->tot_len);
		if (tot_len < ihl)
			return pass(C_BAD_HEADER);
		tcp = l3 + ihl;
		if ((void *)(tcp + 1) > end)
			return pass(C_TRUNCATED);
		l4_len = tot_len - ihl;
		ipv4_mapped(&src, &ip->saddr);
		ipv4_mapped(&dst, &ip->daddr);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return pass(C_TRUNCATED);
		if ((*(__u8 *)ip6 >> 4) != 6)
			return pass(C_BAD_HEADER);
		if (ip6->nexthdr == IPPROTO_FRAGMENT_HDR)
			return pass(C_FRAGMENT);
		if (ip6->nexthdr == PROTO_ICMPV6) {
			if (!icmp_too_big_for_us((void *)(ip6 + 1), end, 1))
				return pass(C_NOT_TCP);
			__builtin_memcpy(dst.addr, &ip6->daddr, 16);
			goto icmp;
		}
		if (ip6->nexthdr != IPPROTO_TCP)
			return pass(C_NOT_TCP);
		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return pass(C_TRUNCATED);
		l4_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(src.addr, &ip6->saddr, 16);
		__builtin_memcpy(dst.addr, &ip6->daddr, 16);
	} else {
		return pass(C_NOT_IP);
	}

	__u32 doff = tcp->doff * 4;
	if (doff < sizeof(struct tcphdr) || l4_len < doff)
		return pass(C_BAD_HEADER);
	if ((void *)tcp + doff > end)
		return pass(C_TRUNCATED);

	// Server role first: one lookup answers most segments of a busy server.
	__u32 dport = tcp->dest; // the wire bytes as a native u16: the index user space wrote
	__u8 *listening = bpf_map_lookup_elem(&ports, &dport);
	int via_port = listening && *listening;
	if (!via_port) {
		struct target_key tk = {};
		__builtin_memcpy(tk.addr, src.addr, 16);
		tk.port = tcp->source;
		if (!bpf_map_lookup_elem(&targets, &tk))
			return pass(C_NOT_OURS);
	}
	if (restrict_local && !bpf_map_lookup_elem(&local_addrs, &dst))
		return pass(C_NOT_LOCAL);

	// A bare SYN to a listened port may be answered here (see "SYN answering").
	if (via_port && (((__u8 *)tcp)[13] & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN) {
		int verdict = syn_answer(ctx);
		if (verdict == ANSWER_SENT) {
			count(C_ANSWERED);
			return XDP_TX;
		}
		if (verdict == ANSWER_BROKEN)
			return drop(C_TRUNCATED);
	}

	goto redirect;

icmp:
	count(C_ICMP_TOO_BIG);
	if (restrict_local && !bpf_map_lookup_elem(&local_addrs, &dst))
		return pass(C_NOT_LOCAL);

redirect:;
	__u32 queue = ctx->rx_queue_index;
	if (bpf_map_lookup_elem(&xsks, &queue)) {
		// The fallback only applies if the socket left between the lookup and the redirect.
		int action = bpf_redirect_map(&xsks, queue, XDP_PASS);
		if (action == XDP_REDIRECT) {
			count(C_REDIRECTED);
			return action;
		}
	}
	count(C_NO_XSK);
	if (no_xsk_action == XDP_DROP) {
		count(C_DROPPED);
		return XDP_DROP;
	}
	count(C_PASSED);
	return XDP_PASS;
}

// The crate's licence. The program calls no GPL-only helper, so the kernel needs no GPL-compatible string.
char LICENSE[] SEC("license") = "MIT OR Apache-2.0";
