/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uffd_compat.h - userfaultfd uapi values newer than Debian 12's headers.
 *
 * Debian 12 ships the 6.1 uapi; the reproducers run against 6.1 up to 7.x
 * kernels, so every value added after 6.1 is defined here, guarded, with the
 * number the upstream uapi gives it.  Nothing in here decides behaviour:
 * the reproducers probe the running kernel for what it supports.
 */
#ifndef UFFD_COMPAT_H
#define UFFD_COMPAT_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM		(1ULL << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED		(1ULL << 13)	/* 6.4 */
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON			(1ULL << 14)	/* 6.6 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC			(1ULL << 15)	/* 6.7 */
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE			(1ULL << 16)	/* 6.8 */
#endif

#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC				0xAA
#define USERFAULTFD_IOC_NEW			_IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY			1
#endif

#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE				(0x05)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON				(0x08)
#endif

#ifndef UFFDIO_MOVE
/* Layout as in include/uapi/linux/userfaultfd.h since 6.8. */
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE		((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES	((__u64)1 << 1)
	__u64 mode;
	/* bytes moved, or a negated error; written by the kernel */
	__s64 move;
};
#define UFFDIO_MOVE	_IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* /proc/<pid>/pagemap bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_UFFD_WP_BIT				57
#define PM_PRESENT_BIT				63

/* kselftest exit codes */
#define KSFT_PASS				0
#define KSFT_FAIL				1
#define KSFT_SKIP				4

/* /proc/sys/kernel/tainted bits a reproducer must never add */
#define TAINT_BAD_PAGE_BIT			5
#define TAINT_DIE_BIT				7
#define TAINT_WARN_BIT				9
#define TAINT_FATAL_MASK	((1UL << TAINT_BAD_PAGE_BIT) | \
				 (1UL << TAINT_DIE_BIT) | \
				 (1UL << TAINT_WARN_BIT))

#endif /* UFFD_COMPAT_H */
