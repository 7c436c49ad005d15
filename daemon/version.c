/*
 * version.c -- what every command's --version prints: the version, the
 * dialects it speaks, and what this build contains.  The backends come
 * from the registry (lib/backend/backend.c), the CRC-32 implementation from the
 * run-time choice in proto/crc.c, the library versions from the libraries
 * themselves; nothing here is a list to keep in step by hand except the
 * transports, which lib/transport/transport.c always builds.
 */
#include "config.h"

#include <stdio.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <zlib.h>

#include "daemon.h"
#include "proto.h"
#include "xmig.h"

static int
version_backend(const char *name, int built, void *arg)
{
	int	*n = arg;

	printf("%s%s%s", (*n)++ ? ", " : "", name, built ? "" : ": not built");
	return 0;
}

void
version_print(void)
{
	int	n = 0;

	printf("%s %s\n", log_progname(), PACKAGE_VERSION);
	printf("dialects:    draft-B image version %u; Xen migration stream "
	    "versions %u and %u (writes %u)\n", WIRE_VERSION_DRAFTB,
	    WIRE_VERSION_XEN_MIN, WIRE_VERSION_XEN, WIRE_VERSION_XEN);
	printf("backends:    ");
	backend_foreach(version_backend, &n);
	printf("\n");
	printf("transports:  tcp, tls (%s), exec, file, pipe\n",
	    OpenSSL_version(OPENSSL_VERSION));
	printf("compression: zlib %s\n", zlibVersion());
	printf("crc32:       %s (chosen at run time for this CPU)\n",
	    xp_crc32_impl());
	printf("libevent:    %s\n", event_get_version());
}

static int
version_built(const char *name, int built, void *arg)
{
	char	**p = arg;
	size_t	  len = (size_t)(p[1] - p[0]);
	int	  n;

	if (!built || len == 0)
		return 0;
	n = snprintf(p[0], len, "%s%s", p[2] != p[0] ? ", " : "", name);
	if (n > 0)
		p[0] += (size_t)n < len ? (size_t)n : len - 1;
	return 0;
}

const char *
version_backends_built(char *buf, size_t len)
{
	char	*p[3] = { buf, buf + len, buf };

	if (len > 0)
		buf[0] = '\0';
	backend_foreach(version_built, p);
	return buf;
}
