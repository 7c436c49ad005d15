/*
 * buf.c -- a growable byte buffer for encoders.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define BUF_MIN_CAP	256

/* Make room for extra more octets; grows geometrically. */
int
buf_reserve(struct xp_buf *b, size_t extra)
{
	size_t	 need, cap;
	uint8_t	*data;

	if (extra > SIZE_MAX - b->len)
		return -XP_ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;

	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	data = realloc(b->data, cap);
	if (data == NULL)
		return -XP_ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int
buf_append(struct xp_buf *b, const void *p, size_t n)
{
	int	rv;

	if (n == 0)
		return 0;
	if ((rv = buf_reserve(b, n)) != 0)
		return rv;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Append n zeroed octets and return where they start, or NULL. */
uint8_t *
buf_extend(struct xp_buf *b, size_t n)
{
	uint8_t	*p;

	if (buf_reserve(b, n) != 0)
		return NULL;
	if (b->data == NULL) {
		/* n == 0 on an empty buffer: still a valid pointer. */
		if (buf_reserve(b, 1) != 0)
			return NULL;
	}
	p = b->data + b->len;
	memset(p, 0, n);
	b->len += n;
	return p;
}

void
buf_free(struct xp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
