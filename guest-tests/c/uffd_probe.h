/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uffd_probe.h - the feature probe every userfaultfd reproducer starts with.
 *
 * A uffd accepts UFFDIO_API once, so the supported features are read on a
 * throwaway fd that is closed again; the reproducer then opens its real one.
 * A kernel without userfaultfd skips the whole program, with the reason.
 */
#ifndef UFFD_PROBE_H
#define UFFD_PROBE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ktap.h"
#include "uffd_compat.h"

static inline uint64_t uffd_probe_features(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		if (errno == ENOSYS)
			ktap_skip_all("kernel lacks userfaultfd (CONFIG_USERFAULTFD)");
		ktap_bail("userfaultfd()");
	}
	if (ioctl(fd, UFFDIO_API, &api))
		ktap_bail("UFFDIO_API probe");
	close(fd);
	return api.features;
}

#endif /* UFFD_PROBE_H */
