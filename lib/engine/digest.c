/*
 * digest.c -- the two digests a report carries: the memory digest over the
 * domain's pages in pfn order (XXH3-128 by default, or SHA-256) and
 * vcpu_sha256 over the state records.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "xmig.h"

#define DIGEST_BATCH	256

const char *
digest_name(enum xmig_digest alg)
{
	return alg == XMIG_DIGEST_SHA256 ? "sha256" : "xxh3-128";
}

unsigned
digest_len(enum xmig_digest alg)
{
	return alg == XMIG_DIGEST_SHA256 ? 32 : 16;
}

int
digest_parse(const char *s, enum xmig_digest *alg)
{
	if (strcmp(s, "xxh3-128") == 0 || strcmp(s, "xxh3") == 0)
		*alg = XMIG_DIGEST_XXH3;
	else if (strcmp(s, "sha256") == 0)
		*alg = XMIG_DIGEST_SHA256;
	else
		return -EINVAL;
	return 0;
}

/* One streaming hash of either kind. */
struct mhash {
	EVP_MD_CTX	*sha;
	XXH3_state_t	*xxh;
};

struct mhash *
mhash_new(enum xmig_digest alg)
{
	struct mhash *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (alg == XMIG_DIGEST_SHA256) {
		if ((h->sha = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestInit_ex(h->sha, EVP_sha256(), NULL) == 1)
			return h;
	} else if ((h->xxh = XXH3_createState()) != NULL &&
	    XXH3_128bits_reset(h->xxh) == XXH_OK)
		return h;
	mhash_free(h);
	return NULL;
}

void
mhash_update(struct mhash *h, const void *p, size_t len)
{
	if (h->sha != NULL)
		EVP_DigestUpdate(h->sha, p, len);
	else
		XXH3_128bits_update(h->xxh, p, len);
}

void
mhash_final(struct mhash *h, uint8_t out[32])
{
	memset(out, 0, 32);
	if (h->sha != NULL)
		EVP_DigestFinal_ex(h->sha, out, NULL);
	else {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
		memcpy(out, c.digest, sizeof(c.digest));
	}
}

void
mhash_free(struct mhash *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->sha);
	if (h->xxh != NULL)
		XXH3_freeState(h->xxh);
	free(h);
}

int
digest_memory(struct backend *b, uint64_t nr_pages, unsigned page_size,
    enum xmig_digest alg, uint8_t out[32])
{
	struct mhash *h;
	uint64_t pfns[DIGEST_BATCH];
	void *pages[DIGEST_BATCH];
	uint8_t *zero;
	uint64_t pfn;
	unsigned i, n;
	int rc = 0;

	if ((zero = calloc(1, page_size)) == NULL)
		return -ENOMEM;
	if ((h = mhash_new(alg)) == NULL) {
		free(zero);
		return -ENOMEM;
	}
	for (pfn = 0; pfn < nr_pages; pfn += n) {
		void *cookie = NULL;

		n = nr_pages - pfn > DIGEST_BATCH ? DIGEST_BATCH :
		    (unsigned)(nr_pages - pfn);
		for (i = 0; i < n; i++)
			pfns[i] = pfn + i;
		if (b->ops->map(b, pfns, n, 0, pages, &cookie) != 0) {
			/* Not mapped (never populated): zeros, page by page. */
			for (i = 0; i < n; i++) {
				void *pg;

				cookie = NULL;
				if (b->ops->map(b, &pfns[i], 1, 0, &pg,
				    &cookie) == 0) {
					mhash_update(h, pg, page_size);
					b->ops->unmap(b, cookie, 1);
				} else
					mhash_update(h, zero, page_size);
			}
			continue;
		}
		for (i = 0; i < n; i++) {
			/* Coalesce contiguous pages into one update. */
			unsigned j = i;

			if (pages[i] == NULL) {
				/* No data there (a hole): zeros. */
				mhash_update(h, zero, page_size);
				continue;
			}

			while (j + 1 < n && pages[j + 1] != NULL &&
			    (uint8_t *)pages[j + 1] ==
			    (uint8_t *)pages[j] + page_size)
				j++;
			mhash_update(h, pages[i],
			    (size_t)page_size * (j - i + 1));
			i = j;
		}
		b->ops->unmap(b, cookie, n);
	}
	mhash_final(h, out);
	mhash_free(h);
	free(zero);
	return rc;
}

struct digest_state {
	EVP_MD_CTX *ctx;
};

struct digest_state *
digest_state_new(void)
{
	struct digest_state *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	if ((d->ctx = EVP_MD_CTX_new()) == NULL) {
		free(d);
		return NULL;
	}
	EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL);
	return d;
}

void
digest_state_add(struct digest_state *d, uint32_t type, const uint8_t *body_le,
    uint32_t len)
{
	uint8_t hdr[8];

	xp_put32(0, hdr, type);
	xp_put32(0, hdr + 4, len);
	EVP_DigestUpdate(d->ctx, hdr, sizeof(hdr));
	if (len > 0)
		EVP_DigestUpdate(d->ctx, body_le, len);
}

void
digest_state_final(struct digest_state *d, uint8_t out[32])
{
	EVP_DigestFinal_ex(d->ctx, out, NULL);
}

void
digest_state_free(struct digest_state *d)
{
	if (d == NULL)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}
