/*
 * digest.c -- the two digests a report carries: memory_sha256 over the
 * domain's pages in pfn order and vcpu_sha256 over the state records.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "xmig.h"

#define DIGEST_BATCH	256

int
digest_memory(struct backend *b, uint64_t nr_pages, unsigned page_size,
    uint8_t out[32])
{
	EVP_MD_CTX *ctx;
	uint64_t pfns[DIGEST_BATCH];
	void *pages[DIGEST_BATCH];
	uint8_t *zero;
	uint64_t pfn;
	unsigned i, n;
	int rc = 0;

	if ((zero = calloc(1, page_size)) == NULL)
		return -ENOMEM;
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		free(zero);
		return -ENOMEM;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
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
					EVP_DigestUpdate(ctx, pg, page_size);
					b->ops->unmap(b, cookie, 1);
				} else
					EVP_DigestUpdate(ctx, zero, page_size);
			}
			continue;
		}
		for (i = 0; i < n; i++) {
			/* Coalesce contiguous pages into one update. */
			unsigned j = i;

			if (pages[i] == NULL) {
				/* No data there (a hole): zeros. */
				EVP_DigestUpdate(ctx, zero, page_size);
				continue;
			}

			while (j + 1 < n && pages[j + 1] != NULL &&
			    (uint8_t *)pages[j + 1] ==
			    (uint8_t *)pages[j] + page_size)
				j++;
			EVP_DigestUpdate(ctx, pages[i],
			    (size_t)page_size * (j - i + 1));
			i = j;
		}
		b->ops->unmap(b, cookie, n);
	}
	EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
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
