/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ktap.h - the KTAP/kselftest reporting every reproducer shares.
 *
 * The harness reads the exit code (0 pass, 1 fail, 4 skip) and the KTAP
 * lines; it shows the "not ok" lines and "#" diagnostics in its failure
 * report, so a reproducer says *what* went wrong on a "# " line before the
 * "not ok".  Header only, static functions: each reproducer is one file.
 */
#ifndef KTAP_H
#define KTAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uffd_compat.h"

struct ktap_state {
	int planned;
	int number;
	int failed;
	int skipped;
	int plan_printed;
	unsigned long taint_before;
};

static struct ktap_state ktap __attribute__((unused));

static inline unsigned long ktap_read_taint(void)
{
	unsigned long v = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* Start the plan and remember the taint, so only what we add is blamed. */
static inline void ktap_plan(int n)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	ktap.planned = n;
	ktap.plan_printed = 1;
	ktap.taint_before = ktap_read_taint();
	printf("TAP version 13\n1..%d\n", n);
}

static inline void ktap_vdiag(const char *fmt, va_list ap)
{
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
}

static inline void ktap_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ktap_vdiag(fmt, ap);
	va_end(ap);
}

static inline void ktap_result(int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%sok %d - ", ok ? "" : "not ", ++ktap.number);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	if (!ok)
		ktap.failed++;
}

static inline void ktap_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("ok %d - ", ++ktap.number);
	vprintf(fmt, ap);
	fputs(" # SKIP\n", stdout);
	va_end(ap);
	ktap.skipped++;
}

/* The whole program cannot run on this kernel: say which feature is missing. */
static inline void __attribute__((noreturn)) ktap_skip_all(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..0 # SKIP ");
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	exit(KSFT_SKIP);
}

/* Something the test itself needs failed (not the kernel under test). */
static inline void __attribute__((noreturn)) ktap_bail(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	printf("Bail out! ");
	vprintf(fmt, ap);
	printf(" (errno %d: %s)\n", err, strerror(err));
	va_end(ap);
	exit(KSFT_FAIL);
}

/* errno values that mean "this kernel does not have it", not "it is broken" */
static inline int ktap_errno_unsupported(int err)
{
	return err == ENOSYS || err == EOPNOTSUPP;
}

/*
 * A call the test cannot do without failed (errno still set).  ENOSYS or
 * EOPNOTSUPP mean the kernel lacks ``feature``: a kselftest skip naming it
 * (exit 4), as "1..0 # SKIP" before the plan or a "# SKIP" result line after
 * it.  Any other errno is a Bail out (a failure), as ktap_bail().
 */
static inline void __attribute__((noreturn, format(printf, 2, 3)))
ktap_need_failed(const char *feature, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!ktap_errno_unsupported(err)) {
		errno = err;
		ktap_bail("%s", what);
	}
	if (!ktap.plan_printed)
		ktap_skip_all("kernel lacks %s: %s failed (errno %d: %s)", feature,
			      what, err, strerror(err));
	printf("ok %d - %s # SKIP kernel lacks %s (errno %d: %s)\n",
	       ++ktap.number, what, feature, err, strerror(err));
	exit(ktap.failed ? KSFT_FAIL : KSFT_SKIP);
}

/*
 * Check taint, print the totals and exit with the kselftest code.  A run in
 * which every check was skipped counts as a skip, not a pass.
 */
static inline void __attribute__((noreturn)) ktap_finish(void)
{
	unsigned long added = ktap_read_taint() & ~ktap.taint_before;

	if (added & TAINT_FATAL_MASK) {
		ktap_diag("kernel taint added during the test: 0x%lx", added);
		ktap.failed++;
	}
	if (ktap.number != ktap.planned)
		ktap_diag("planned %d checks, ran %d", ktap.planned, ktap.number);
	ktap_diag("totals: pass:%d fail:%d skip:%d",
		  ktap.number - ktap.failed - ktap.skipped, ktap.failed,
		  ktap.skipped);
	if (ktap.failed || ktap.number != ktap.planned)
		exit(KSFT_FAIL);
	if (ktap.number > 0 && ktap.skipped == ktap.number)
		exit(KSFT_SKIP);
	exit(KSFT_PASS);
}

#endif /* KTAP_H */
