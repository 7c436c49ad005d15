/*
 * test-pvpt.c -- PV page-table translation and the PV restore checks
 * (lib/backend/xen/pvpt.c), without Xen: a made-up guest of 8 pfns whose
 * frames are scattered, its tables normalised and localised again, and
 * every check refusing what it must with the reason named.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "pvpt.h"
#include "tap.h"
#include "wire.h"

#define NPFN	8

static uint64_t src_mfn[NPFN] = { 0x1234, 0x99, 0x5000, PV_INVALID, 0x777,
	0x42, 0x10000, 0x3 };
static uint64_t dst_mfn[NPFN] = { 0x800, 0x801, 0x900, PV_INVALID, 0x333,
	0x20, 0x21, 0x22 };

static void
test_index(void)
{
	struct pv_p2m p = { 0 };
	uint64_t i;

	p.n = NPFN;
	p.mfn = malloc(sizeof(src_mfn));
	memcpy(p.mfn, src_mfn, sizeof(src_mfn));
	CHECK(pv_p2m_index(&p) == 0, "index");
	CHECK(p.nrev == NPFN - 1, "%zu mfns indexed", p.nrev);
	for (i = 0; i < NPFN; i++)
		if (src_mfn[i] != PV_INVALID)
			CHECK(pv_mfn_to_pfn(&p, src_mfn[i]) == i, "mfn %#llx",
			    (unsigned long long)src_mfn[i]);
	CHECK(pv_mfn_to_pfn(&p, 0x98) == PV_INVALID, "unknown mfn");
	CHECK(pv_mfn_to_pfn(&p, 0x10001) == PV_INVALID, "past the last");
	CHECK(pv_pfn_to_mfn(&p, 3) == PV_INVALID, "hole");
	CHECK(pv_pfn_to_mfn(&p, NPFN) == PV_INVALID, "beyond");
	pv_p2m_free(&p);
	CHECK(p.mfn == NULL && p.rev == NULL, "freed");
}

static void
test_roundtrip(void)
{
	struct pv_p2m s = { 0 }, d = { 0 };
	uint64_t src[PV_PTES], wire[PV_PTES], back[PV_PTES];
	char msg[200];
	unsigned i;
	int rc;

	s.n = d.n = NPFN;
	s.mfn = malloc(sizeof(src_mfn));
	d.mfn = malloc(sizeof(dst_mfn));
	memcpy(s.mfn, src_mfn, sizeof(src_mfn));
	memcpy(d.mfn, dst_mfn, sizeof(dst_mfn));
	pv_p2m_index(&s);

	/* An L4: entries 0-2 present, Xen's slots full, one absent entry. */
	memset(src, 0, sizeof(src));
	src[0] = (0x1234ULL << 12) | 0x67;
	src[1] = (0x5000ULL << 12) | 0x63 | (1ULL << 63);	/* NX kept */
	src[2] = (0x3ULL << 12) | 0x27;
	src[5] = 0x5000ULL << 12;		/* not present: untouched */
	for (i = PV_L4_XEN_FIRST; i <= PV_L4_XEN_LAST; i++)
		src[i] = (0xabcdeULL << 12) | 0x63;	/* Xen's */
	rc = pv_normalise(&s, 4, PT_L4PIN, 7, src, wire, msg, sizeof(msg));
	CHECK(rc == 0, "normalise: %s", msg);
	CHECK(wire[0] == ((0ULL << 12) | 0x67), "%#llx",
	    (unsigned long long)wire[0]);
	CHECK(wire[1] == ((2ULL << 12) | 0x63 | (1ULL << 63)), "%#llx",
	    (unsigned long long)wire[1]);
	CHECK(wire[2] == ((7ULL << 12) | 0x27), "%#llx",
	    (unsigned long long)wire[2]);
	CHECK(wire[5] == src[5], "a non-present entry stays");
	CHECK(wire[PV_L4_XEN_FIRST] == 0 && wire[PV_L4_XEN_LAST] == 0,
	    "Xen's slots are cleared");
	CHECK(src[0] == ((0x1234ULL << 12) | 0x67), "the source is untouched");

	memcpy(back, wire, sizeof(back));
	rc = pv_localise(&d, 4, PT_L4PIN, 7, back, msg, sizeof(msg));
	CHECK(rc == 0, "localise: %s", msg);
	CHECK(back[0] == ((0x800ULL << 12) | 0x67), "%#llx",
	    (unsigned long long)back[0]);
	CHECK(back[1] == ((0x900ULL << 12) | 0x63 | (1ULL << 63)), "%#llx",
	    (unsigned long long)back[1]);
	CHECK(back[2] == ((0x22ULL << 12) | 0x27), "%#llx",
	    (unsigned long long)back[2]);

	/* A frame that is not the guest's. */
	src[3] = (0x98ULL << 12) | 1;
	rc = pv_normalise(&s, 4, PT_L2TAB, 4, src, wire, msg, sizeof(msg));
	CHECK(rc == -ERANGE && strstr(msg, "frame 0x98 is not the guest's") &&
	    strstr(msg, "L2 table at pfn 0x4, entry 3"), "%d %s", rc, msg);
	src[3] = 0;

	for (i = PV_L4_XEN_FIRST; i <= PV_L4_XEN_LAST; i++)
		src[i] = 0;
	/* A superpage above L1; the same bit in an L1 is PAT, fine. */
	src[4] = (0x42ULL << 12) | PV_PTE_PSE | 1;
	rc = pv_normalise(&s, 4, PT_L2TAB, 4, src, wire, msg, sizeof(msg));
	CHECK(rc == -E2BIG && strstr(msg, "superpage"), "%d %s", rc, msg);
	rc = pv_normalise(&s, 4, PT_L1TAB, 4, src, wire, msg, sizeof(msg));
	CHECK(rc == 0, "L1 with the PAT bit: %s", msg);
	src[4] = 0;

	/* Localise: a pfn absent from the stream (a hole, and beyond). */
	memset(back, 0, sizeof(back));
	back[9] = (3ULL << 12) | 1;
	rc = pv_localise(&d, 4, PT_L1PIN, 6, back, msg, sizeof(msg));
	CHECK(rc == -ENOENT && strstr(msg, "pfn 0x3, which is absent from "
	    "the stream") && strstr(msg, "L1 table at pfn 0x6, entry 9"),
	    "%d %s", rc, msg);
	back[9] = (0xfffffULL << 12) | 1;
	rc = pv_localise(&d, 4, PT_L1PIN, 6, back, msg, sizeof(msg));
	CHECK(rc == -ENOENT && strstr(msg, "pfn 0xfffff"), "%d %s", rc, msg);

	pv_p2m_free(&s);
	pv_p2m_free(&d);
}

static void
test_checks(void)
{
	char msg[200];
	uint64_t fr[3] = { 5, 6, PV_INVALID };
	uint64_t t[PV_PTES];
	struct pv_p2m d = { 0 };
	int rc;

	CHECK(pv_info_check(8, 4, msg, sizeof(msg)) == 0, "64-bit");
	CHECK(pv_info_check(4, 3, msg, sizeof(msg)) == 0, "32-bit");
	rc = pv_info_check(2, 4, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "guest width 2"), "%s", msg);
	rc = pv_info_check(16, 4, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "guest width 16"), "%s", msg);
	rc = pv_info_check(8, 3, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "64-bit guest with 3"), "%s", msg);

	/* An L4 in a 3-level guest, on either side. */
	rc = pv_type_check(PT_L4PIN, 3, 0x41, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "an L4 page table at pfn 0x41 in "
	    "a guest with 3 paging levels"), "%s", msg);
	CHECK(pv_type_check(PT_L3PIN, 3, 0x41, msg, sizeof(msg)) == 0, "L3");
	CHECK(pv_type_check(PT_NOTAB, 3, 0x41, msg, sizeof(msg)) == 0, "page");
	CHECK(pv_type_check(PT_XTAB, 3, 0x41, msg, sizeof(msg)) == 0, "xtab");
	memset(t, 0, sizeof(t));
	rc = pv_localise(&d, 3, PT_L4TAB, 9, t, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "L4"), "%s", msg);
	rc = pv_normalise(&d, 3, PT_L4TAB, 9, t, t, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "L4"), "%s", msg);

	/* P2M frames: 2 frames of 512 cover 0..0x3ff. */
	CHECK(pv_p2m_cover_check(fr, 2, 512, 0x3ff, 0x3ff, 0x400, msg,
	    sizeof(msg)) == 0, "%s", msg);
	rc = pv_p2m_cover_check(fr, 2, 512, 0x3ff, 0x400, 0x400, msg,
	    sizeof(msg));
	CHECK(rc == -EPROTO && strstr(msg, "covers pfns 0 to 0x3ff, but the "
	    "stream has a page at pfn 0x400"), "%s", msg);
	rc = pv_p2m_cover_check(fr, 3, 512, 0x500, 0x3ff, 0x501, msg,
	    sizeof(msg));
	CHECK(rc == -EPROTO && strstr(msg, "no frame for pfns 0x400"), "%s",
	    msg);
	rc = pv_p2m_cover_check(fr, 1, 512, 0x3ff, 0x3ff, 0x400, msg,
	    sizeof(msg));
	CHECK(rc == -EPROTO && strstr(msg, "2 needed"), "%s", msg);
	rc = pv_p2m_cover_check(fr, 2, 512, 0x3ff, 0x3ff, 6, msg, sizeof(msg));
	CHECK(rc == -EPROTO && strstr(msg, "frame 1 is pfn 0x6"), "%s", msg);
	rc = pv_p2m_cover_check(NULL, 0, 512, 0, 0, 1, msg, sizeof(msg));
	CHECK(rc == -EPROTO && strstr(msg, "no X86_PV_P2M_FRAMES"), "%s", msg);

	/* CR3. */
	CHECK(pv_cr3_check(PT_L4PIN, 4, 0, 9, 1, msg, sizeof(msg)) == 0, "ok");
	rc = pv_cr3_check(PT_L4TAB, 4, 1, 9, 1, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "vcpu 1's CR3 is pfn 0x9, which is "
	    "an unpinned table, not a pinned L4 table"), "%s", msg);
	rc = pv_cr3_check(PT_L3PIN, 4, 0, 9, 1, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "pinned lower-level"), "%s", msg);
	rc = pv_cr3_check(PT_NOTAB, 4, 0, 9, 1, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "not a page table"), "%s", msg);
	rc = pv_cr3_check(PT_L4PIN, 4, 0, 9, 0, msg, sizeof(msg));
	CHECK(rc == -EINVAL && strstr(msg, "absent from the stream"), "%s",
	    msg);
}

int
main(void)
{
	test_index();
	test_roundtrip();
	test_checks();
	return tap_done();
}
