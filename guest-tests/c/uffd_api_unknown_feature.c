// SPDX-License-Identifier: GPL-2.0
/*
 * uffd_api_unknown_feature - UFFDIO_API must refuse what it does not know.
 *
 * Guards the revert (2ff559f31a5d) of "userfaultfd: don't fail on
 * unrecognized features" (914eedcb9ba0); stable got the revert in 6.1.26
 * and 6.2.13.  While it was in, UFFDIO_API silently masked unknown feature
 * bits and dropped the api == UFFD_API check.  The contract (userfaultfd(2), UFFDIO_API(2const),
 * fs/userfaultfd.c userfaultfd_api()) is: a wrong api or any feature bit the
 * kernel does not advertise fails with EINVAL and the kernel zeroes the
 * returned struct uffdio_api; a failed call leaves the fd un-initialised so
 * a correct call still works; a second call after a successful one fails
 * with EINVAL.  The unknown bits are derived from a features=0 probe, never
 * hard-coded.  Also checked: ioctl()/read() before UFFDIO_API, unknown
 * userfaultfd() flags, UFFD_USER_MODE_ONLY vs vm.unprivileged_userfaultfd=0
 * for an unprivileged user, and /dev/userfaultfd USERFAULTFD_IOC_NEW.
 *
 * @timeout: 60
 * @needs: config=USERFAULTFD
 * @covers: fs/userfaultfd.c include/uapi/linux/userfaultfd.h include/linux/userfaultfd_k.h
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"

#define NR_CHECKS		16
#define SAFETY_ALARM		50	/* seconds, below @timeout */
#define CHILD_WAIT_MS		10000
#define FILL_PATTERN		0x5a5a5a5a5a5a5a5aULL
#define UNPRIV_ID		65534
#define SYSCTL_UNPRIV		"/proc/sys/vm/unprivileged_userfaultfd"
#define DEV_UFFD		"/dev/userfaultfd"
#define SYS_UFFD_DEV		"/sys/class/misc/userfaultfd/dev"
#define UFFD_OPEN_FLAGS		(O_CLOEXEC | O_NONBLOCK)

/* Titles stay the same on every kernel and on every path (pass/fail/skip). */
#define T_UMO		"unprivileged UFFD_USER_MODE_ONLY uffd works with vm.unprivileged_userfaultfd=0"
#define T_KERN		"unprivileged kernel-mode userfaultfd() fails EPERM with vm.unprivileged_userfaultfd=0"
#define T_DEV_NEW	"/dev/userfaultfd USERFAULTFD_IOC_NEW gives a uffd with the same features"
#define T_DEV_REFUSE	"/dev/userfaultfd uffd refuses an unadvertised bit with EINVAL, then accepts a correct call"

/* State the alarm handler and exit path need to clean up. */
static char sysctl_saved[32];
static volatile sig_atomic_t sysctl_changed;
static volatile pid_t child_pid;

struct api_res {
	int ret;
	int err;
	struct uffdio_api api;
};

static const char *errname(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "E?";
}

static int sys_userfaultfd(int flags)
{
	return syscall(__NR_userfaultfd, flags);
}

/* Open a uffd for the main test; failure here means we cannot go on. */
static int uffd_open(void)
{
	int fd = sys_userfaultfd(UFFD_OPEN_FLAGS);

	if (fd < 0)
		ktap_need_failed("userfaultfd (CONFIG_USERFAULTFD)",
				 "userfaultfd(O_CLOEXEC|O_NONBLOCK)");
	return fd;
}

/* UFFDIO_API with the ioctls field pre-filled, so zeroing is observable. */
static void api_call(int fd, __u64 api, __u64 features, struct api_res *r)
{
	r->api.api = api;
	r->api.features = features;
	r->api.ioctls = FILL_PATTERN;
	errno = 0;
	r->ret = ioctl(fd, UFFDIO_API, &r->api);
	r->err = r->ret ? errno : 0;
}

static int api_zeroed(const struct api_res *r)
{
	return !r->api.api && !r->api.features && !r->api.ioctls;
}

static int api_refused(const struct api_res *r)
{
	return r->ret == -1 && r->err == EINVAL && api_zeroed(r);
}

static void api_describe(const char *what, const char *expected,
			 const struct api_res *r)
{
	ktap_diag("%s: expected %s, got ret=%d errno=%s api=0x%llx features=0x%llx ioctls=0x%llx",
		  what, expected, r->ret, r->ret ? errname(r->err) : "0",
		  (unsigned long long)r->api.api,
		  (unsigned long long)r->api.features,
		  (unsigned long long)r->api.ioctls);
}

static int api_ok(const struct api_res *r, __u64 want_features)
{
	return r->ret == 0 && r->api.api == UFFD_API &&
	       r->api.features == want_features &&
	       (r->api.ioctls & (1ULL << _UFFDIO_API)) &&
	       (r->api.ioctls & (1ULL << _UFFDIO_REGISTER));
}

/*
 * After a refused UFFDIO_API the fd must still be un-initialised: a correct
 * call succeeds.  Returns 1 if it did; otherwise says why when @verbose.
 */
static int api_retry_ok(int fd, __u64 probe, const char *after, int verbose)
{
	struct api_res r;

	api_call(fd, UFFD_API, 0, &r);
	if (api_ok(&r, probe))
		return 1;
	if (verbose) {
		ktap_diag("the correct UFFDIO_API that follows %s on the same fd did not succeed",
			  after);
		api_describe("retry", "ret=0 with the probed features", &r);
	}
	return 0;
}

/* ---- safety net --------------------------------------------------------- */

static void sysctl_restore(void)
{
	int fd;

	if (!sysctl_changed)
		return;
	fd = open(SYSCTL_UNPRIV, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, sysctl_saved, strlen(sysctl_saved)) < 0) {
			/* nothing more we can do */
		}
		close(fd);
	}
	sysctl_changed = 0;
}

static void on_alarm(int sig)
{
	static const char msg[] =
		"Bail out! timeout: a userfaultfd check did not finish in time\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do */
	}
	if (child_pid > 0)
		kill(child_pid, SIGKILL);
	sysctl_restore();
	_exit(KSFT_FAIL);
}

/* ---- individual checks -------------------------------------------------- */

/* 1: the features=0 probe; returns the advertised feature set. */
static __u64 check_probe(void)
{
	struct api_res r;
	int fd, ok;

	fd = sys_userfaultfd(UFFD_OPEN_FLAGS);
	if (fd < 0)
		ktap_need_failed("userfaultfd (CONFIG_USERFAULTFD)",
				 "userfaultfd(O_CLOEXEC|O_NONBLOCK) as root");

	ktap_plan(NR_CHECKS);

	api_call(fd, UFFD_API, 0, &r);
	close(fd);
	ok = r.ret == 0 && r.api.api == UFFD_API &&
	     (r.api.ioctls & (1ULL << _UFFDIO_API)) &&
	     (r.api.ioctls & (1ULL << _UFFDIO_REGISTER));
	if (!ok)
		api_describe("probe", "ret=0, api=0xaa, ioctls with _UFFDIO_API and _UFFDIO_REGISTER", &r);
	else
		ktap_diag("advertised features 0x%llx, ioctls 0x%llx",
			  (unsigned long long)r.api.features,
			  (unsigned long long)r.api.ioctls);
	ktap_result(ok, "probe UFFDIO_API {api=UFFD_API, features=0} succeeds and lists _UFFDIO_API, _UFFDIO_REGISTER");
	if (r.ret)
		ktap_bail("cannot go on without a feature probe");
	return r.api.features;
}

/* 2: a wrong api is refused, zeroed; then the fd still accepts a correct call. */
static void check_wrong_api(__u64 probe, int *retry_ok)
{
	static const __u64 bad[] = { 0, 0xAB, UFFD_API | (1ULL << 32), ~0ULL };
	struct api_res r;
	unsigned int i;
	int ok = 1;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* features=probe: only the api is wrong, and zeroing shows */
		int fd = uffd_open();
		char what[64];

		api_call(fd, bad[i], probe, &r);
		snprintf(what, sizeof(what), "api=0x%llx", (unsigned long long)bad[i]);
		if (!api_refused(&r)) {
			api_describe(what, "EINVAL with the struct zeroed", &r);
			ok = 0;
		}
		if (!api_retry_ok(fd, probe, what, 1))
			*retry_ok = 0;
		close(fd);
	}
	ktap_result(ok, "UFFDIO_API with api != UFFD_API fails EINVAL and zeroes the struct");
}

/* 3: bit 63. */
static void check_bit63(__u64 probe, int *retry_ok)
{
	struct api_res r;
	int fd = uffd_open();
	int ok;

	api_call(fd, UFFD_API, 1ULL << 63, &r);
	ok = api_refused(&r);
	if (!ok)
		api_describe("features=1<<63", "EINVAL with the struct zeroed", &r);
	if (probe & (1ULL << 63))
		ktap_diag("the probe advertises bit 63, which no kernel defines");
	if (!api_retry_ok(fd, probe, "features=1<<63", 1))
		*retry_ok = 0;
	close(fd);
	ktap_result(ok && !(probe & (1ULL << 63)),
		    "UFFDIO_API with features bit 63 fails EINVAL and zeroes the struct");
}

/*
 * A feature may need another one (7.3 refuses bit 18 without bit 17): then
 * it is refused alone.  Returns the advertised bit that makes @bit work,
 * -1 if only the whole advertised set does, -2 if nothing does.
 */
static int find_dependency(__u64 probe, int bit)
{
	__u64 f = 1ULL << bit;
	struct api_res r;
	int other, fd;

	for (other = 0; other < 64; other++) {
		__u64 o = 1ULL << other;

		if (other == bit || !(probe & o))
			continue;
		fd = uffd_open();
		api_call(fd, UFFD_API, f | o, &r);
		close(fd);
		if (api_ok(&r, probe))
			return other;
	}
	fd = uffd_open();
	api_call(fd, UFFD_API, probe, &r);
	close(fd);
	return api_ok(&r, probe) ? -1 : -2;
}

/*
 * 4 and 5: every bit on its own fresh fd.  The details of the first wrong
 * answer of each kind are printed, then the set of bits that misbehaved.
 */
static void check_each_bit(__u64 probe, int *retry_ok)
{
	__u64 bad_known = 0, bad_unknown = 0, bad_retry = 0;
	int nknown = 0, nunknown = 0;
	struct api_res r;
	int bit;

	for (bit = 0; bit < 64; bit++) {
		__u64 f = 1ULL << bit;
		char what[48];
		int fd = uffd_open();

		snprintf(what, sizeof(what), "features bit %d alone", bit);
		api_call(fd, UFFD_API, f, &r);
		if (probe & f) {
			nknown++;
			if (!api_ok(&r, probe)) {
				int dep = -2;

				if (r.ret == -1 && r.err == EINVAL)
					dep = find_dependency(probe, bit);
				if (dep >= 0)
					ktap_diag("advertised bit %d is refused alone but accepted together with advertised bit %d (a dependency)",
						  bit, dep);
				else if (dep == -1)
					ktap_diag("advertised bit %d is refused alone but accepted together with all advertised features (a dependency)",
						  bit);
				if (dep < -1) {
					if (!bad_known)
						api_describe(what, "ret=0 with the probed features", &r);
					bad_known |= f;
				}
			}
		} else {
			nunknown++;
			if (!api_refused(&r)) {
				if (!bad_unknown)
					api_describe(what, "EINVAL with the struct zeroed (not advertised)", &r);
				bad_unknown |= f;
			}
			if (!api_retry_ok(fd, probe, what, !bad_retry))
				bad_retry |= f;
		}
		close(fd);
	}
	if (bad_known)
		ktap_diag("advertised bits refused even with the other advertised features: 0x%llx (%d bits)",
			  (unsigned long long)bad_known, __builtin_popcountll(bad_known));
	if (bad_unknown)
		ktap_diag("unadvertised bits not refused: 0x%llx (%d bits)",
			  (unsigned long long)bad_unknown, __builtin_popcountll(bad_unknown));
	if (bad_retry) {
		ktap_diag("no correct UFFDIO_API after refusing these bits: 0x%llx",
			  (unsigned long long)bad_retry);
		*retry_ok = 0;
	}
	ktap_diag("checked %d advertised and %d unadvertised bits", nknown, nunknown);
	ktap_result(!bad_known, "every advertised feature bit is accepted on a fresh fd");
	ktap_result(!bad_unknown, "every unadvertised feature bit fails EINVAL with the struct zeroed");
}

/* 6: all unknown bits at once; 7: the full advertised set plus one unknown bit. */
static void check_mixed(__u64 probe, int *retry_ok)
{
	__u64 unknown = ~probe;
	__u64 lowest = unknown & -unknown;
	struct api_res r;
	char what[64];
	int fd, ok;

	fd = uffd_open();
	api_call(fd, UFFD_API, unknown, &r);
	ok = api_refused(&r);
	snprintf(what, sizeof(what), "features=0x%llx (all unadvertised)",
		 (unsigned long long)unknown);
	if (!ok)
		api_describe(what, "EINVAL with the struct zeroed", &r);
	if (!api_retry_ok(fd, probe, what, 1))
		*retry_ok = 0;
	close(fd);
	ktap_result(ok, "UFFDIO_API with all unadvertised bits fails EINVAL and zeroes the struct");

	fd = uffd_open();
	api_call(fd, UFFD_API, probe | lowest, &r);
	ok = api_refused(&r);
	snprintf(what, sizeof(what), "features=0x%llx (advertised + bit %d)",
		 (unsigned long long)(probe | lowest), __builtin_ctzll(lowest));
	if (!ok)
		api_describe(what, "EINVAL with the struct zeroed, not a masked success", &r);
	if (!api_retry_ok(fd, probe, what, 1))
		*retry_ok = 0;
	close(fd);
	ktap_result(ok, "all advertised features plus the lowest unadvertised bit fail EINVAL, not masked");
}

/* 9: a second UFFDIO_API after a successful one. */
static void check_second_call(__u64 probe)
{
	struct api_res r;
	int fd = uffd_open();
	int ok;

	api_call(fd, UFFD_API, 0, &r);
	if (!api_ok(&r, probe)) {
		api_describe("first call", "ret=0 with the probed features", &r);
		ok = 0;
	} else {
		api_call(fd, UFFD_API, 0, &r);
		ok = api_refused(&r);
		if (!ok)
			api_describe("second call", "EINVAL with the struct zeroed", &r);
	}
	close(fd);
	ktap_result(ok, "a second UFFDIO_API on an initialised fd fails EINVAL");
}

/* 10: UFFDIO_REGISTER before UFFDIO_API; the same call works afterwards. */
static void check_register_before_api(__u64 probe)
{
	long page = sysconf(_SC_PAGESIZE);
	struct uffdio_register reg;
	struct uffdio_range range;
	struct api_res r;
	int fd, ret, err, ok = 1;
	char *mem;

	mem = mmap(NULL, page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		ktap_bail("mmap");
	memset(mem, 1, page);	/* populated: registering can never block us */

	fd = uffd_open();
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (unsigned long)mem;
	reg.range.len = page;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	errno = 0;
	ret = ioctl(fd, UFFDIO_REGISTER, &reg);
	err = errno;
	if (!(ret == -1 && err == EINVAL)) {
		ktap_diag("UFFDIO_REGISTER before UFFDIO_API: expected EINVAL, got ret=%d errno=%s",
			  ret, ret ? errname(err) : "0");
		ok = 0;
		if (ret == 0) {
			range.start = (unsigned long)mem;
			range.len = page;
			ioctl(fd, UFFDIO_UNREGISTER, &range);
		}
	}

	/* control: the very same request is fine once the API is set */
	api_call(fd, UFFD_API, 0, &r);
	if (!api_ok(&r, probe)) {
		api_describe("UFFDIO_API", "ret=0 with the probed features", &r);
		ok = 0;
	} else {
		memset(&reg, 0, sizeof(reg));
		reg.range.start = (unsigned long)mem;
		reg.range.len = page;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		errno = 0;
		ret = ioctl(fd, UFFDIO_REGISTER, &reg);
		if (ret) {
			ktap_diag("control: UFFDIO_REGISTER after UFFDIO_API failed: errno=%s",
				  errname(errno));
			ok = 0;
		} else {
			range.start = (unsigned long)mem;
			range.len = page;
			if (ioctl(fd, UFFDIO_UNREGISTER, &range))
				ktap_diag("UFFDIO_UNREGISTER failed: errno=%s",
					  errname(errno));
		}
	}
	close(fd);
	munmap(mem, page);
	ktap_result(ok, "UFFDIO_REGISTER before UFFDIO_API fails EINVAL (and works after it)");
}

/* 11: read() before UFFDIO_API. */
static void check_read_before_api(__u64 probe)
{
	struct uffd_msg msg;
	struct api_res r;
	ssize_t n;
	int fd, err, ok = 1;

	fd = uffd_open();	/* O_NONBLOCK: a wrong kernel cannot block us */
	errno = 0;
	n = read(fd, &msg, sizeof(msg));
	err = errno;
	if (!(n == -1 && err == EINVAL)) {
		ktap_diag("read() before UFFDIO_API: expected EINVAL, got %zd errno=%s",
			  n, n < 0 ? errname(err) : "0");
		ok = 0;
	}
	api_call(fd, UFFD_API, 0, &r);
	if (!api_ok(&r, probe)) {
		api_describe("UFFDIO_API", "ret=0 with the probed features", &r);
		ok = 0;
	} else {
		errno = 0;
		n = read(fd, &msg, sizeof(msg));
		err = errno;
		if (!(n == -1 && err == EAGAIN)) {
			ktap_diag("control: read() after UFFDIO_API with no event: expected EAGAIN, got %zd errno=%s",
				  n, n < 0 ? errname(err) : "0");
			ok = 0;
		}
	}
	close(fd);
	ktap_result(ok, "read() before UFFDIO_API fails EINVAL (EAGAIN after it)");
}

/* 12: userfaultfd() with flags it does not know. */
static void check_unknown_flags(void)
{
	const unsigned int known = O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY;
	int bit, fd, ok = 1, n = 0;

	for (bit = 0; bit < 32; bit++) {
		unsigned int flag = 1U << bit;

		if (flag & known)
			continue;
		n++;
		errno = 0;
		fd = sys_userfaultfd((int)(flag | O_CLOEXEC));
		if (fd >= 0 || errno != EINVAL) {
			ktap_diag("userfaultfd(0x%x): expected EINVAL, got %d errno=%s",
				  flag | O_CLOEXEC, fd, fd < 0 ? errname(errno) : "0");
			ok = 0;
		}
		if (fd >= 0)
			close(fd);
	}
	ktap_diag("tried %d unknown flag bits", n);
	ktap_result(ok, "userfaultfd() with any unknown flag bit fails EINVAL");
}

/* ---- unprivileged user -------------------------------------------------- */

struct unpriv_res {
	int setup_err;		/* 0, or errno of the privilege drop */
	int umo_fd_err;		/* USER_MODE_ONLY open: 0 or errno */
	struct api_res umo_api;
	int kern_fd_err;	/* kernel-mode open: 0 or errno */
};

static int drop_privileges(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (setgroups(0, NULL) || setgid(UNPRIV_ID) || setuid(UNPRIV_ID))
		return errno;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data))
		return errno;
	if (syscall(SYS_capget, &hdr, data))
		return errno;
	if (data[0].effective || data[1].effective ||
	    data[0].permitted || data[1].permitted)
		return EPERM;
	if (getuid() != UNPRIV_ID || geteuid() != UNPRIV_ID)
		return EPERM;
	return 0;
}

static void unpriv_child(int wfd)
{
	struct unpriv_res res;
	int fd;

	memset(&res, 0, sizeof(res));
	res.setup_err = drop_privileges();
	if (!res.setup_err) {
		fd = sys_userfaultfd(UFFD_OPEN_FLAGS | UFFD_USER_MODE_ONLY);
		if (fd < 0) {
			res.umo_fd_err = errno;
		} else {
			api_call(fd, UFFD_API, 0, &res.umo_api);
			close(fd);
		}
		fd = sys_userfaultfd(UFFD_OPEN_FLAGS);
		if (fd < 0)
			res.kern_fd_err = errno;
		else
			close(fd);
	}
	if (write(wfd, &res, sizeof(res)) != sizeof(res))
		_exit(2);
	_exit(0);
}

static int read_sysctl(char *buf, size_t len)
{
	int fd = open(SYSCTL_UNPRIV, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int write_sysctl(const char *val)
{
	int fd = open(SYSCTL_UNPRIV, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* Wait for the child at most CHILD_WAIT_MS; kill it if it overstays. */
static int wait_child_bounded(pid_t pid, int *status)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int waited;

	for (waited = 0; waited < CHILD_WAIT_MS; waited += 10) {
		pid_t p = waitpid(pid, status, WNOHANG);

		if (p == pid)
			return 0;
		if (p < 0 && errno != EINTR)
			return -1;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

/* 13 and 14. */
static void check_unprivileged(__u64 probe)
{
	struct unpriv_res res;
	int pfd[2], status = 0, ok;
	struct pollfd pl;
	ssize_t n = -1;
	pid_t pid;

	if (read_sysctl(sysctl_saved, sizeof(sysctl_saved))) {
		ktap_diag("cannot read %s (%s): the sysctl is needed to test unprivileged access",
			  SYSCTL_UNPRIV, errname(errno));
		ktap_skip(T_UMO);
		ktap_skip(T_KERN);
		return;
	}
	if (pipe2(pfd, O_CLOEXEC))
		ktap_bail("pipe2");
	sysctl_changed = 1;	/* restored by sysctl_restore(), also at exit */
	if (write_sysctl("0\n")) {
		int err = errno;

		sysctl_restore();
		close(pfd[0]);
		close(pfd[1]);
		ktap_diag("cannot write 0 to %s: %s", SYSCTL_UNPRIV, errname(err));
		ktap_result(0, T_UMO);
		ktap_result(0, T_KERN);
		return;
	}

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		ktap_bail("fork");
	if (pid == 0) {
		close(pfd[0]);
		unpriv_child(pfd[1]);
	}
	child_pid = pid;
	close(pfd[1]);

	memset(&res, 0, sizeof(res));
	pl.fd = pfd[0];
	pl.events = POLLIN;
	if (poll(&pl, 1, CHILD_WAIT_MS) == 1)
		n = read(pfd[0], &res, sizeof(res));
	close(pfd[0]);
	wait_child_bounded(pid, &status);
	child_pid = 0;
	sysctl_restore();

	if (n != sizeof(res) || res.setup_err) {
		if (n != sizeof(res))
			ktap_diag("unprivileged child gave no result (status 0x%x)", status);
		else
			ktap_diag("dropping to uid/gid %d without capabilities failed: %s",
				  UNPRIV_ID, errname(res.setup_err));
		ktap_result(0, T_UMO);
		ktap_result(0, T_KERN);
		return;
	}

	ok = !res.umo_fd_err && api_ok(&res.umo_api, probe);
	if (res.umo_fd_err)
		ktap_diag("unprivileged userfaultfd(UFFD_USER_MODE_ONLY): expected an fd, got errno=%s",
			  errname(res.umo_fd_err));
	else if (!ok)
		api_describe("unprivileged UFFDIO_API on a user-mode-only fd",
			     "ret=0 with the probed features", &res.umo_api);
	ktap_result(ok, T_UMO);

	ok = res.kern_fd_err == EPERM;
	if (!ok)
		ktap_diag("unprivileged userfaultfd() without UFFD_USER_MODE_ONLY: expected EPERM, got %s",
			  res.kern_fd_err ? errname(res.kern_fd_err) : "an fd");
	ktap_result(ok, T_KERN);
}

/* ---- /dev/userfaultfd --------------------------------------------------- */

/* Returns 1 if we created the node (to remove it later), 0 if not, -1 if none. */
static int ensure_dev_node(char *why, size_t len)
{
	unsigned int maj, min;
	struct stat st;
	FILE *f;
	int n;

	if (!stat(DEV_UFFD, &st))
		return 0;
	f = fopen(SYS_UFFD_DEV, "r");
	if (!f) {
		snprintf(why, len, "%s and %s are missing (kernel older than 6.1?)",
			 DEV_UFFD, SYS_UFFD_DEV);
		return -1;
	}
	n = fscanf(f, "%u:%u", &maj, &min);
	fclose(f);
	if (n != 2) {
		snprintf(why, len, "cannot parse %s", SYS_UFFD_DEV);
		return -1;
	}
	if (mknod(DEV_UFFD, S_IFCHR | 0600, makedev(maj, min))) {
		snprintf(why, len, "%s missing and mknod %u:%u failed: %s",
			 DEV_UFFD, maj, min, errname(errno));
		return -1;
	}
	ktap_diag("created %s (%u:%u) from %s", DEV_UFFD, maj, min, SYS_UFFD_DEV);
	return 1;
}

/* 15 and 16. */
static void check_dev_userfaultfd(__u64 probe)
{
	__u64 unknown = ~probe, lowest = unknown & -unknown;
	int created, dfd, fd, ok;
	struct api_res r;
	char why[160];

	created = ensure_dev_node(why, sizeof(why));
	if (created < 0) {
		ktap_diag("skipping /dev/userfaultfd checks: %s", why);
		ktap_skip(T_DEV_NEW);
		ktap_skip(T_DEV_REFUSE);
		return;
	}
	dfd = open(DEV_UFFD, O_RDWR | O_CLOEXEC);
	if (dfd < 0) {
		int err = errno;

		ktap_diag("open(%s): %s", DEV_UFFD, errname(err));
		ktap_result(0, T_DEV_NEW);
		ktap_result(0, T_DEV_REFUSE);
		goto out;
	}

	/* 15: a new uffd from the device, features=0 */
	fd = ioctl(dfd, USERFAULTFD_IOC_NEW, UFFD_OPEN_FLAGS);
	if (fd < 0) {
		ktap_diag("USERFAULTFD_IOC_NEW: expected an fd, got errno=%s",
			  errname(errno));
		ok = 0;
	} else {
		api_call(fd, UFFD_API, 0, &r);
		ok = api_ok(&r, probe);
		if (!ok)
			api_describe("UFFDIO_API on the /dev/userfaultfd uffd",
				     "ret=0 with the same features as the syscall probe", &r);
		close(fd);
	}
	ktap_result(ok, T_DEV_NEW);

	/* 16: the same refusal through the device path, then a correct call */
	fd = ioctl(dfd, USERFAULTFD_IOC_NEW, UFFD_OPEN_FLAGS);
	if (fd < 0) {
		ktap_diag("USERFAULTFD_IOC_NEW: expected an fd, got errno=%s",
			  errname(errno));
		ok = 0;
	} else {
		char what[64];

		snprintf(what, sizeof(what), "/dev/userfaultfd uffd, features bit %d",
			 __builtin_ctzll(lowest));
		api_call(fd, UFFD_API, lowest, &r);
		ok = api_refused(&r);
		if (!ok)
			api_describe(what, "EINVAL with the struct zeroed", &r);
		if (!api_retry_ok(fd, probe, what, 1))
			ok = 0;
		close(fd);
	}
	ktap_result(ok, T_DEV_REFUSE);
	close(dfd);
out:
	if (created == 1)
		unlink(DEV_UFFD);
}

int main(void)
{
	struct sigaction sa;
	int retry_ok = 1;
	__u64 probe;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(SAFETY_ALARM);
	atexit(sysctl_restore);	/* also on ktap_bail(); the child uses _exit() */

	probe = check_probe();				/* 1 */
	check_wrong_api(probe, &retry_ok);		/* 2 */
	check_bit63(probe, &retry_ok);			/* 3 */
	check_each_bit(probe, &retry_ok);		/* 4, 5 */
	check_mixed(probe, &retry_ok);			/* 6, 7 */
	if (!retry_ok)
		ktap_diag("see the \"retry\" diagnostics above");
	ktap_result(retry_ok,				/* 8 */
		    "a correct UFFDIO_API still succeeds on the same fd after each refused one");
	check_second_call(probe);			/* 9 */
	check_register_before_api(probe);		/* 10 */
	check_read_before_api(probe);			/* 11 */
	check_unknown_flags();				/* 12 */
	check_unprivileged(probe);			/* 13, 14 */
	check_dev_userfaultfd(probe);			/* 15, 16 */

	alarm(0);
	ktap_finish();
}
