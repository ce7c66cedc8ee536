// SPDX-License-Identifier: MIT OR Apache-2.0
//
// random_loss: a tc egress program for the loss tests, the stand-in for `netem loss P%` on kernels built
// without sch_netem. It drops each frame with probability LOSS_PPM / 10^6 and reports it as sent
// (TC_ACT_STOLEN), so the sending kernel sees a frame lost on the wire, not a local drop it could retry at once.
// Test-only: built by tests/harden_support/loss.rs and attached inside a test's own namespace.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

static __u32 (*bpf_get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;

#ifndef LOSS_PPM
#define LOSS_PPM 50000
#endif

__attribute__((section("tc"), used)) int random_loss(struct __sk_buff *skb)
{
	return bpf_get_prandom_u32() % 1000000 < LOSS_PPM ? TC_ACT_STOLEN : TC_ACT_OK;
}

__attribute__((section("license"), used)) char LICENSE[] = "MIT OR Apache-2.0";
