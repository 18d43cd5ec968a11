// SPDX-License-Identifier: GPL-2.0
/*
 * uffd_move_swap_pmd - UFFDIO_MOVE of anonymous THPs while they migrate
 * between two NUMA nodes, so that the source PMD is at times a migration
 * (swap-type) entry.
 *
 * UFFDIO_MOVE ("userfaultfd: UFFDIO_MOVE uABI", 6.8) moves anonymous pages
 * from a private anonymous mapping into a userfaultfd-registered one.  In
 * review of its first version (UFFDIO_REMAP) Jann Horn pointed out that
 * pmd_trans_huge_lock() also succeeds for swap and migration PMDs, which the
 * move code asserted could not happen (BUG_ON(!pmd_trans_huge())).  The
 * merged code is meant to wait for a migration entry and retry, so a move of
 * a populated source always completes (0, .move == len).
 *
 * Debian's 6.12 still fails that contract: on x86-64 from 6.8 until the
 * devmap checks were removed in 6.17, move_pages() tests pmd_devmap() on the
 * locked source PMD without checking that it is present; bit 57 lies inside
 * a swap entry's inverted offset, so every PMD migration entry looks like
 * devmap and UFFDIO_MOVE fails with a spurious ENOENT ("source hole") while
 * the THP migrates.  The same code was fixed again in 6.17 by "userfaultfd:
 * fix a crash in UFFDIO_MOVE when PMD is a migration entry".
 *
 * Unit checks of the move contract: data moved and source emptied; ENOENT on
 * a source hole, 0 with UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES; EEXIST on a
 * populated destination; EINVAL on an unknown mode bit; EBUSY while the
 * source page is COW-shared with a forked child, 0 once the child exited and
 * the parent wrote the page.
 *
 * The race: a migrator thread bounces the pages between the two nodes with
 * move_pages(2) while the main thread ping-pongs tagged data between the two
 * halves of registered regions with UFFDIO_MOVE: half of the regions in
 * whole aligned PMD-size chunks (huge-PMD path), half in smaller pieces
 * (split path).  Every word is checked after every move.  Any ENOENT from a
 * populated source fails, as does a race in which no migration was seen.
 *
 * Expected: 6.1 skips (no UFFD_FEATURE_MOVE), Debian 6.12 fails (spurious
 * ENOENT while THPs migrate), 7.x passes.  The race runs for RACE_SECONDS,
 * extended up to RACE_MAX_SECONDS until enough moves and migrations happened
 * (a slow host must not turn a real failure into a pass).
 *
 * @timeout: 120
 * @needs: numa-nodes=2 memory=2G thp=always
 * @needs: config=USERFAULTFD,TRANSPARENT_HUGEPAGE,MIGRATION,NUMA
 * @covers: mm/userfaultfd.c mm/huge_memory.c mm/migrate.c fs/userfaultfd.c
 * @covers: include/linux/userfaultfd_k.h include/linux/huge_mm.h include/linux/swapops.h
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "uffd_compat.h"
#include "uffd_probe.h"

/* Not in ktap.h/uffd_compat.h; libnuma is not used. */
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE		(1 << 1)
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE		14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE		15
#endif
#ifndef UFFD_FEATURE_SIGBUS
#define UFFD_FEATURE_SIGBUS	(1 << 7)
#endif
#define PM_SWAP_BIT		62
#define PM_PFN_MASK		((1ULL << 55) - 1)
#define KPF_THP			22

#define RACE_SECONDS		15	/* at least this long ... */
#define RACE_MAX_SECONDS	60	/* ... and longer on a slow or loaded host, */
#define RACE_MIN_IOCTLS		600	/* until this much racing work was done */
#define RACE_MIN_PASSES		40	/* (move ioctls, move_pages passes) */
#define ALARM_SECONDS		100
#define PIECE_RETRY_SECONDS	10	/* one stuck move gives up after this */
#define NR_REGIONS		4	/* even ids: huge-PMD path, odd: split */
#define CHUNKS_PER_HALF		2
#define HUGE_SWEEPS_PER_LIFE	6
#define SPLIT_SWEEPS_PER_LIFE	2
#define MAX_REPORTS		3	/* detailed diagnostics per kind */
#define NR_CHECKS		11

enum { PATH_HUGE, PATH_SPLIT, NR_PATHS };
static const char *const path_name[NR_PATHS] = { "huge-PMD", "split" };

static size_t page_size, hpage_size, half_size;
static int uffd = -1, pagemap_fd = -1, kpageflags_fd = -1;
static int node_id[2];
static uint64_t *pm_buf;

struct region {
	int id;
	bool huge;
	bool fresh;		/* must be (re)created before the next sweep */
	char *base;		/* two halves of half_size, hpage aligned */
	unsigned int gen;
	int where;		/* half holding the data: 0 or 1 */
	unsigned int sweeps;
	unsigned int lenidx;
};

static struct region regions[NR_REGIONS];

struct race_stats {
	unsigned long ioctls;
	unsigned long pieces[NR_PATHS];
	unsigned long bytes[NR_PATHS];
	unsigned long pages_checked[NR_PATHS];
	unsigned long bad[NR_PATHS];	/* data/contract errors per path */
	unsigned long partial;		/* EAGAIN with .move > 0 */
	unsigned long eagain;		/* EAGAIN without progress */
	unsigned long enoent;
	unsigned long spurious_enoent;
	unsigned long ebusy[NR_PATHS];	/* transient, retried */
	unsigned long huge_kept_thp;
	unsigned long huge_not_thp;
	unsigned long creations;
	unsigned long chunks_created;
	unsigned long thp_created;
	unsigned long sweeps;
	int reports;
	int enoent_reports;
};

static struct race_stats rs;

struct migrator_stats {
	unsigned long passes;
	unsigned long calls_failed;
	unsigned long migrated;		/* status showed the other node */
	unsigned long migrated_huge_heads;
	int last_errno;
};

static struct migrator_stats ms;
static int stop_race;
static uint64_t race_deadline;

static void write_str(const char *s)
{
	ssize_t r = write(STDOUT_FILENO, s, strlen(s));

	(void)r;
}

static void on_alarm(int sig)
{
	(void)sig;
	write_str("Bail out! timed out: a UFFDIO_MOVE or move_pages(2) did not return\n");
	_exit(KSFT_FAIL);
}

static void on_sigbus(int sig)
{
	(void)sig;
	write_str("Bail out! SIGBUS: touched a userfaultfd hole, data missing after UFFDIO_MOVE\n");
	_exit(KSFT_FAIL);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void short_sleep(void)
{
	struct timespec ts = { 0, 100 * 1000 };

	nanosleep(&ts, NULL);
}

static bool race_stopped(void)
{
	return __atomic_load_n(&stop_race, __ATOMIC_RELAXED);
}

static long sys_move_pages(unsigned long count, void **pages, const int *nodes,
			   int *status, int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Parse a node list such as "0-1" or "0,2"; remember the first two ids. */
static int online_nodes(void)
{
	char buf[256], *p;
	int count = 0;

	if (read_file("/sys/devices/system/node/online", buf, sizeof(buf)))
		return 0;
	p = buf;
	while (*p && *p != '\n') {
		char *end;
		long lo = strtol(p, &end, 10), hi;

		if (end == p)
			break;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			p = end;
		}
		for (long n = lo; n <= hi; n++) {
			if (count < 2)
				node_id[count] = (int)n;
			count++;
		}
		if (*p == ',')
			p++;
	}
	return count;
}

static unsigned long long vmstat(const char *name)
{
	char line[256];
	size_t len = strlen(name);
	unsigned long long v = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, len) && line[len] == ' ') {
			v = strtoull(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* pagemap entries of npages pages starting at addr */
static int pagemap_get(const void *addr, size_t npages, uint64_t *out)
{
	off_t pos = (off_t)((uintptr_t)addr / page_size * sizeof(uint64_t));
	size_t want = npages * sizeof(uint64_t), got = 0;

	while (got < want) {
		ssize_t n = pread(pagemap_fd, (char *)out + got, want - got,
				  pos + (off_t)got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Present, or a swap/migration entry: the page exists. */
static bool pm_populated(uint64_t e)
{
	return e & ((1ULL << PM_PRESENT_BIT) | (1ULL << PM_SWAP_BIT));
}

static uint64_t pagemap_one(const void *addr)
{
	uint64_t e = 0;

	if (pagemap_get(addr, 1, &e))
		return 0;
	return e;
}

/* 1: the page at addr is part of a THP, 0: not, -1: cannot tell. */
static int is_thp(const void *addr)
{
	uint64_t e = pagemap_one(addr), flags;

	if (kpageflags_fd < 0 || !(e & (1ULL << PM_PRESENT_BIT)))
		return -1;
	if (!(e & PM_PFN_MASK))
		return -1;	/* PFNs hidden: not root */
	if (pread(kpageflags_fd, &flags, sizeof(flags),
		  (off_t)((e & PM_PFN_MASK) * sizeof(flags))) != sizeof(flags))
		return -1;
	return !!(flags & (1ULL << KPF_THP));
}

static void *map_aligned(size_t size, size_t align, int prot)
{
	char *p = mmap(NULL, size + align, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	if ((uintptr_t)p + align > a)
		munmap((char *)a + size, (uintptr_t)p + align - a);
	return (void *)a;
}

static uint64_t register_range(void *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		ktap_bail("UFFDIO_REGISTER %p+0x%zx", addr, len);
	return reg.ioctls;
}

static int try_move(void *dst, void *src, size_t len, uint64_t mode,
		    struct uffdio_move *mv)
{
	memset(mv, 0, sizeof(*mv));
	mv->dst = (uintptr_t)dst;
	mv->src = (uintptr_t)src;
	mv->len = len;
	mv->mode = mode;
	mv->move = 0x5a5a5a5a;	/* the kernel overwrites it */
	return ioctl(uffd, UFFDIO_MOVE, mv) ? errno : 0;
}

/* ---- probes ---------------------------------------------------------- */

static void probe_thp(void)
{
	char buf[256];
	char *p;
	int thp;

	if (read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf,
		      sizeof(buf)))
		ktap_skip_all("THP not available (no /sys/kernel/mm/transparent_hugepage)");
	if (strstr(buf, "[never]"))
		ktap_skip_all("THP disabled (transparent_hugepage/enabled is never)");
	hpage_size = 2UL << 20;
	if (!read_file("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
		       buf, sizeof(buf)))
		hpage_size = strtoul(buf, NULL, 10);
	if (hpage_size < page_size || (hpage_size & (hpage_size - 1)))
		ktap_skip_all("THP PMD size unusable: %zu", hpage_size);

	p = map_aligned(hpage_size, hpage_size, PROT_READ | PROT_WRITE);
	if (!p)
		ktap_bail("mmap THP probe");
	madvise(p, hpage_size, MADV_HUGEPAGE);
	memset(p, 1, hpage_size);
	thp = is_thp(p);
	munmap(p, hpage_size);
	if (thp == 0)
		ktap_skip_all("THP unavailable: a MADV_HUGEPAGE fault got no huge page");
	if (thp < 0)
		ktap_diag("cannot read /proc/kpageflags: THP use not verified");
}

static void probe_move_pages(void)
{
	void *page = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status = -1;

	if (page == MAP_FAILED)
		ktap_bail("mmap");
	*(volatile char *)page = 1;
	if (sys_move_pages(1, &page, NULL, &status, 0) < 0)
		ktap_need_failed("move_pages(2) (CONFIG_MIGRATION, CONFIG_NUMA)",
				 "move_pages query");
	munmap(page, page_size);
}

/* ---- unit checks ----------------------------------------------------- */

static uint64_t unit_tag(size_t page, size_t word)
{
	return 0x5eedULL << 48 | (uint64_t)page << 24 | word;
}

static void unit_fill(char *p, size_t page)
{
	uint64_t *w = (uint64_t *)p;

	for (size_t i = 0; i < page_size / 8; i++)
		w[i] = unit_tag(page, i);
}

/* Data present (checked in pagemap first) and intact. */
static bool unit_intact(const char *p, size_t page)
{
	const uint64_t *w = (const uint64_t *)p;

	if (!(pagemap_one(p) & (1ULL << PM_PRESENT_BIT)))
		return false;
	for (size_t i = 0; i < page_size / 8; i++)
		if (w[i] != unit_tag(page, i))
			return false;
	return true;
}

static void check_errno(int err, int want, const struct uffdio_move *mv,
			bool want_move_field, const char *what)
{
	bool ok = err == want;

	if (ok && want_move_field && mv->move != -want) {
		ktap_diag("%s: .move is %lld, expected %d", what,
			  (long long)mv->move, -want);
		ok = false;
	}
	if (err != want)
		ktap_diag("%s: got %s, expected %s", what,
			  err ? strerror(err) : "success", strerror(want));
	ktap_result(ok, "%s", what);
}

static void unit_checks(void)
{
	const size_t npages = 16;
	char *src, *dst, *fresh;
	struct uffdio_move mv;
	uint64_t ioctls;
	int err, pipefd[2];
	pid_t child;
	bool ok;

	src = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fresh = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED || fresh == MAP_FAILED)
		ktap_bail("mmap");
	madvise(src, npages * page_size, MADV_NOHUGEPAGE);
	madvise(dst, npages * page_size, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < npages; i += 2)	/* odd pages stay holes */
		unit_fill(src + i * page_size, i);
	/* A page of dst populated before registering (no fault blocks). */
	unit_fill(dst + 8 * page_size, 8);
	ioctls = register_range(dst, npages * page_size);
	if (!(ioctls & (1ULL << _UFFDIO_MOVE)))
		ktap_diag("UFFDIO_REGISTER did not list UFFDIO_MOVE (ioctls 0x%llx)",
			  (unsigned long long)ioctls);

	/* 1: a populated page moves with its data; the source is left empty */
	err = try_move(dst, src, page_size, 0, &mv);
	ok = !err && mv.move == (int64_t)page_size && unit_intact(dst, 0) &&
	     !pm_populated(pagemap_one(src));
	if (!ok)
		ktap_diag("move of a populated page: %s, .move %lld, dst %s, src pagemap 0x%llx",
			  err ? strerror(err) : "success", (long long)mv.move,
			  unit_intact(dst, 0) ? "intact" : "wrong/missing",
			  (unsigned long long)pagemap_one(src));
	ktap_result(ok, "UFFDIO_MOVE moves a populated page with its data and empties the source");

	/* 2: holes: one next to populated pages, one never-touched mapping */
	err = try_move(dst + 1 * page_size, src + 1 * page_size, page_size, 0,
		       &mv);
	if (err == ENOENT && mv.move == -ENOENT)
		err = try_move(dst + 2 * page_size, fresh, 2 * page_size, 0,
			       &mv);
	check_errno(err, ENOENT, &mv, true,
		    "UFFDIO_MOVE from a source hole fails with ENOENT");

	/* 3: the same holes are skipped with ALLOW_SRC_HOLES */
	err = try_move(dst + 1 * page_size, src + 1 * page_size, page_size,
		       UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, &mv);
	ok = !err && mv.move == (int64_t)page_size;
	if (ok) {
		err = try_move(dst + 2 * page_size, fresh, 2 * page_size,
			       UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, &mv);
		ok = !err && mv.move == (int64_t)(2 * page_size);
	}
	if (ok && (pm_populated(pagemap_one(dst + page_size)) ||
		   pm_populated(pagemap_one(dst + 2 * page_size)))) {
		ktap_diag("ALLOW_SRC_HOLES populated the destination of a hole");
		ok = false;
	}
	if (!ok && err)
		ktap_diag("ALLOW_SRC_HOLES on a hole: %s, .move %lld",
			  strerror(err), (long long)mv.move);
	ktap_result(ok, "UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES on a source hole succeeds");

	/* 4: populated destination */
	err = try_move(dst + 8 * page_size, src + 2 * page_size, page_size, 0,
		       &mv);
	if (err == EEXIST && !unit_intact(src + 2 * page_size, 2)) {
		ktap_diag("EEXIST, but the source page lost its data");
		err = -1;
	}
	check_errno(err, EEXIST, &mv, true,
		    "UFFDIO_MOVE onto a populated destination fails with EEXIST");

	/* 5: unknown mode bit */
	err = try_move(dst + 3 * page_size, src + 2 * page_size, page_size,
		       1ULL << 63, &mv);
	if (err == EINVAL && (pm_populated(pagemap_one(dst + 3 * page_size)) ||
			      !unit_intact(src + 2 * page_size, 2))) {
		ktap_diag("EINVAL, but the page was moved anyway");
		err = -1;
	}
	check_errno(err, EINVAL, &mv, false,
		    "UFFDIO_MOVE with an unknown mode bit fails with EINVAL");

	/* 6, 7: COW-shared with a child */
	if (pipe(pipefd))
		ktap_bail("pipe");
	child = fork();
	if (child < 0)
		ktap_bail("fork");
	if (!child) {
		char c;

		alarm(60);
		close(pipefd[1]);
		if (read(pipefd[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(pipefd[0]);
	err = try_move(dst + 4 * page_size, src + 4 * page_size, page_size, 0,
		       &mv);
	if (err == EBUSY && !unit_intact(src + 4 * page_size, 4)) {
		ktap_diag("EBUSY, but the source page lost its data");
		err = -1;
	}
	check_errno(err, EBUSY, &mv, true,
		    "UFFDIO_MOVE of a page COW-shared with a child fails with EBUSY");

	close(pipefd[1]);
	if (waitpid(child, NULL, 0) != child)
		ktap_bail("waitpid");
	/* The write fault reuses the now-exclusive page. */
	((volatile uint64_t *)(src + 4 * page_size))[0] = unit_tag(4, 0);
	err = try_move(dst + 4 * page_size, src + 4 * page_size, page_size, 0,
		       &mv);
	ok = !err && mv.move == (int64_t)page_size &&
	     unit_intact(dst + 4 * page_size, 4);
	if (!ok)
		ktap_diag("after the child exited: %s, .move %lld, dst %s",
			  err ? strerror(err) : "success", (long long)mv.move,
			  unit_intact(dst + 4 * page_size, 4) ? "intact" : "wrong/missing");
	ktap_result(ok, "UFFDIO_MOVE succeeds once the child exited and the parent wrote the page");

	munmap(src, npages * page_size);
	munmap(dst, npages * page_size);
	munmap(fresh, 2 * page_size);
}

/* ---- the race -------------------------------------------------------- */

static uint64_t tag_of(const struct region *r, size_t off)
{
	return 0xa5ULL << 56 | (uint64_t)r->id << 48 |
	       (uint64_t)(r->gen & 0xffff) << 32 | (uint64_t)(off / 8);
}

static void region_create(struct region *r)
{
	uint64_t ioctls, *w;
	void *p;

	p = mmap(r->base, 2 * half_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p != r->base)
		ktap_bail("mmap region %d", r->id);
	madvise(r->base, 2 * half_size, MADV_HUGEPAGE);
	r->gen++;
	w = (uint64_t *)r->base;
	for (size_t off = 0; off < half_size; off += 8)
		w[off / 8] = tag_of(r, off);
	for (size_t off = 0; off < half_size; off += hpage_size) {
		rs.chunks_created++;
		if (is_thp(r->base + off) == 1)
			rs.thp_created++;
	}
	/* Populated before registering: MISSING mode never blocks us. */
	ioctls = register_range(r->base, 2 * half_size);
	if (!(ioctls & (1ULL << _UFFDIO_MOVE)))
		ktap_bail("UFFDIO_REGISTER does not offer UFFDIO_MOVE (ioctls 0x%llx)",
			  (unsigned long long)ioctls);
	r->where = 0;
	r->sweeps = 0;
	r->fresh = false;
	rs.creations++;
}

static void report(int path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(int path, const char *fmt, ...)
{
	va_list ap;

	rs.bad[path]++;
	if (rs.reports++ >= MAX_REPORTS * 4)
		return;
	va_start(ap, fmt);
	ktap_vdiag(fmt, ap);
	va_end(ap);
}

/*
 * After a move of [off, off + len) of the region's data into the half at
 * dst: the destination is populated with the right tags, the source empty.
 */
static int check_piece(struct region *r, int path, char *dst, char *src,
		       size_t off, size_t len)
{
	size_t npages = len / page_size;
	const uint64_t *w;

	if (pagemap_get(dst + off, npages, pm_buf))
		ktap_bail("read /proc/self/pagemap");
	for (size_t i = 0; i < npages; i++) {
		if (!pm_populated(pm_buf[i])) {
			report(path, "region %d (%s path): destination %p empty after a successful move of offset 0x%zx",
			       r->id, path_name[path], dst + off + i * page_size,
			       off + i * page_size);
			return -1;
		}
	}
	w = (const uint64_t *)(dst + off);
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t want = tag_of(r, off + i * 8);

		if (w[i] != want) {
			report(path, "region %d (%s path): word at %p (offset 0x%zx) is 0x%016llx, expected 0x%016llx",
			       r->id, path_name[path], &w[i], off + i * 8,
			       (unsigned long long)w[i],
			       (unsigned long long)want);
			return -1;
		}
	}
	rs.pages_checked[path] += npages;

	if (pagemap_get(src + off, npages, pm_buf))
		ktap_bail("read /proc/self/pagemap");
	for (size_t i = 0; i < npages; i++) {
		if (pm_populated(pm_buf[i])) {
			report(path, "region %d (%s path): source %p still populated after the move (pagemap 0x%llx)",
			       r->id, path_name[path], src + off + i * page_size,
			       (unsigned long long)pm_buf[i]);
			return -1;
		}
	}
	return 0;
}

/* A source hole reported at src: spurious if the page is really there. */
static int classify_enoent(struct region *r, int path, char *src, size_t off)
{
	uint64_t e = pagemap_one(src);

	rs.enoent++;
	if (pm_populated(e)) {
		rs.spurious_enoent++;
		if (rs.enoent_reports++ < MAX_REPORTS)
			ktap_diag("spurious ENOENT: UFFDIO_MOVE reported a source hole at %p (region %d, %s path, offset 0x%zx, %sPMD-aligned) while the source page is %s (pagemap 0x%llx)",
				  src, r->id, path_name[path], off,
				  ((uintptr_t)src & (hpage_size - 1)) ? "not " : "",
				  (e & (1ULL << PM_PRESENT_BIT)) ?
				  "present" : "a swap/migration entry",
				  (unsigned long long)e);
		return 0;	/* retry: the data is still there */
	}
	report(path, "region %d (%s path): ENOENT and the source %p is really empty: data lost",
	       r->id, path_name[path], src);
	return -1;
}

/*
 * Move [off, off + len) from src to dst, continuing partial moves and
 * retrying transient failures for a bounded time.
 */
static int move_piece(struct region *r, int path, char *dst, char *src,
		      size_t off, size_t len)
{
	uint64_t give_up = now_ns() + PIECE_RETRY_SECONDS * 1000000000ULL;
	size_t done = 0;

	while (done < len) {
		struct uffdio_move mv;
		int err;

		rs.ioctls++;
		err = try_move(dst + off + done, src + off + done, len - done,
			       0, &mv);
		if (!err) {
			if (mv.move != (int64_t)(len - done)) {
				report(path, "region %d (%s path): UFFDIO_MOVE returned 0 but .move %lld for len 0x%zx",
				       r->id, path_name[path],
				       (long long)mv.move, len - done);
				return -1;
			}
			done = len;
			break;
		}
		if (err == EAGAIN && mv.move > 0) {
			if (mv.move > (int64_t)(len - done) ||
			    mv.move % (int64_t)page_size) {
				report(path, "region %d (%s path): EAGAIN with bogus .move %lld of 0x%zx",
				       r->id, path_name[path],
				       (long long)mv.move, len - done);
				return -1;
			}
			rs.partial++;
			done += (size_t)mv.move;
			continue;
		}
		if (err == ENOENT) {
			if (classify_enoent(r, path, src + off + done,
					    off + done))
				return -1;
		} else if (err == EAGAIN) {
			rs.eagain++;
		} else if (err == EBUSY) {
			rs.ebusy[path]++;
		} else {
			report(path, "region %d (%s path): UFFDIO_MOVE of 0x%zx at offset 0x%zx failed: %s (.move %lld)",
			       r->id, path_name[path], len - done, off + done,
			       strerror(err), (long long)mv.move);
			return -1;
		}
		if (now_ns() > give_up) {
			report(path, "region %d (%s path): UFFDIO_MOVE at offset 0x%zx still failing (%s) after %d s",
			       r->id, path_name[path], off + done,
			       strerror(err), PIECE_RETRY_SECONDS);
			return -1;
		}
		short_sleep();
	}
	rs.pieces[path]++;
	rs.bytes[path] += len;
	return 0;
}

/* Lengths (pages) for the split path: all below a PMD, odd alignments. */
static const unsigned int split_pages[] = { 1, 3, 16, 33, 128, 255, 7, 511, 64 };

/* Move all of a region's data to its other half. 1: stopped, -1: failed. */
static int sweep(struct region *r)
{
	int path = r->huge ? PATH_HUGE : PATH_SPLIT;
	char *src = r->base + (size_t)r->where * half_size;
	char *dst = r->base + (size_t)(1 - r->where) * half_size;
	size_t off = 0, len;

	while (off < half_size) {
		if (race_stopped() || now_ns() >= race_deadline)
			return 1;
		if (r->huge) {
			/* whole aligned chunks: one at a time or all at once */
			len = (r->sweeps & 1) ? half_size - off : hpage_size;
		} else {
			len = split_pages[r->lenidx++ %
					  (sizeof(split_pages) / sizeof(split_pages[0]))] *
			      page_size;
			if (len > half_size - off)
				len = half_size - off;
		}
		if (move_piece(r, path, dst, src, off, len))
			return -1;
		if (check_piece(r, path, dst, src, off, len))
			return -1;
		if (r->huge) {
			for (size_t c = off; c < off + len; c += hpage_size) {
				int thp = is_thp(dst + c);

				if (thp == 1)
					rs.huge_kept_thp++;
				else if (thp == 0)
					rs.huge_not_thp++;
			}
		}
		off += len;
	}
	r->where ^= 1;
	r->sweeps++;
	rs.sweeps++;
	return 0;
}

struct mig_addr {
	void *addr;
	bool huge_head;
};

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu >= sysconf(_SC_NPROCESSORS_ONLN))
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *migrator(void *arg)
{
	size_t stride = hpage_size / 8, n = 0, max;
	struct mig_addr *list;
	void **pages;
	int *before, *nodes, *status;

	(void)arg;
	pin_to_cpu(1);
	max = NR_REGIONS * 2 * (half_size / stride);
	list = calloc(max, sizeof(*list));
	pages = calloc(max, sizeof(*pages));
	before = calloc(max, sizeof(*before));
	nodes = calloc(max, sizeof(*nodes));
	status = calloc(max, sizeof(*status));
	if (!list || !pages || !before || !nodes || !status)
		ktap_bail("calloc");

	/* THP heads everywhere; base pages too where the split path runs. */
	for (int i = 0; i < NR_REGIONS; i++) {
		struct region *r = &regions[i];
		size_t step = r->huge ? hpage_size : stride;

		for (size_t off = 0; off < 2 * half_size; off += step) {
			list[n].addr = r->base + off;
			list[n].huge_head = r->huge;
			pages[n] = list[n].addr;
			n++;
		}
	}

	while (!race_stopped()) {
		if (sys_move_pages(n, pages, NULL, before, 0) < 0) {
			ms.calls_failed++;
			ms.last_errno = errno;
			short_sleep();
			continue;
		}
		for (size_t i = 0; i < n; i++)
			nodes[i] = before[i] == node_id[0] ? node_id[1] :
							     node_id[0];
		if (sys_move_pages(n, pages, nodes, status, MPOL_MF_MOVE) < 0) {
			ms.calls_failed++;
			ms.last_errno = errno;
			short_sleep();
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (before[i] < 0 || before[i] == nodes[i] ||
			    status[i] != nodes[i])
				continue;
			ms.migrated++;
			if (list[i].huge_head)
				ms.migrated_huge_heads++;
		}
		ms.passes++;
	}
	free(list);
	free(pages);
	free(before);
	free(nodes);
	free(status);
	return NULL;
}

/*
 * The race is bounded by work, not only by time: under TCG on a loaded host
 * 15 s may hold a few dozen moves, too few to meet a migrating THP.  Stop
 * after RACE_SECONDS once the quota is met (or the bug showed), else keep
 * going up to RACE_MAX_SECONDS.
 */
static bool race_done(uint64_t start)
{
	uint64_t elapsed = now_ns() - start;
	unsigned long passes = __atomic_load_n(&ms.passes, __ATOMIC_RELAXED);

	if (elapsed >= RACE_MAX_SECONDS * 1000000000ULL)
		return true;
	if (elapsed < RACE_SECONDS * 1000000000ULL)
		return false;
	return rs.spurious_enoent ||
	       (rs.ioctls >= RACE_MIN_IOCTLS && passes >= RACE_MIN_PASSES);
}

static void race(void)
{
	unsigned long long pgm0, thps0, thpf0, thpsp0;
	unsigned long long pgm, thps, thpf, thpsp;
	size_t span = 2 * half_size + hpage_size;	/* region + guard gap */
	uint64_t start, deadline;
	bool failed = false;
	pthread_t thread;
	char *area;
	int err;

	pm_buf = calloc(half_size / page_size, sizeof(*pm_buf));
	area = map_aligned(NR_REGIONS * span, hpage_size, PROT_NONE);
	if (!pm_buf || !area)
		ktap_bail("allocate race area");
	for (int i = 0; i < NR_REGIONS; i++) {
		regions[i].id = i;
		regions[i].huge = !(i & 1);
		regions[i].base = area + (size_t)i * span;
		region_create(&regions[i]);
	}

	pgm0 = vmstat("pgmigrate_success");
	thps0 = vmstat("thp_migration_success");
	thpf0 = vmstat("thp_migration_fail");
	thpsp0 = vmstat("thp_migration_split");
	start = now_ns();
	deadline = start + RACE_MAX_SECONDS * 1000000000ULL;
	race_deadline = deadline;

	err = pthread_create(&thread, NULL, migrator, NULL);
	if (err) {
		errno = err;
		ktap_bail("pthread_create");
	}

	while (!failed && !race_done(start)) {
		for (int i = 0; i < NR_REGIONS && !race_done(start); i++) {
			struct region *r = &regions[i];
			unsigned int life = r->huge ? HUGE_SWEEPS_PER_LIFE :
						      SPLIT_SWEEPS_PER_LIFE;
			int ret;

			if (r->fresh || r->sweeps >= life)
				region_create(r);
			ret = sweep(r);
			if (ret < 0) {
				/* start this region over; give up on many errors */
				r->fresh = true;
				if (rs.bad[PATH_HUGE] + rs.bad[PATH_SPLIT] > 20)
					failed = true;
			}
		}
	}
	__atomic_store_n(&stop_race, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);

	pgm = vmstat("pgmigrate_success") - pgm0;
	thps = vmstat("thp_migration_success") - thps0;
	thpf = vmstat("thp_migration_fail") - thpf0;
	thpsp = vmstat("thp_migration_split") - thpsp0;

	ktap_diag("race: %.1f s, nodes %d and %d, %d regions of 2 x %zu KiB (%d huge-PMD path, %d split path)",
		  (now_ns() - start) / 1e9, node_id[0], node_id[1], NR_REGIONS,
		  half_size >> 10, NR_REGIONS / 2, NR_REGIONS / 2);
	ktap_diag("moves: %lu ioctls, %lu huge-PMD pieces (%lu MiB), %lu split pieces (%lu MiB), %lu sweeps, %lu region creations",
		  rs.ioctls, rs.pieces[PATH_HUGE], rs.bytes[PATH_HUGE] >> 20,
		  rs.pieces[PATH_SPLIT], rs.bytes[PATH_SPLIT] >> 20, rs.sweeps,
		  rs.creations);
	ktap_diag("errors seen: ENOENT %lu (spurious %lu), EAGAIN partial %lu, EAGAIN no progress %lu, EBUSY retried %lu huge-PMD / %lu split",
		  rs.enoent, rs.spurious_enoent, rs.partial, rs.eagain,
		  rs.ebusy[PATH_HUGE], rs.ebusy[PATH_SPLIT]);
	ktap_diag("pages checked: huge-PMD path %lu, split path %lu; THP at creation %lu of %lu chunks; after huge moves THP %lu, not THP %lu",
		  rs.pages_checked[PATH_HUGE], rs.pages_checked[PATH_SPLIT],
		  rs.thp_created, rs.chunks_created, rs.huge_kept_thp,
		  rs.huge_not_thp);
	ktap_diag("migrations observed: %lu pages (%lu huge-region chunk heads) in %lu move_pages passes (%lu failed calls%s%s)",
		  ms.migrated, ms.migrated_huge_heads, ms.passes,
		  ms.calls_failed, ms.calls_failed ? ", last: " : "",
		  ms.calls_failed ? strerror(ms.last_errno) : "");
	ktap_diag("vmstat: pgmigrate_success +%llu, thp_migration_success +%llu, thp_migration_fail +%llu, thp_migration_split +%llu",
		  pgm, thps, thpf, thpsp);

	ktap_result(!rs.bad[PATH_HUGE],
		    "race: whole-PMD moves (huge-PMD path) complete with every tag intact");
	ktap_result(!rs.bad[PATH_SPLIT],
		    "race: partial-PMD moves (split path) complete with every tag intact");
	if (rs.spurious_enoent)
		ktap_diag("spurious ENOENT %lu times: UFFDIO_MOVE took a PMD migration entry for a source hole (pmd_devmap() on a non-present PMD)",
			  rs.spurious_enoent);
	ktap_result(!rs.spurious_enoent,
		    "race: no spurious ENOENT (source hole) while the source THP migrated");
	if (!ms.migrated || !ms.migrated_huge_heads)
		ktap_diag("race never happened: move_pages(2) migrated %lu pages, %lu of them THP heads of the huge-PMD regions",
			  ms.migrated, ms.migrated_huge_heads);
	ktap_result(ms.migrated && ms.migrated_huge_heads,
		    "race: THPs migrated between the nodes during the moves");
}

int main(void)
{
	uint64_t features;
	struct uffdio_api api;
	uint64_t t0 = now_ns();

	signal(SIGALRM, on_alarm);
	signal(SIGBUS, on_sigbus);
	alarm(ALARM_SECONDS);
	page_size = (size_t)sysconf(_SC_PAGESIZE);

	features = uffd_probe_features();
	if (!(features & UFFD_FEATURE_MOVE))
		ktap_skip_all("UFFD_FEATURE_MOVE not supported (UFFDIO_MOVE is 6.8+; features 0x%llx)",
			      (unsigned long long)features);
	if (online_nodes() < 2)
		ktap_skip_all("fewer than two NUMA nodes online");
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		ktap_bail("open /proc/self/pagemap");
	kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	probe_thp();
	probe_move_pages();
	half_size = CHUNKS_PER_HALF * hpage_size;

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		ktap_need_failed("userfaultfd (CONFIG_USERFAULTFD)", "userfaultfd()");
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	/* SIGBUS instead of blocking if a hole is ever touched */
	api.features = UFFD_FEATURE_MOVE | (features & UFFD_FEATURE_SIGBUS);
	if (ioctl(uffd, UFFDIO_API, &api))
		ktap_bail("UFFDIO_API");

	pin_to_cpu(0);
	ktap_plan(NR_CHECKS);
	unit_checks();
	race();
	ktap_diag("runtime %.1f s", (now_ns() - t0) / 1e9);
	ktap_finish();
}
