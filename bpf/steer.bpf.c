// SPDX-License-Identifier: MIT OR Apache-2.0
//
// steer: the XDP program of xdptcp. It decides, per frame, whether a TCP segment belongs to the user-space stack
// and redirects it to the AF_XDP socket of the receive queue it arrived on; everything else goes to the kernel.
//
// It never rewrites a frame and never drops one unless told to (`no_xsk_action`). Anything it cannot parse safely
// is passed to the kernel, which knows how to refuse it.
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
//
// Byte order of every map key: network byte order, exactly as the bytes appear on the wire. Ports are the two
// bytes of the TCP header (the index into `ports` is those two bytes read as a native u16, zero-extended);
// addresses are 16 bytes, IPv4 written as an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
// Nothing is converted on the hot path; user space does the conversion once when it writes a key. A VLAN ID is the
// two bytes of the tag control information with the priority and DEI bits cleared.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Counter slots. Every frame ends in exactly one outcome (REDIRECTED, PASSED or DROPPED); every frame that is not
// redirected also counts exactly one reason. Keep in sync with src/io/counters.rs.
enum steer_counter {
	C_REDIRECTED = 0,
	C_PASSED = 1,
	C_DROPPED = 2,
	C_TRUNCATED = 3,  // the frame ends inside a header it announces
	C_FRAGMENT = 4,   // IPv4 fragment or IPv6 fragment header
	C_BAD_HEADER = 5, // wrong IP version, IHL < 5, TCP data offset < 5, lengths that contradict each other
	C_NOT_IP = 6,     // ARP, LLDP, stacked VLAN tags, 802.1ad tags, anything that is neither IPv4 nor IPv6
	C_NOT_TCP = 7,    // UDP, ICMP, IPv6 extension headers other than fragment
	C_NOT_OURS = 8,   // TCP, but neither a listened port nor from a target
	C_NOT_LOCAL = 9,  // ours by port, but to an address outside local_addrs (restrict_local only)
	C_NO_XSK = 10,    // ours, but no AF_XDP socket is bound to this queue
	C_VLAN_NOT_ALLOWED = 11, // one tag with a VID not in `vlans`: the kernel drops it unless it has that VLAN
	C_MAX = 12,
};

#define IPPROTO_FRAGMENT_HDR 44
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

static __always_inline void ipv4_mapped(struct addr_key *k, const __be32 *a)
{
	k->addr[10] = 0xff;
	k->addr[11] = 0xff;
	__builtin_memcpy(&k->addr[12], a, 4);
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
	if (!listening || !*listening) {
		struct target_key tk = {};
		__builtin_memcpy(tk.addr, src.addr, 16);
		tk.port = tcp->source;
		if (!bpf_map_lookup_elem(&targets, &tk))
			return pass(C_NOT_OURS);
	}
	if (restrict_local && !bpf_map_lookup_elem(&local_addrs, &dst))
		return pass(C_NOT_LOCAL);

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
