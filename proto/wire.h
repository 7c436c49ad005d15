/*
 * wire.h -- constants of the xmig stream, both dialects.
 *
 * Every number here is on the wire and described in proto/SPEC.md.
 * Changing any of them changes the format: bump WIRE_VERSION_DRAFTB (the
 * native dialect) and the spec revision in SPEC.md in the same commit.
 */
#ifndef XMIG_WIRE_H
#define XMIG_WIRE_H

#include <stdint.h>

/* Image header (24 octets, big-endian, both dialects). */
#define WIRE_MARKER		0xFFFFFFFFFFFFFFFFULL
#define WIRE_ID			0x58454E46u	/* "XENF" */
#define WIRE_VERSION_DRAFTB	1u	/* native dialect: write 1, read 1 */
#define WIRE_VERSION_XEN	3u	/* Xen dialect: write 3 ... */
#define WIRE_VERSION_XEN_MIN	2u	/* ... read 2 and 3 */

#define WIRE_IHDR_SIZE		24u
#define WIRE_IHDR_OPT_BIG_ENDIAN	0x0001u	/* stream byte order after the ihdr */
#define WIRE_IHDR_OPT_BACKCHANNEL	0x0002u	/* sender offers a back-channel */

/* Domain header. */
#define WIRE_DHDR_SIZE_DRAFTB	8u	/* u16 arch, u16 type, u16 page_shift, u16 res */
#define WIRE_DHDR_SIZE_XEN	16u	/* u32 type, u16 page_shift, u16 res, u32 major, u32 minor */

#define WIRE_ARCH_X86		1u
#define WIRE_ARCH_ARM		2u

#define WIRE_DOM_X86_PV		1u
#define WIRE_DOM_X86_HVM	2u
#define WIRE_DOM_X86_PVH	3u	/* draft-B only; Xen streams carry it as HVM */

/* Record framing. */
#define WIRE_RHDR_SIZE_DRAFTB	16u	/* u32 type, u32 len, u16 options, 6 res */
#define WIRE_RHDR_SIZE_XEN	8u	/* u32 type, u32 len */
#define WIRE_FOOTER_SIZE	8u	/* draft-B only: u32 checksum, u32 res */
#define WIRE_REC_ALIGN		8u

#define WIRE_REC_OPT_CHECKSUM	0x0001u	/* draft-B record option bit 0 */
#define WIRE_REC_OPT_DEFLATE	0x0002u	/* bit 1: PAGE_DATA data deflated (SPEC 12.2) */
#define WIRE_REC_OPT_ZSTD	0x0004u	/* bit 2: PAGE_DATA data in a zstd frame (SPEC 12.6) */
#define WIRE_REC_OPT_COMPRESSED	(WIRE_REC_OPT_DEFLATE | WIRE_REC_OPT_ZSTD)
#define WIRE_REC_OPT_KNOWN	(WIRE_REC_OPT_CHECKSUM | WIRE_REC_OPT_COMPRESSED)

#define WIRE_REC_OPTIONAL	0x80000000u	/* type bit 31 */
#define WIRE_REC_LENGTH_MAX	(128u << 20)	/* as libxc's REC_LENGTH_MAX */

/* Record types (Xen's numbering, both dialects). */
enum wire_rec_type {
	REC_END				= 0x00,
	REC_PAGE_DATA			= 0x01,
	REC_X86_PV_INFO			= 0x02,
	REC_X86_PV_P2M_FRAMES		= 0x03,
	REC_X86_PV_VCPU_BASIC		= 0x04,
	REC_X86_PV_VCPU_EXTENDED	= 0x05,
	REC_X86_PV_VCPU_XSAVE		= 0x06,
	REC_SHARED_INFO			= 0x07,
	REC_X86_TSC_INFO		= 0x08,
	REC_HVM_CONTEXT			= 0x09,
	REC_HVM_PARAMS			= 0x0A,
	REC_TOOLSTACK			= 0x0B,
	REC_X86_PV_VCPU_MSRS		= 0x0C,
	REC_VERIFY			= 0x0D,
	REC_CHECKPOINT			= 0x0E,
	REC_CHECKPOINT_DIRTY_PFN_LIST	= 0x0F,
	REC_STATIC_DATA_END		= 0x10,
	REC_X86_CPUID_POLICY		= 0x11,
	REC_X86_MSR_POLICY		= 0x12,
	REC_NR_MANDATORY		= 0x13,
	/* Project extensions live in the optional range (bit 31); see SPEC.md. */
};

/*
 * xmig's extension records (SPEC.md sections 12 and 13): optional types,
 * bit 31 set, so readers that do not know them skip them.  Adding them did
 * not change a version (SPEC section 6); changing their layout would.
 * Defines rather than enumerators: the values do not fit an int.
 */
#define REC_XMIG_NEGOTIATE	0x80000001u	/* forward, first record */
#define REC_XMIG_ZERO_PAGES	0x80000002u	/* forward, like PAGE_DATA */
#define REC_XMIG_HANDOVER	0x80000003u	/* forward control, after END */
#define REC_XMIG_DOMAIN_CONFIG	0x80000004u	/* forward, before static data */
#define REC_XMIG_EARLY_PARAMS	0x80000005u	/* forward, after STATIC_DATA_END */
#define REC_XMIG_DELTA_PAGES	0x80000006u	/* forward, like PAGE_DATA (12.7) */
#define REC_XMIG_PASS		0x80000007u	/* data streams only (SPEC 13.6) */
#define REC_XMIG_REPLY		0x80000011u	/* back-channel */
#define REC_XMIG_ACK		0x80000012u	/* back-channel */
#define REC_XMIG_ERROR		0x80000013u	/* back-channel, last */
#define REC_XMIG_STATUS		0x80000014u	/* back-channel, after END */
#define REC_XMIG_DIGESTS	0x80000015u	/* back-channel, after RUNNING */
#define REC_XMIG_CHECKPOINT_ACK	0x80000016u	/* back-channel, checkpointed streams */
#define REC_XMIG_STREAMS	0x80000017u	/* back-channel, after REPLY */

/* The back-channel's image header: version 1, options bit 1 (SPEC 13.1). */
#define WIRE_CONTROL_IHDR_OPTIONS	WIRE_IHDR_OPT_BACKCHANNEL

/* XMIG_NEGOTIATE (48 octets, stream byte order) and XMIG_REPLY. */
#define WIRE_NEGOTIATE_SIZE	48u
#define XMIG_NEGOTIATE_VERSION	1u

/* features: offered in XMIG_NEGOTIATE, accepted in XMIG_REPLY. */
#define XMIG_F_CHECKSUM		(1u << 0)	/* draft-B record checksums */
#define XMIG_F_DEFLATE		(1u << 1)	/* WIRE_REC_OPT_DEFLATE */
#define XMIG_F_ZERO_PAGES	(1u << 2)	/* REC_XMIG_ZERO_PAGES */
#define XMIG_F_ACKS		(1u << 3)	/* REC_XMIG_ACK */
#define XMIG_F_HANDOVER		(1u << 4)	/* SPEC 13.4 */
#define XMIG_F_CHECKPOINTS	(1u << 5)	/* a checkpointed stream (SPEC 13.5) */
#define XMIG_F_PARALLEL		(1u << 6)	/* data streams (SPEC 13.6) */
#define XMIG_F_CONFIG		(1u << 7)	/* offer only: XMIG_DOMAIN_CONFIG follows */
#define XMIG_F_XXH3		(1u << 8)	/* the memory digest is XXH3-128 */
#define XMIG_F_ZSTD		(1u << 9)	/* WIRE_REC_OPT_ZSTD */
#define XMIG_F_QUERY		(1u << 10)	/* offer only: ask, send nothing (13.2) */
#define XMIG_F_DELTA		(1u << 11)	/* REC_XMIG_DELTA_PAGES (12.7) */
#define XMIG_F_KNOWN		0x00000FFFu	/* bits 12-31 must be zero */
/*
 * PARALLEL (SPEC 13.6): XMIG_NEGOTIATE's u16 at offset 22 offers 2 .. this
 * many data streams; XMIG_STREAMS (24 octets: u16 streams, u16 port, u32
 * reserved, u8 token[16]) answers; each data connection opens with the
 * hello (32 octets, little-endian: magic, u16 version, u16 index, u16
 * streams, u16 reserved, u8 token[16]); XMIG_PASS (24 octets: u32 pass,
 * u32 flags, u64 pages, u64 total) closes a pass on a data stream.
 */
#define XMIG_STREAMS_MAX	16u
#define WIRE_STREAMS_SIZE	24u
#define WIRE_STREAM_TOKEN_SIZE	16u
#define WIRE_HELLO_SIZE		32u
#define WIRE_HELLO_MAGIC	"XMIGDATA"
#define WIRE_HELLO_VERSION	1u
#define WIRE_PASS_SIZE		24u
#define XMIG_PASS_LAST		0x1u	/* the stream's last record before END */
/* XMIG_NEGOTIATE interval_ms with CHECKPOINTS: 1 .. this (one minute). */
#define WIRE_CHECKPOINT_INTERVAL_MAX	60000u

/* can_write (XMIG_NEGOTIATE) and can_read (XMIG_REPLY). */
#define XMIG_CAN_DRAFTB_V1	(1u << 0)
#define XMIG_CAN_XEN_V2		(1u << 1)
#define XMIG_CAN_XEN_V3		(1u << 2)
#define XMIG_CAN_KNOWN		0x00000007u	/* bits 3-31 must be zero */

/* XMIG_DOMAIN_CONFIG: u32 kind, u32 reserved, then the text (SPEC 12.4). */
#define WIRE_CONFIG_HDR_SIZE	8u
#define WIRE_CONFIG_TEXT_MAX	(1u << 20)
#define XMIG_CONFIG_LIBXL_JSON	1u	/* libxl_domain_config_to_json() */

/* XMIG_EARLY_PARAMS: HVM_PARAMS' layout, these indices only (SPEC 12.5). */
#define WIRE_EARLY_PARAMS_MAX	2u
#define WIRE_HVM_PARAM_STORE_PFN	1u	/* Xen's HVM_PARAM_STORE_PFN */
#define WIRE_HVM_PARAM_CONSOLE_PFN	17u	/* Xen's HVM_PARAM_CONSOLE_PFN */

/* XMIG_REPLY result. */
#define XMIG_REPLY_OK		0u	/* compatible */
#define XMIG_REPLY_VERSION	1u	/* cannot read this dialect or version */
#define XMIG_REPLY_DOMAIN	2u	/* arch or type it cannot host */
#define XMIG_REPLY_PAGE_SIZE	3u
#define XMIG_REPLY_MEMORY	4u	/* nr_pages * page_size > max_memory */
#define XMIG_REPLY_RECORDS	5u	/* a mandatory record is not restorable */
#define XMIG_REPLY_LIMITS	6u	/* max_record_len too small */
#define XMIG_REPLY_OTHER	7u
#define XMIG_REPLY_MAX		7u

/* XMIG_STATUS state. */
#define XMIG_STATUS_RESTORED	1u	/* complete, paused */
#define XMIG_STATUS_RUNNING	2u
#define XMIG_STATUS_FAILED	3u	/* could not restore or start; discarded */

/* XMIG_HANDOVER command. */
#define XMIG_HANDOVER_GO	1u
#define XMIG_HANDOVER_ABORT	2u

/* Sizes of the back-channel and control bodies (little-endian). */
#define WIRE_REPLY_MIN		48u	/* then message[] */
#define WIRE_ACK_SIZE		24u
#define WIRE_ERROR_MIN		24u	/* then message[] */
#define WIRE_STATUS_MIN		8u	/* then message[] */
#define WIRE_HANDOVER_SIZE	8u
#define WIRE_DIGESTS_SIZE	72u
#define WIRE_CHECKPOINT_ACK_SIZE	16u	/* u64 epoch, u64 octets */
#define WIRE_MESSAGE_MAX	4096u	/* octets of UTF-8 text in a message[] */

/* DEFLATE or ZSTD PAGE_DATA: after pfn[], u32 raw_length, u32 its length. */
#define WIRE_DEFLATE_HDR_SIZE	8u

/* PAGE_DATA pfn[] entry: bits 63-60 type, 59-52 reserved, 51-0 pfn. */
#define WIRE_PFN_MASK		0x000FFFFFFFFFFFFFULL
#define WIRE_PFN_RES_MASK	0x0FF0000000000000ULL
#define WIRE_PFN_TYPE_SHIFT	60

/* Page types: the XEN_DOMCTL_PFINFO_* nibble (bits 31-28 of the u32 form). */
enum wire_page_type {
	PT_NOTAB	= 0x0,
	PT_L1TAB	= 0x1,
	PT_L2TAB	= 0x2,
	PT_L3TAB	= 0x3,
	PT_L4TAB	= 0x4,
	/* 0x5-0x8 reserved: rejected */
	PT_L1PIN	= 0x9,
	PT_L2PIN	= 0xA,
	PT_L3PIN	= 0xB,
	PT_L4PIN	= 0xC,
	PT_BROKEN	= 0xD,
	PT_XALLOC	= 0xE,
	PT_XTAB		= 0xF,
};

/* Fixed body sizes. */
#define WIRE_X86_PV_INFO_SIZE	8u
#define WIRE_TSC_INFO_SIZE	24u
#define WIRE_VCPU_HDR_SIZE	8u
#define WIRE_VCPU_BASIC_64	5168u	/* sizeof(vcpu_guest_context_x86_64_t) */
#define WIRE_VCPU_BASIC_32	2800u	/* sizeof(vcpu_guest_context_x86_32_t) */
#define WIRE_VCPU_EXT_MAX	128u
#define WIRE_VCPU_XSAVE_MIN	16u
#define WIRE_VCPU_MSR_SIZE	16u
#define WIRE_CPUID_LEAF_SIZE	24u
#define WIRE_MSR_ENTRY_SIZE	16u
#define WIRE_PAGE_DATA_MAX	1024u	/* pages per PAGE_DATA written */

#endif
