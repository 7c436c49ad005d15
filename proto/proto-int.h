/*
 * proto-int.h -- what the files of proto/ share and nobody else needs:
 * the record type registry, the validation state the parser carries from
 * record to record, and the header decoders.  Not installed, not included
 * outside proto/.
 */
#ifndef XMIG_PROTO_INT_H
#define XMIG_PROTO_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Default receiver limits (struct xp_limits fields left at 0). */
#define XP_DEFAULT_MAX_PFN	(1ULL << 52)
#define XP_DEFAULT_MAX_VCPUS	1024u

/* Domain kinds, one bit each, for the registry's "who may carry it". */
#define REC_DOM_PV	0x1u
#define REC_DOM_HVM	0x2u
#define REC_DOM_PVH	0x4u
#define REC_DOM_ARM	0x8u
#define REC_DOM_X86	(REC_DOM_PV | REC_DOM_HVM | REC_DOM_PVH)
#define REC_DOM_ALL	(REC_DOM_X86 | REC_DOM_ARM)

/* Registry flags. */
#define REC_F_PAGE_SIZED	0x01u	/* body is exactly one page */
#define REC_F_STATIC		0x02u	/* static data: only before STATIC_DATA_END */
#define REC_F_NOT_V2		0x04u	/* not allowed in a Xen v2 stream */
#define REC_F_NEEDS_SDE		0x08u	/* only after STATIC_DATA_END (v2: inferred) */
#define REC_F_NEEDS_PV_INFO	0x10u	/* only after X86_PV_INFO */
#define REC_F_ONCE		0x20u	/* at most once per stream */
#define REC_F_BACKCHANNEL	0x40u	/* only on a back-channel */
#define REC_F_NO_WRITE		0x80u	/* read, never written */
#define REC_F_FIRST		0x100u	/* first record only, ihdr option bit 1 */
#define REC_F_BACK		0x200u	/* on the back-channel (XP_CONTROL_BACK) */
#define REC_F_CONTROL		0x400u	/* forward control records, after END */
#define REC_F_EARLY		0x800u	/* first record, or second after XMIG_NEGOTIATE */

#define REC_LEN_ANY		UINT32_MAX

/*
 * Validation state of one stream, carried from record to record.  The
 * limits are resolved (no zeros).  why[] receives the reason of the last
 * rejection, without the "record N (TYPE) at offset X: " prefix.
 */
struct xp_check {
	const struct xp_stream	*st;
	uint32_t		 max_record_len;
	uint64_t		 max_pfn;
	uint32_t		 max_vcpus;
	uint32_t		 page_size;
	unsigned		 dom;		/* REC_DOM_* bit of this stream */

	uint64_t		 seen[(REC_NR_MANDATORY + 63) / 64];
	unsigned		 guest_width;	/* X86_PV_INFO: 4 or 8, 0 unknown */
	int			 p2m;		/* X86_PV_P2M_FRAMES seen */
	uint32_t		 p2m_end_pfn;
	int			 sde;		/* STATIC_DATA_END seen or inferred */
	int			 negotiate;	/* XMIG_NEGOTIATE was record 0 */

	uint64_t		 index;		/* of the record being checked */
	uint16_t		 options;	/* its draft-B record options */

	/* Control channels (control.c); dir 0 in a forward stream. */
	enum xp_control_dir	 dir;
	int			 ctl_reply;	/* 0 none, 1 result 0, 2 refused */
	int			 ctl_running;	/* STATUS RUNNING seen */
	uint32_t		 ctl_last;	/* the record that closed it, or 0 */

	char			 why[256];
};

typedef int (*record_check_fn)(struct xp_check *, const uint8_t *, uint32_t);

/* One entry of the record type registry. */
struct record_type {
	uint32_t	 type;
	const char	*name;
	uint32_t	 min_len;
	uint32_t	 max_len;	/* REC_LEN_ANY: only the record maximum */
	unsigned	 doms;		/* REC_DOM_* that may carry it */
	unsigned	 flags;		/* REC_F_* */
	record_check_fn	 check;		/* body rules; NULL: none beyond length */
};

/* record.c */
const struct record_type *record_type_find(uint32_t);
void	record_check_init(struct xp_check *, const struct xp_stream *,
	    const struct xp_limits *);
int	record_check_hdr(struct xp_check *, uint32_t, uint32_t, uint16_t,
	    int *);
int	record_check_body(struct xp_check *, uint32_t, uint16_t,
	    const uint8_t *, uint32_t);
uint32_t record_commit(struct xp_check *, uint32_t, const uint8_t *,
	    uint32_t);
int	record_why(struct xp_check *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

/* body.c */
int	body_check_page_data(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_pv_info(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_p2m_frames(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_vcpu_basic(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_vcpu_extended(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_vcpu_xsave(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_vcpu_msrs(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_tsc_info(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_hvm_params(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_early_params(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_cpuid_policy(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_msr_policy(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_dirty_pfns(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_negotiate(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_config(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_zero_pages(struct xp_check *, const uint8_t *, uint32_t);
int	body_check_pfn(struct xp_check *, uint32_t, uint64_t);
int	body_check_bare_pfns(struct xp_check *, const uint8_t *, uint32_t);

/* delta.c */
int	delta_check_pages(struct xp_check *, const uint8_t *, uint32_t);

/* control.c */
int	control_header_check(enum xp_control_dir, const uint8_t *, size_t,
	    int, char *, size_t);
int	control_check_hdr(struct xp_check *, uint32_t, uint32_t, uint16_t);
int	control_check_body(struct xp_check *, uint32_t, const uint8_t *,
	    uint32_t);
void	control_commit(struct xp_check *, uint32_t, const uint8_t *,
	    uint32_t);
int	control_check_reply(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_ack(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_error(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_status(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_handover(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_digests(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_streams(struct xp_check *, const uint8_t *, uint32_t);
int	control_check_checkpoint_ack(struct xp_check *, const uint8_t *,
	    uint32_t);

/* header.c */
int	header_image_get(struct xp_stream *, const uint8_t *, char *, size_t);
int	header_image_partial(const uint8_t *, size_t, char *, size_t);
int	header_domain_get(struct xp_stream *, const uint8_t *, char *, size_t);

/* stream.c */
int	stream_why(const struct xp_stream *, char *, size_t);

/* crc.c: for tests and benchmarks */
/*
 * Use the named implementation (NULL: the best again) from now on; 0, or
 * -XP_EINVAL if the name is unknown or the CPU cannot run it.  Not while
 * other threads call xp_crc32().
 */
int	 xp_crc32_force(const char *);
uint32_t xp_crc32_xpow(unsigned);	/* x^k mod P, bit-reflected */
uint64_t xp_crc32_mu(void);		/* floor(x^64 / P), 33 bits, reflected */

#endif
