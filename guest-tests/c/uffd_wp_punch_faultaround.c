// SPDX-License-Identifier: GPL-2.0
/*
 * uffd_wp_punch_faultaround - uffd-wp on shmem must survive hole punching
 * and must never be bypassed by fault-around.
 *
 * Contract: on a shmem mapping registered with UFFDIO_REGISTER_MODE_WP
 * (UFFD_FEATURE_WP_HUGETLBFS_SHMEM, CONFIG_PTE_MARKER_UFFD_WP), a write to
 * a write-protected page always raises a UFFD_PAGEFAULT_FLAG_WP message,
 * also after the page was zapped (MADV_DONTNEED), punched (fallocate
 * PUNCH_HOLE) or mapped as a neighbour of another page's read fault.  The
 * protection of a non-present page lives in a PTE marker; two guards keep
 * fault-around from mapping the page cache page over that marker without
 * the uffd-wp bit: do_read_fault() skips fault-around on uffd-wp/minor VMAs
 * (uffd_disable_fault_around()), and filemap_map_pages() skips every PTE
 * that is not pte_none(), markers included.  Either guard alone hides the
 * loss of the other; a kernel without both maps such a page without the
 * uffd-wp bit, and the next write goes through silently: data the uffd
 * server never hears about (the punch-hole data-loss window of "mm: Don't
 * fault around userfaultfd-registered regions on reads").
 *
 * What is checked, with /proc/self/pagemap bit 57 (PM_UFFD_WP) and bit 63
 * (present) and a handler thread that counts WP messages per page and
 * unprotects the page to let the writer go:
 *  1. zap everything, write-protect the upper half of every 16-page
 *     (fault-around) block, read the page just below each protected run;
 *     no protected page may be present without bit 57, and every write to
 *     a protected page must bump that page's WP counter;
 *  2. per page: protect, punch, check the marker (bit 57), optionally
 *     refill the page cache behind the mapping's back with pwrite(), read a
 *     zapped neighbour in the same block, read the hole, write; same rules;
 *  3. a few seconds of stress: readers fault pages that are never
 *     protected (fault-around triggers), a puncher punches, refills and
 *     zaps, the prober write-protects short runs, punches and refills them
 *     itself, then checks pagemap and writes.
 * A correct kernel never shows a protected page without bit 57 and never
 * completes a write to a protected page without a WP message.
 *
 * @timeout: 90
 * @needs: config=USERFAULTFD,PTE_MARKER_UFFD_WP,SHMEM,MEMFD_CREATE,ADVISE_SYSCALLS
 * @covers: mm/memory.c mm/filemap.c mm/shmem.c mm/mprotect.c mm/userfaultfd.c
 * @covers: fs/userfaultfd.c include/linux/userfaultfd_k.h include/linux/mm_inline.h
 * @covers: include/linux/swapops.h
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "ktap.h"
#include "uffd_probe.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE	0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE		15
#endif

#define NR_PAGES		512	/* 2 MiB with 4 KiB pages: one PTE table */
#define BLOCK			16	/* default fault_around_bytes / 4 KiB */
#define NR_BLOCKS		(NR_PAGES / BLOCK)
#define AREA_ALIGN		(2UL << 20)
#define STRESS_NS		(3ULL * 1000000000ULL)
#define STRESS_MIN_NS		(500ULL * 1000000ULL)
#define LATE_NS			(40ULL * 1000000000ULL)
#define ALARM_SECONDS		80
#define NR_READERS		2
#define MAX_FAIL_DIAGS		20

#define PM_WP			(1ULL << PM_UFFD_WP_BIT)
#define PM_PRESENT		(1ULL << PM_PRESENT_BIT)

static int uffd = -1;
static int memfd = -1;
static int pagemap_fd = -1;
static char *area;
static size_t page_size;
static uint64_t t_start;

/* Written by the handler, read by the writers: __atomic builtins only. */
static unsigned long wp_count[NR_PAGES];
static unsigned long msgs_wp;
static unsigned long msgs_unexpected;
static unsigned long handler_errors;
static int handler_errno;
static int handler_stop;

/* Stress coordination. */
static int stress_stop;
static int target_block;
static unsigned long stress_reads;
static unsigned long stress_punches;
static unsigned long stress_zaps;

static int fail_diags;
static unsigned long total_checks;
static unsigned long total_writes;

static void fail_diag(const char *fmt, ...)
{
	va_list ap;

	if (fail_diags++ >= MAX_FAIL_DIAGS) {
		if (fail_diags == MAX_FAIL_DIAGS + 1)
			ktap_diag("further failures are counted but not shown");
		return;
	}
	va_start(ap, fmt);
	ktap_vdiag(fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static double secs_since(uint64_t t)
{
	return (double)(now_ns() - t) / 1e9;
}

static void alarm_handler(int sig)
{
	static const char msg[] =
		"Bail out! timed out: a writer blocked on a uffd-wp fault was never released, or the kernel is stuck\n";
	ssize_t r;

	(void)sig;
	r = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)r;
	_exit(KSFT_FAIL);
}

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static inline char *page_addr(int idx)
{
	return area + (size_t)idx * page_size;
}

static inline uint64_t read_page(int idx)
{
	return *(volatile uint64_t *)page_addr(idx);
}

static inline void write_page(int idx, uint64_t val)
{
	*(volatile uint64_t *)(page_addr(idx) + sizeof(uint64_t)) = val;
}

static inline unsigned long wp_seen(int idx)
{
	return __atomic_load_n(&wp_count[idx], __ATOMIC_ACQUIRE);
}

/* Only fails for reasons of the test itself, so a failure bails out. */
static int writeprotect(int idx, int n, bool protect, bool from_handler)
{
	struct uffdio_writeprotect wp;
	int tries;

	for (tries = 0; tries < 1000; tries++) {
		memset(&wp, 0, sizeof(wp));
		wp.range.start = (unsigned long)page_addr(idx);
		wp.range.len = (unsigned long)n * page_size;
		wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
		if (!ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			break;
		usleep(1000);
	}
	if (from_handler)
		return -errno;
	ktap_bail("UFFDIO_WRITEPROTECT %s of pages %d..%d",
		  protect ? "protect" : "unprotect", idx, idx + n - 1);
}

static void punch(int idx)
{
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)idx * page_size, page_size))
		ktap_need_failed("shmem hole punching (CONFIG_SHMEM)",
				 "fallocate(PUNCH_HOLE) of page %d", idx);
}

/* Put data back into the page cache behind the mapping's back. */
static void refill(int idx, uint64_t tag)
{
	uint64_t buf[512];
	size_t i, n = sizeof(buf) / sizeof(buf[0]), done;

	for (i = 0; i < n; i++)
		buf[i] = tag ^ i;
	for (done = 0; done < page_size; done += sizeof(buf)) {
		size_t len = page_size - done;

		if (len > sizeof(buf))
			len = sizeof(buf);
		if (pwrite(memfd, buf, len, (off_t)idx * page_size + done) !=
		    (ssize_t)len)
			ktap_bail("pwrite refill of page %d", idx);
	}
}

static void zap(int idx, int n)
{
	if (madvise(page_addr(idx), (size_t)n * page_size, MADV_DONTNEED))
		ktap_need_failed("madvise(2) (CONFIG_ADVISE_SYSCALLS)",
				 "madvise(MADV_DONTNEED) of pages %d..%d", idx,
				 idx + n - 1);
}

static void pagemap_read(int idx, int n, uint64_t *out)
{
	off_t off = (off_t)(((uintptr_t)page_addr(idx) / page_size) *
			    sizeof(uint64_t));
	ssize_t want = (ssize_t)n * sizeof(uint64_t);

	if (pread(pagemap_fd, out, want, off) != want)
		ktap_bail("read /proc/self/pagemap");
}

static uint64_t pagemap_one(int idx)
{
	uint64_t v;

	pagemap_read(idx, 1, &v);
	return v;
}

/*
 * A write-protected page must carry bit 57: as a present PTE with the
 * uffd-wp bit or as a PTE marker.  Present without it is the fault-around
 * bug; absent without it means the marker was lost.  Both let a write
 * through silently.
 */
static bool check_protected(int idx, uint64_t pm, const char *where)
{
	total_checks++;
	if (pm & PM_WP)
		return true;
	fail_diag("%s: page %d is write-protected but pagemap shows it %s (entry 0x%016llx)",
		  where, idx,
		  (pm & PM_PRESENT) ? "present without uffd-wp" :
				      "not present and without a uffd-wp marker",
		  (unsigned long long)pm);
	return false;
}

/* Write a write-protected page; true if the handler saw a WP fault for it. */
static bool probe_write(int idx, uint64_t val, const char *where)
{
	unsigned long before = wp_seen(idx);
	unsigned long after;

	total_writes++;
	write_page(idx, val);
	after = wp_seen(idx);
	if (after != before)
		return true;
	fail_diag("%s: write to write-protected page %d completed without a uffd-wp message (pagemap now 0x%016llx)",
		  where, idx, (unsigned long long)pagemap_one(idx));
	return false;
}

static void handle_msg(const struct uffd_msg *msg)
{
	unsigned long addr, base = (unsigned long)area;
	int idx, err;

	if (msg->event != UFFD_EVENT_PAGEFAULT ||
	    !(msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
		__atomic_add_fetch(&msgs_unexpected, 1, __ATOMIC_RELAXED);
		return;
	}
	addr = msg->arg.pagefault.address;
	if (addr < base || addr >= base + NR_PAGES * page_size) {
		__atomic_add_fetch(&msgs_unexpected, 1, __ATOMIC_RELAXED);
		return;
	}
	idx = (addr - base) / page_size;
	__atomic_add_fetch(&msgs_wp, 1, __ATOMIC_RELAXED);
	/* Count first: the writer reads the counter once it is released. */
	__atomic_add_fetch(&wp_count[idx], 1, __ATOMIC_RELEASE);
	err = writeprotect(idx, 1, false, true);
	if (err) {
		struct uffdio_range range = {
			.start = addr & ~(page_size - 1),
			.len = page_size,
		};

		__atomic_add_fetch(&handler_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&handler_errno, -err, __ATOMIC_RELAXED);
		/* The writer would fault again, but do not leave it asleep. */
		ioctl(uffd, UFFDIO_WAKE, &range);
	}
}

static void *handler_main(void *arg)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msgs[16];

	(void)arg;
	while (!__atomic_load_n(&handler_stop, __ATOMIC_ACQUIRE)) {
		ssize_t r;
		int n, i;

		n = poll(&pfd, 1, 50);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			__atomic_add_fetch(&handler_errors, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&handler_errno, EIO, __ATOMIC_RELAXED);
			break;
		}
		for (;;) {
			r = read(uffd, msgs, sizeof(msgs));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN) {
					__atomic_add_fetch(&handler_errors, 1,
							   __ATOMIC_RELAXED);
					__atomic_store_n(&handler_errno, errno,
							 __ATOMIC_RELAXED);
				}
				break;
			}
			if (r % sizeof(msgs[0])) {
				__atomic_add_fetch(&handler_errors, 1,
						   __ATOMIC_RELAXED);
				__atomic_store_n(&handler_errno, EPROTO,
						 __ATOMIC_RELAXED);
			}
			for (i = 0; i < (int)(r / sizeof(msgs[0])); i++)
				handle_msg(&msgs[i]);
		}
	}
	return NULL;
}

/* Map the memfd at a 2 MiB-aligned address so blocks match PTE windows. */
static char *map_aligned(void)
{
	size_t len = NR_PAGES * page_size;
	char *res, *p, *aligned;

	res = mmap(NULL, len + AREA_ALIGN, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		ktap_bail("mmap reservation");
	aligned = (char *)(((uintptr_t)res + AREA_ALIGN - 1) &
			   ~(uintptr_t)(AREA_ALIGN - 1));
	p = mmap(aligned, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 memfd, 0);
	if (p == MAP_FAILED)
		ktap_bail("mmap memfd MAP_SHARED");
	if (aligned > res)
		munmap(res, aligned - res);
	if (res + len + AREA_ALIGN > aligned + len)
		munmap(aligned + len, res + len + AREA_ALIGN - (aligned + len));
	/* Keep PTE-mapped small pages even if shmem THP is enabled. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void setup_uffd(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	struct uffdio_register reg;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		ktap_need_failed("userfaultfd (CONFIG_USERFAULTFD)", "userfaultfd()");
	if (ioctl(uffd, UFFDIO_API, &api))
		ktap_bail("UFFDIO_API with UFFD_FEATURE_WP_HUGETLBFS_SHMEM");
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (unsigned long)area;
	reg.range.len = NR_PAGES * page_size;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		ktap_bail("UFFDIO_REGISTER MODE_WP on a shmem mapping");
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
		errno = EINVAL;
		ktap_bail("UFFDIO_REGISTER did not offer UFFDIO_WRITEPROTECT (ioctls 0x%llx)",
			  (unsigned long long)reg.ioctls);
	}
}

static void show_shmem_thp(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");

	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
	ktap_diag("shmem_enabled: %s", buf);
}

/*
 * Fault-around sanity on an unregistered mapping of the same memfd: if it
 * maps nothing but the faulting page, fault-around is off (fault_around_bytes
 * = PAGE_SIZE) and the fault-around checks below cannot see the bug.
 */
static void control_fault_around(void)
{
	char *saved = area;
	uint64_t pm[BLOCK];
	int i, mapped = 0;

	area = map_aligned();
	zap(0, BLOCK);
	read_page(7);
	pagemap_read(0, BLOCK, pm);
	for (i = 0; i < BLOCK; i++)
		mapped += !!(pm[i] & PM_PRESENT);
	munmap(area, NR_PAGES * page_size);
	area = saved;
	ktap_diag("control: on an unregistered mapping, a read fault on page 7 mapped %d of the 16 pages of its block",
		  mapped);
	if (mapped <= 1)
		ktap_diag("control: fault-around looks disabled here; the fault-around checks cannot catch the bug on this kernel");
}

/*
 * Phase 1: markers installed over zapped PTEs, then read faults on the
 * page just below each protected run.
 */
static void phase_faultaround(void)
{
	static uint64_t pm[NR_PAGES];
	int b, i, checks = 0, present_wp = 0, bad_pm = 0;
	int writes = 0, silent = 0, neighbours_mapped = 0, triggers_mapped = 0;
	uint64_t t0 = now_ns();

	for (i = 0; i < NR_PAGES; i++)
		read_page(i);
	zap(0, NR_PAGES);
	for (b = 0; b < NR_BLOCKS; b++)
		writeprotect(b * BLOCK + BLOCK / 2, BLOCK / 2, true, false);
	for (b = 0; b < NR_BLOCKS; b++)
		read_page(b * BLOCK + BLOCK / 2 - 1);

	pagemap_read(0, NR_PAGES, pm);
	for (i = 0; i < NR_PAGES; i++) {
		int off = i % BLOCK;

		if (off >= BLOCK / 2) {
			checks++;
			if (!check_protected(i, pm[i], "fault-around"))
				bad_pm++;
			else if (pm[i] & PM_PRESENT)
				present_wp++;
		} else if (off == BLOCK / 2 - 1) {
			triggers_mapped += !!(pm[i] & PM_PRESENT);
		} else {
			neighbours_mapped += !!(pm[i] & PM_PRESENT);
		}
	}

	for (i = 0; i < NR_PAGES; i++) {
		if (i % BLOCK < BLOCK / 2)
			continue;
		writes++;
		if (!probe_write(i, 0x1000000ULL + i, "fault-around"))
			silent++;
	}

	ktap_diag("fault-around: %d trigger reads (%d mapped), %d protected pages checked, %d present with uffd-wp, %d unprotected neighbours mapped by fault-around",
		  NR_BLOCKS, triggers_mapped, checks, present_wp,
		  neighbours_mapped);
	ktap_diag("fault-around: %d writes to protected pages, %d without a WP message (%.2f s)",
		  writes, silent, secs_since(t0));
	ktap_result(bad_pm == 0,
		    "fault-around: no write-protected page mapped without uffd-wp after neighbour read faults (%d bad of %d)",
		    bad_pm, checks);
	ktap_result(silent == 0 && writes > 0,
		    "fault-around: every write to a write-protected page raised a WP fault (%d silent of %d)",
		    silent, writes);
}

/* Phase 2: protect, punch, (refill), read a neighbour, read the hole, write. */
static void phase_punch(void)
{
	int i, punched = 0, marker_lost = 0, checks = 0, bad_pm = 0;
	int writes = 0, silent = 0, refilled = 0;
	uint64_t t0 = now_ns();

	for (i = 1; i < NR_PAGES - 1; i++) {
		int nb = (i % BLOCK) ? i - 1 : i + 1;
		bool do_refill = i & 1;
		uint64_t pm;

		writeprotect(i, 1, true, false);
		punch(i);
		punched++;
		pm = pagemap_one(i);
		if (!check_protected(i, pm, "punch (after PUNCH_HOLE)"))
			marker_lost++;

		if (do_refill) {
			refill(i, 0x2000000ULL + i);
			refilled++;
		}
		zap(nb, 1);
		read_page(nb);
		checks++;
		if (!check_protected(i, pagemap_one(i),
				     do_refill ? "punch (refilled, after neighbour read)" :
						 "punch (hole, after neighbour read)"))
			bad_pm++;

		read_page(i);
		checks++;
		if (!check_protected(i, pagemap_one(i), "punch (after reading the hole)"))
			bad_pm++;

		writes++;
		if (!probe_write(i, 0x3000000ULL + i, "punch"))
			silent++;
	}

	ktap_diag("punch: %d pages punched (%d refilled by pwrite before the neighbour read), %d markers lost, %d pagemap checks after reads, %d bad",
		  punched, refilled, marker_lost, checks, bad_pm);
	ktap_diag("punch: %d writes, %d without a WP message (%.2f s)", writes,
		  silent, secs_since(t0));
	ktap_result(marker_lost == 0,
		    "punch: uffd-wp marker (pagemap bit 57) kept by PUNCH_HOLE (%d lost of %d)",
		    marker_lost, punched);
	ktap_result(bad_pm == 0,
		    "punch: punched page not mapped without uffd-wp by a neighbour's or its own read fault (%d bad of %d)",
		    bad_pm, checks);
	ktap_result(silent == 0 && writes > 0,
		    "punch: every write to a punched write-protected page raised a WP fault (%d silent of %d)",
		    silent, writes);
}

/*
 * Stress.  Block offsets 0..3 and 12..15 are "reader pages": never
 * write-protected, read and punched freely.  Offsets 4..11 are "probe
 * pages": only the prober writes, punches or refills them.  Keeping
 * regular faults and punches of a protected page apart matters: a page
 * that a regular fault maps between shmem_fallocate()'s
 * unmap_mapping_range() and the truncation is zapped again by
 * unmap_mapping_folio() with ZAP_FLAG_DROP_MARKER, which is not the bug
 * this test is about.  Fault-around from the reader pages is the only
 * way a correct-looking kernel could map a probe page behind our back.
 */
static inline int reader_off(uint64_t r)
{
	int k = r % 8;

	return k < 4 ? k : k + 8;
}

static void *reader_main(void *arg)
{
	uint64_t seed = now_ns() ^ ((uintptr_t)arg * 0x9e3779b97f4a7c15ULL);
	unsigned long reads = 0;

	seed |= 1;
	while (!__atomic_load_n(&stress_stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = rnd_next(&seed);
		int b = (r & 3) ? __atomic_load_n(&target_block, __ATOMIC_RELAXED)
				: (int)((r >> 2) % NR_BLOCKS);
		int idx = b * BLOCK + reader_off(r >> 12);

		zap(idx, 1);	/* make the read a fault */
		read_page(idx);
		reads++;
	}
	__atomic_add_fetch(&stress_reads, reads, __ATOMIC_RELAXED);
	return NULL;
}

static void *puncher_main(void *arg)
{
	uint64_t seed = now_ns() ^ 0x5bd1e9955bd1e995ULL;
	unsigned long punches = 0, zaps = 0;

	(void)arg;
	seed |= 1;
	while (!__atomic_load_n(&stress_stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = rnd_next(&seed);
		int b = (r & 1) ? __atomic_load_n(&target_block, __ATOMIC_RELAXED)
				: (int)((r >> 1) % NR_BLOCKS);
		int idx = b * BLOCK + reader_off(r >> 8);

		punch(idx);
		refill(idx, r);
		punches++;
		/* Zapping probe pages is allowed: it only turns PTEs into markers. */
		if (r & (1ULL << 20)) {
			zap(b * BLOCK, BLOCK);
			zaps++;
		}
	}
	__atomic_add_fetch(&stress_punches, punches, __ATOMIC_RELAXED);
	__atomic_add_fetch(&stress_zaps, zaps, __ATOMIC_RELAXED);
	return NULL;
}

static void phase_stress(void)
{
	pthread_t readers[NR_READERS], puncher;
	uint64_t seed = now_ns() | 1, t0 = now_ns(), budget, end;
	unsigned long probes = 0, rounds = 0, checks = 0, bad_pm = 0;
	unsigned long silent = 0, punched = 0, refilled = 0, present_wp = 0;
	int i;

	budget = STRESS_NS;
	if (t0 - t_start > LATE_NS)
		budget = STRESS_MIN_NS;
	end = t0 + budget;

	__atomic_store_n(&target_block, 0, __ATOMIC_RELAXED);
	for (i = 0; i < NR_READERS; i++)
		if (pthread_create(&readers[i], NULL, reader_main,
				   (void *)(uintptr_t)(i + 1))) {
			errno = EAGAIN;
			ktap_bail("pthread_create reader");
		}
	if (pthread_create(&puncher, NULL, puncher_main, NULL)) {
		errno = EAGAIN;
		ktap_bail("pthread_create puncher");
	}

	while (now_ns() < end) {
		uint64_t r = rnd_next(&seed);
		int b = r % NR_BLOCKS;
		int len = 1 + (r >> 8) % 4;
		int first = b * BLOCK + 4 + (int)((r >> 12) % (8 - len + 1));
		uint64_t pm[4];
		struct timespec pause = { 0, 100000 };

		__atomic_store_n(&target_block, b, __ATOMIC_RELAXED);
		writeprotect(first, len, true, false);
		for (i = 0; i < len; i++) {
			uint64_t ri = rnd_next(&seed);

			if (ri & 1) {
				punch(first + i);
				punched++;
			}
			if (ri & 2) {
				refill(first + i, ri);
				refilled++;
			}
		}
		if (r & (1ULL << 20))
			zap(b * BLOCK, BLOCK);
		/* Let the readers fault around this block for a moment. */
		nanosleep(&pause, NULL);

		pagemap_read(first, len, pm);
		for (i = 0; i < len; i++) {
			checks++;
			if (!check_protected(first + i, pm[i], "stress"))
				bad_pm++;
			else if (pm[i] & PM_PRESENT)
				present_wp++;
		}
		for (i = 0; i < len; i++) {
			probes++;
			if (!probe_write(first + i, r + i, "stress"))
				silent++;
		}
		rounds++;
	}

	__atomic_store_n(&stress_stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < NR_READERS; i++)
		pthread_join(readers[i], NULL);
	pthread_join(puncher, NULL);

	ktap_diag("stress: %.2f s, %lu rounds, %lu probe pages (%lu punched, %lu refilled), %lu reader faults, %lu reader-page punches, %lu block zaps",
		  secs_since(t0), rounds, probes, punched, refilled,
		  __atomic_load_n(&stress_reads, __ATOMIC_RELAXED),
		  __atomic_load_n(&stress_punches, __ATOMIC_RELAXED),
		  __atomic_load_n(&stress_zaps, __ATOMIC_RELAXED));
	ktap_diag("stress: %lu pagemap checks (%lu present with uffd-wp), %lu bad; %lu writes, %lu without a WP message",
		  checks, present_wp, bad_pm, probes, silent);
	ktap_result(bad_pm == 0 && checks > 0,
		    "stress: no write-protected page present or unmarked without uffd-wp (%lu bad of %lu)",
		    bad_pm, checks);
	ktap_result(silent == 0 && probes > 0,
		    "stress: every write to a write-protected page raised a WP fault (%lu silent of %lu)",
		    silent, probes);
}

int main(void)
{
	struct sigaction sa;
	pthread_t handler;
	uint64_t features;
	unsigned long unexpected, herr;
	int i;

	t_start = now_ns();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alarm_handler;
	sigaction(SIGALRM, &sa, NULL);
	alarm(ALARM_SECONDS);

	features = uffd_probe_features();
	if (!(features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		ktap_skip_all("kernel lacks UFFD_FEATURE_WP_HUGETLBFS_SHMEM (uffd-wp on shmem, CONFIG_PTE_MARKER_UFFD_WP)");

	ktap_plan(8);
	ktap_diag("uffd features 0x%llx", (unsigned long long)features);
	show_shmem_thp();

	page_size = sysconf(_SC_PAGESIZE);
	if (page_size * BLOCK != 65536)
		ktap_diag("page size %zu: blocks of %d pages are %zu bytes, not the default fault-around window",
			  page_size, BLOCK, page_size * BLOCK);

	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		ktap_bail("open /proc/self/pagemap");

	memfd = memfd_create("uffd_wp_punch", MFD_CLOEXEC);
	if (memfd < 0)
		ktap_need_failed("memfd_create(2) (CONFIG_MEMFD_CREATE)", "memfd_create");
	if (ftruncate(memfd, NR_PAGES * page_size))
		ktap_bail("ftruncate memfd");

	area = map_aligned();
	/* Fill through the mapping (small pages), before registering. */
	for (i = 0; i < NR_PAGES; i++)
		memset(page_addr(i), 0x5a ^ (i & 0xff), page_size);

	control_fault_around();
	setup_uffd();

	if (pthread_create(&handler, NULL, handler_main, NULL)) {
		errno = EAGAIN;
		ktap_bail("pthread_create handler");
	}

	phase_faultaround();
	phase_punch();
	phase_stress();

	__atomic_store_n(&handler_stop, 1, __ATOMIC_RELEASE);
	pthread_join(handler, NULL);

	unexpected = __atomic_load_n(&msgs_unexpected, __ATOMIC_RELAXED);
	herr = __atomic_load_n(&handler_errors, __ATOMIC_RELAXED);
	ktap_diag("handler: %lu WP messages, %lu unexpected messages, %lu errors (last errno %d)",
		  __atomic_load_n(&msgs_wp, __ATOMIC_RELAXED), unexpected, herr,
		  __atomic_load_n(&handler_errno, __ATOMIC_RELAXED));
	ktap_result(unexpected == 0 && herr == 0,
		    "handler: only WP faults on registered pages, each resolved by UFFDIO_WRITEPROTECT");
	ktap_diag("probes in total: %lu pagemap checks of write-protected pages, %lu writes to write-protected pages; %d failures",
		  total_checks, total_writes, fail_diags);
	ktap_diag("total runtime %.2f s", secs_since(t_start));

	close(uffd);
	munmap(area, NR_PAGES * page_size);
	close(memfd);
	close(pagemap_fd);
	ktap_finish();
}
